"""Partitioned sources in Dagster: partitions definitions, reading one partition, partition keys.

A source with ``partition: {by: file}`` has one dynamic partition per file in its folder (or
glob); the landing sensor adds a partition for every new file. ``{by: day}`` has one partition
per UTC day of a timestamp field, from ``start``. A recipe whose sources are partitioned gets
partitioned ``raw/<source>``, ``<ds>/curated`` and ``<ds>/redacted`` assets; its later assets
read every partition of ``redacted``.

``PARTITIONS`` maps each partition kind of the config (``config.models.PARTITION_KINDS``, the
one list) to how it is built and read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
from dagster import DailyPartitionsDefinition, DynamicPartitionsDefinition, PartitionsDefinition

from ftdata_pipeline.config.models import PARTITION_KINDS, ProjectConfig, RecipeConfig
from ftdata_pipeline.sources.base import SourceError, resolve
from ftdata_pipeline.stages.raw import SourceLoad, read_source

_GLOB = re.compile(r"[*?\[]")
# A folder of a file source holds the files of its format.
_EXTENSIONS = {"jsonl": ("jsonl", "json"), "csv": ("csv",), "parquet": ("parquet",)}


def _file_folder(cfg: Any, root: Path) -> tuple[Path, list[str]]:
    """The folder partition keys are relative to, and the glob patterns below it."""
    path = str(cfg.path)
    if _GLOB.search(path):
        parts = Path(path).parts
        cut = next(i for i, part in enumerate(parts) if _GLOB.search(part))
        base = resolve(str(Path(*parts[:cut])), root) if cut else Path(root)
        return base, [str(Path(*parts[cut:]))]
    return resolve(path, root), [f"*.{ext}" for ext in _EXTENSIONS.get(cfg.format, ("*",))]


def partition_files(cfg: Any, root: Path) -> dict[str, Path]:
    """Partition key (path below the folder, '/'-separated) -> file, in key order.

    Hidden files are left out: an upload in progress is usually written as one and renamed.
    """
    base, patterns = _file_folder(cfg, Path(root))
    found: dict[str, Path] = {}
    if base.is_dir():
        for pattern in patterns:
            for p in base.glob(pattern):
                key = p.relative_to(base).as_posix()
                if p.is_file() and not any(part.startswith(".") for part in key.split("/")):
                    found[key] = p
    return dict(sorted(found.items()))


def _file_def(source: str, cfg: Any) -> PartitionsDefinition:
    return DynamicPartitionsDefinition(name=f"{source}_files")


def _day_def(source: str, cfg: Any) -> PartitionsDefinition:
    return DailyPartitionsDefinition(start_date=cfg.partition.start.isoformat(), timezone="UTC")


def _read_file(name: str, cfg: Any, root: Path, key: str) -> tuple[SourceLoad, Any]:
    files = partition_files(cfg, root)
    if key not in files:
        raise SourceError(
            f"source {name!r}: partition {key!r}: no such file under {cfg.path} "
            f"({len(files)} file(s) there)"
        )
    one = cfg.model_copy(update={"path": str(files[key]), "partition": None})
    return read_source(name, one, root), one


def _read_day(name: str, cfg: Any, root: Path, key: str) -> tuple[SourceLoad, Any]:
    loaded = read_source(name, cfg, root)
    start = datetime.fromisoformat(key).replace(tzinfo=timezone.utc)
    column = pl.col(cfg.partition.field)
    loaded.frame = loaded.frame.filter(
        (column >= start) & (column < start + timedelta(days=1))
    )
    loaded.counts["rows_in_partition"] = loaded.frame.height
    return loaded, cfg


@dataclass(frozen=True)
class PartitionKind:
    """How one partition kind becomes a partitions definition and how a partition is read."""

    definition: Callable[[str, Any], PartitionsDefinition]
    # (source name, config, root, key) -> (the partition's rows, the config that read them)
    read: Callable[[str, Any, Path, str], tuple[SourceLoad, Any]]
    dynamic: bool


PARTITIONS: dict[str, PartitionKind] = {
    "file": PartitionKind(_file_def, _read_file, dynamic=True),
    "day": PartitionKind(_day_def, _read_day, dynamic=False),
}
assert tuple(PARTITIONS) == PARTITION_KINDS, "one entry per partition kind of the config"


def source_partitions(name: str, cfg: Any) -> PartitionsDefinition | None:
    if getattr(cfg, "partition", None) is None:
        return None
    return PARTITIONS[cfg.partition.by].definition(name, cfg)


def recipe_partitions(recipe: RecipeConfig, project: ProjectConfig) -> PartitionsDefinition | None:
    """The recipe's sources' partitions (``ftdata validate`` ensures they share one)."""
    for src in recipe.sources:
        cfg = project.sources.get(src)
        if cfg is not None and cfg.partition is not None:
            return source_partitions(src, cfg)
    return None


def read_partition(name: str, cfg: Any, root: Path, key: str) -> tuple[SourceLoad, Any]:
    """One partition of a source, mapped; and the source config that reads exactly it."""
    return PARTITIONS[cfg.partition.by].read(name, cfg, Path(root), key)


def partition_sample(cfg: Any, root: Path) -> Any | None:
    """A config reading one partition's file, for ``ftdata validate`` (None: no file yet)."""
    if cfg.partition is None or cfg.partition.by != "file":
        return cfg
    files = partition_files(cfg, root)
    if not files:
        return None
    return cfg.model_copy(update={"path": str(next(iter(files.values()))), "partition": None})


# Tag of partitioned assets: jobs over every asset leave them out (they need a partition key).
PARTITIONED_TAG = "ftdata/partitioned"
