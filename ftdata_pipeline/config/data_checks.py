"""``ftdata validate`` against the data: read the first rows of every source and map them.

Config models check a recipe's shape; only the data says whether ``mapping.text: '{turns[0]}'``
points at something, whether ``consent`` parses as a boolean, or whether a role value has no
entry in the role map. This reads a sample of every source through the same reader and mapper
as the raw stage, so what fails here is what would fail a run, with the same message (file,
config key, row numbers; never values). It also checks that each recipe's sources provide the
fields its kind needs, and reports templates that reference a column missing in some rows.
Last, that FTDATA_HOME's disk has room for a run over the sources' files (``disk_problems``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ftdata_pipeline.config.loader import ConfigError
from ftdata_pipeline.config.models import ProjectConfig

SAMPLE_ROWS = 1000
# Disk a dataset's run takes under FTDATA_HOME per byte of its source files, at its peak:
# every stage's output as Parquet, the restricted rejects, the exports, and while the curated
# step runs its records between passes and its sorted buckets. Measured on the scale
# benchmark (a million JSONL tickets, 665 MB; 101 MB once stored as Parquet): 880 MB at the
# peak, 1.32x the JSONL and 8.7x its Parquet; rounded up for data of other shapes. A Parquet
# source is already compressed, text formats (JSONL, CSV, tool exports) are not.
DISK_PER_SOURCE_BYTE = {"parquet": 10.0}
DISK_PER_TEXT_BYTE = 1.5

# What a recipe of each kind needs from its sources (any one alternative, all of its fields).
KIND_NEEDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "chat_sft": (("messages",), ("prompt", "response")),
    "classification": (("text",),),
    "pretraining": (("text",),),
    "preference": (("prompt", "response", "rank"), ("prompt", "chosen", "rejected")),
    "distillation": (("prompt",),),  # the teacher_outputs source supplies the answers
}


def provided_fields(cfg) -> set[str]:
    fields = set(cfg.mapping)
    if cfg.turns is not None or cfg.messages is not None:
        fields.add("messages")
    return fields


def check_against_data(
    project: ProjectConfig, config_dir: Path | str, sample_rows: int = SAMPLE_ROWS
) -> list[str]:
    """Raise ConfigError listing every problem; return notes (counts) that are not errors."""
    from ftdata_pipeline.sources import SourceError, source_kind
    from ftdata_pipeline.stages.raw import map_source
    from ftdata_pipeline.sources.partitioned import partition_files, partition_sample

    sources_file = Path(config_dir) / "sources.yaml"
    errors: list[str] = []
    notes: list[str] = []
    root = Path(project.root)
    for name, cfg in sorted(project.sources.items()):
        where = f"{sources_file}: sources.{name}"
        # a source partitioned by file: its first file stands for the others
        sample_cfg = partition_sample(cfg, root)
        if sample_cfg is None:
            notes.append(f"{where}.path: no file in {cfg.path} yet (partition.by: file); "
                         "nothing to check against the data")
            continue
        if sample_cfg is not cfg:
            notes.append(f"{where}.partition: {len(partition_files(cfg, root))} file "
                         f"partition(s) in {cfg.path}; the first one was checked")
        try:
            raw = source_kind(cfg).read(name, sample_cfg, root, limit=sample_rows)
            counts: dict = {}
            map_source(name, cfg, raw.frame, counts)
        except SourceError as exc:
            errors.append(f"{where}: {exc}")
            continue
        for field, n in sorted(counts.get("template_rows_missing_a_column", {}).items()):
            notes.append(
                f"{where}.mapping.{field}: {n} of the first {raw.frame.height} row(s) lack a "
                "column the template references (that part of the text is empty in them)"
            )
        if raw.quarantined:
            notes.append(f"{where}: {len(raw.quarantined)} bad row(s) in the first "
                         f"{sample_rows} lines would be quarantined")
        if raw.frame.height == 0:
            notes.append(f"{where}: the source has no rows (a run fails its input guard)")
    for rname, recipe in sorted(project.recipes.items()):
        file = Path(config_dir) / "datasets" / f"{rname}.yaml"
        for i, src in enumerate(recipe.sources):
            cfg = project.sources.get(src)
            if cfg is None or cfg.role != "records":
                continue
            have = provided_fields(cfg)
            options = KIND_NEEDS[recipe.kind]
            if recipe.kind == "classification" and recipe.label.method == "source":
                options = tuple((*o, "label") for o in options)
            if not any(set(o) <= have for o in options):
                wanted = " or ".join("+".join(o) for o in options)
                errors.append(
                    f"{file}: sources.{i}: source {src!r} maps {sorted(have) or 'nothing'}, but a "
                    f"{recipe.kind} dataset needs {wanted} (see {sources_file}: sources.{src})"
                )
    disk_errors, disk_notes = disk_problems(project)
    errors += disk_errors
    notes += disk_notes
    if errors:
        raise ConfigError("\n".join(errors))
    return notes


def _disk_factor(cfg) -> float:
    return DISK_PER_SOURCE_BYTE.get(getattr(cfg, "format", None), DISK_PER_TEXT_BYTE)


def _source_bytes(cfg, root: Path) -> int | None:
    """Bytes of a source's files (every partition's), None for a source that is no file."""
    from ftdata_pipeline.sources import source_kind
    from ftdata_pipeline.sources.partitioned import partition_files

    if cfg.partition is not None and cfg.partition.by == "file":
        return sum(f.stat().st_size for f in partition_files(cfg, root).values())
    kind = source_kind(cfg)
    if not hasattr(kind, "path"):
        return None
    path = kind.path(cfg, root)
    return path.stat().st_size if path.is_file() else 0


def disk_problems(project: ProjectConfig, home: Path | str | None = None) -> tuple[list[str], list[str]]:
    """(errors, notes): whether FTDATA_HOME's file system has the room every dataset's run
    needs (``_disk_factor`` per byte of its source files). A full disk fails a run
    in its largest step, after the steps before it; this finds it before any step runs.
    Sources that are no files (SQL) are left out, and said so."""
    from ftdata_pipeline.orchestration.storage import default_home

    home = Path(home or default_home())
    root = Path(project.root)
    # a source read by two datasets counts twice: each dataset stores its own stages
    read = [src for recipe in project.recipes.values() for src in recipe.sources
            if src in project.sources]
    sizes = {src: _source_bytes(project.sources[src], root) for src in set(read)}
    need = sum((sizes[src] or 0) * _disk_factor(project.sources[src]) for src in read)
    source_bytes = sum(sizes[src] or 0 for src in read)
    unsized = sorted(src for src, size in sizes.items() if size is None)
    notes = [f"disk: source(s) {', '.join(unsized)} are no files; their size is not in the "
             "estimate of the room a run needs"] if unsized else []
    existing = home
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    gb = 1e9
    if need > free:
        return [
            f"FTDATA_HOME ({home}): {free / gb:.1f} GB free, but a run of every dataset over "
            f"its source files ({source_bytes / gb:.1f} GB) needs about "
            f"{need / gb:.1f} GB there (each stage's Parquet output and the curated step's "
            "scratch); free space or set FTDATA_HOME to a larger disk"
        ], notes
    return [], notes
