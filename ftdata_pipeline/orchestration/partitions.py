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

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
from dagster import (
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    PartitionsDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from ftdata_pipeline.config.models import PARTITION_KINDS, ProjectConfig, RecipeConfig
from ftdata_pipeline.sources.base import SourceError
from ftdata_pipeline.sources.partitioned import partition_files
from ftdata_pipeline.stages.raw import SourceLoad, read_source

def _file_def(source: str, cfg: Any) -> PartitionsDefinition:
    return DynamicPartitionsDefinition(name=f"{source}_files")


def _day_def(source: str, cfg: Any) -> PartitionsDefinition:
    return DailyPartitionsDefinition(start_date=cfg.partition.start.isoformat(), timezone="UTC")


def _file_cfg(name: str, cfg: Any, root: Path, key: str) -> Any:
    files = partition_files(cfg, root)
    if key not in files:
        raise SourceError(
            f"source {name!r}: partition {key!r}: no such file under {cfg.path} "
            f"({len(files)} file(s) there)"
        )
    return cfg.model_copy(update={"path": str(files[key]), "partition": None})


def _read_file(name: str, cfg: Any, root: Path, key: str) -> tuple[SourceLoad, Any]:
    one = _file_cfg(name, cfg, root, key)
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


def partition_source_cfg(name: str, cfg: Any, root: Path | str, key: str) -> Any:
    """The source config that reads exactly partition ``key`` (a day: the whole source)."""
    if cfg.partition.by == "file":
        return _file_cfg(name, cfg, Path(root), key)
    return cfg


def read_partition(name: str, cfg: Any, root: Path, key: str) -> tuple[SourceLoad, Any]:
    """One partition of a source, mapped; and the source config that reads exactly it."""
    return PARTITIONS[cfg.partition.by].read(name, cfg, Path(root), key)





# Tag of partitioned assets: jobs over every asset leave them out (they need a partition key).
PARTITIONED_TAG = "ftdata/partitioned"


class PartitionRequestError(ValueError):
    """A partitioned dataset run asked for without a partition, or for an unknown one."""


def partition_keys(name: str, cfg: Any, root: Path | str) -> list[str]:
    """Every partition key of a source now, in key order (files present; days up to today)."""
    if cfg.partition.by == "file":
        return list(partition_files(cfg, Path(root)))
    return list(source_partitions(name, cfg).get_partition_keys())


def keys_to_run(
    recipe: RecipeConfig, project: ProjectConfig, wanted: list[str] | None, every: bool,
    instance=None,
) -> list[str | None]:
    """The partition keys ``ftdata materialize`` runs a dataset for, in key order (a backfill
    runs partitions in key order: the first partition to keep a text wins). Dynamic partitions
    of new files are added to the instance. ``[None]`` for an unpartitioned dataset."""
    src = next((s for s in recipe.sources if project.sources[s].partition is not None), None)
    if src is None:
        if wanted or every:
            raise PartitionRequestError(f"dataset {recipe.name!r} is not partitioned")
        return [None]
    cfg = project.sources[src]
    known = partition_keys(src, cfg, project.root)
    if not (wanted or every):
        raise PartitionRequestError(
            f"dataset {recipe.name!r} is partitioned ({src}: partition.by {cfg.partition.by}, "
            f"{len(known)} partition(s)): give --partition KEY or --all-partitions"
        )
    keys = known if every else sorted(wanted)
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise PartitionRequestError(
            f"dataset {recipe.name!r}: no partition {', '.join(map(repr, unknown))} of source "
            f"{src!r} (there are {len(known)})"
        )
    definition = source_partitions(src, cfg)
    if instance is not None and PARTITIONS[cfg.partition.by].dynamic:
        have = set(instance.get_dynamic_partitions(definition.name))
        new = [k for k in keys if k not in have]
        if new:
            instance.add_dynamic_partitions(definition.name, new)
    return list(keys)


def day_schedule(recipe: RecipeConfig, job) -> ScheduleDefinition:
    """The recipe's schedule for a dataset partitioned by day: each tick runs the day before
    the tick (UTC), the last complete day."""

    @schedule(
        name=f"{recipe.name}_schedule",
        job=job,
        cron_schedule=recipe.schedule.cron,
        execution_timezone=recipe.schedule.timezone,
        description=f"Process the previous day's partition of {recipe.name!r} "
        f"({recipe.schedule.cron})",
    )
    def _schedule(context: ScheduleEvaluationContext):
        tick = context.scheduled_execution_time.astimezone(timezone.utc)
        day = (tick - timedelta(days=1)).date().isoformat()
        return RunRequest(run_key=f"{recipe.name}:{day}", partition_key=day)

    return _schedule
