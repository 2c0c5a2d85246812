"""Record-level lineage: exported example -> stage decisions -> raw row, and source -> exports.

Two stores answer lineage questions, each for what it does best:

- The catalog's ``lineage`` table, written at export time: one row per exported record
  (dataset, record_id, source, source_key, split, line). Indexed by record id and by
  (source, source_key), so "which export files hold this source row?" -- what a deletion
  request needs -- is an index lookup, not a scan of every export file. One row per record,
  not per file line: every format writes a split's records in the same order (sorted by
  record_id), so the line number is the same in each of the split's files.
- The stage Parquet files and reject indexes the pipeline already stores, for the per-stage
  decision on one record (kept, or rejected with stage/rule/score/detail). They are the
  current state of each stage; copying them into the catalog would duplicate every record
  four times per run. Parquet scans with a record_id predicate read little.

``locator`` below is anything with PipelineStorage's ``asset_path`` and ``rejects_path``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from ftdata_pipeline.formats.rlhf_steps import best_responses
from ftdata_pipeline.records import RECORD_ID, REJECT_SCHEMA, SOURCE, SOURCE_KEY, SPLITS
from ftdata_pipeline.stages.split.rlhf import STEP

STAGES = ("curated", "redacted", "labeled", "split")
RESTRICTED_STAGES = frozenset({"curated"})  # stored under the owner-only root
RESTRICTED_REJECT_STAGES = frozenset({"curated", "redacted"})
PAIR_KEY_SEPARATOR = ">"  # preference pairs: source_key is "<chosen key>><rejected key>"
_LINEAGE_ROWS = 10_000


def export_lineage(df: pl.DataFrame | pl.LazyFrame) -> Iterator[dict[str, Any]]:
    """Lineage rows of a split frame, in the export writer's order (by record_id per split).

    With the RLHF steps, lines count within each step's files; a pair of an SFT or RL prompt
    gets the line of its prompt's example (one per prompt, see ``formats.rlhf_steps``).
    Only the key columns are read, and rows become Python dicts ``_LINEAGE_ROWS`` at a time
    (a million exported records as dicts at once took about 1 GB).
    """
    lf = df.lazy()
    if STEP in lf.collect_schema().names():
        ordered = _step_lineage(lf.collect())
    else:
        ordered = (
            lf.select(RECORD_ID, SOURCE, SOURCE_KEY, "split")
            .filter(pl.col("split").is_in(list(SPLITS)))
            .sort(RECORD_ID)
            .with_columns(pl.int_range(1, pl.len() + 1).over("split").alias("line"))
            .collect()
        )
    for batch in ordered.iter_slices(_LINEAGE_ROWS):
        yield from batch.to_dicts()


def _step_lineage(df: pl.DataFrame) -> pl.DataFrame:
    df = df.filter(pl.col("split").is_in(list(SPLITS)))
    examples = df.filter(pl.col(STEP) == "reward").select(
        RECORD_ID, pl.col(RECORD_ID).alias("_example"))
    prompts = df.filter(pl.col(STEP) != "reward")
    if prompts.height:
        _, owners = best_responses(prompts)
        examples = pl.concat([examples, owners.select(pl.col("pair_id").alias(RECORD_ID),
                                                      pl.col(RECORD_ID).alias("_example"))])
    lines = (
        df.join(examples, on=RECORD_ID, how="left")
        .with_columns(pl.col("_example").rank("dense").over(STEP, "split").cast(pl.Int64)
                      .alias("line"))
    )
    return lines.sort(RECORD_ID).select(RECORD_ID, SOURCE, SOURCE_KEY, "split", "line")


def _scan(path: Path) -> pl.LazyFrame | None:
    """A stored stage file, or all partition files of a partitioned one (``<path>/*.parquet``)."""
    if path.exists():
        return pl.scan_parquet(path)
    parts = sorted(p for p in path.with_suffix("").glob("*.parquet") if not p.name.startswith("."))
    return pl.scan_parquet(parts) if parts else None


def _find(path: Path, record_id: str, columns: list[str]) -> dict[str, Any] | None:
    lf = _scan(path)
    if lf is None:
        return None
    names = lf.collect_schema().names()
    found = (
        lf.filter(pl.col(RECORD_ID) == record_id)
        .select([c for c in columns if c in names])
        .head(1)
        .collect()
    )
    return found.row(0, named=True) if found.height else None


def stage_decisions(
    locator: Any, dataset: str, record_id: str, stages: tuple[str, ...] = STAGES
) -> list[dict[str, Any]]:
    """Each stage's decision on one record of one dataset, from the stored stage files.

    A preference pair only exists from ``labeled`` on: trace its parts through the earlier
    stages by their own record ids (``stages`` selects which stages to look at).
    """
    out = []
    for stage in stages:
        kept = _find(
            locator.asset_path([dataset, stage], restricted=stage in RESTRICTED_STAGES),
            record_id, [RECORD_ID, SOURCE, SOURCE_KEY, "split"],
        )
        if kept is not None:
            decision = {"stage": stage, "decision": "kept"}
            if stage == "split":
                decision["split"] = kept.get("split")
            out.append(decision)
            continue
        rejected = _find(
            locator.rejects_path(dataset, stage, restricted=stage in RESTRICTED_REJECT_STAGES),
            record_id, list(REJECT_SCHEMA),
        )
        if rejected is not None:
            out.append({"stage": stage, "decision": "rejected", "rule": rejected["rule"],
                        "score": rejected["score"], "detail": rejected["detail"]})
            break
        out.append({"stage": stage, "decision": "absent"})
        break
    return out


def raw_row(locator: Any, source: str, source_key: str) -> dict[str, Any] | None:
    """The raw asset's row for (source, source_key), or None (erased, or never read)."""
    lf = _scan(locator.asset_path(["raw", source], restricted=True))
    if lf is None:
        return None
    found = lf.filter(pl.col(SOURCE_KEY) == source_key).head(1).collect()
    return found.row(0, named=True) if found.height else None


def record_in_raw(locator: Any, sources: list[str], record_id: str) -> dict[str, Any] | None:
    """Find a record id among the raw assets of ``sources`` (for records never exported)."""
    for source in sources:
        found = _find(locator.asset_path(["raw", source], restricted=True), record_id,
                      [RECORD_ID, SOURCE, SOURCE_KEY])
        if found is not None:
            return found
    return None


def record_in_stages(locator: Any, datasets: list[str], record_id: str) -> dict[str, Any] | None:
    """Find a derived record (a preference pair) in the stored labeled/split frames."""
    for dataset in datasets:
        for stage in ("split", "labeled"):
            found = _find(locator.asset_path([dataset, stage], restricted=False), record_id,
                          [RECORD_ID, SOURCE, SOURCE_KEY])
            if found is not None:
                return {**found, "dataset": dataset}
    return None


def raw_keys(source_key: str, raw_exists) -> list[str]:
    """The raw keys behind a record: itself, or a pair's two parts."""
    if raw_exists(source_key) or PAIR_KEY_SEPARATOR not in source_key:
        return [source_key]
    return source_key.split(PAIR_KEY_SEPARATOR)
