"""The files of a source partitioned by file: its folder (or glob) and the partition keys.

``path`` of a source with ``partition: {by: file}`` is a folder (every file of the source's
format in it) or a glob pattern; a file's partition key is its path below the folder (or
below the glob's fixed leading part), '/'-separated.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ftdata_pipeline.sources.base import resolve

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


def partition_sample(cfg: Any, root: Path) -> Any | None:
    """A config reading one partition's file, for ``ftdata validate`` (None: no file yet)."""
    if cfg.partition is None or cfg.partition.by != "file":
        return cfg
    files = partition_files(cfg, root)
    if not files:
        return None
    return cfg.model_copy(update={"path": str(next(iter(files.values()))), "partition": None})
