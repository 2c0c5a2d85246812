"""The raw asset's input bookkeeping: quarantined lines, read counts, the size guard's baseline.

The baseline of the size guard (``sources.guard``) is the newest earlier materialization of
the same raw asset whose guard passed: a rejected input (empty, truncated) never becomes the
baseline, so rerunning on the same bad file keeps failing until it is fixed or the shrink is
accepted explicitly.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from dagster import AssetKey, AssetRecordsFilter, MetadataValue

from ftdata_pipeline.orchestration.storage import atomic_write_parquet
from ftdata_pipeline.sources.guard import GUARD_FAILED, GUARD_PASSED, GuardResult

GUARD_KEY = "input_guard"
ROWS_KEY = "rows_read_from_source"
LOOKBACK = 50  # earlier materializations searched for an accepted one


def _value(metadata: dict, key: str) -> Any:
    value = metadata.get(key)
    return getattr(value, "value", value)


def previous_accepted_rows(instance, key: AssetKey, partition: str | None = None) -> int | None:
    """Rows read by the newest earlier materialization whose input guard passed (of the same
    partition, for a partitioned source: partitions differ in size by nature)."""
    if instance is None:
        return None
    records = key if partition is None else AssetRecordsFilter(
        asset_key=key, asset_partitions=[partition]
    )
    result = instance.fetch_materializations(records, limit=LOOKBACK)
    for record in result.records:
        materialization = record.asset_materialization
        if materialization is None:
            continue
        metadata = materialization.metadata or {}
        if _value(metadata, GUARD_KEY) == GUARD_PASSED:
            rows = _value(metadata, ROWS_KEY)
            if isinstance(rows, int):
                return rows
    return None


def quarantine_path(storage, source: str):
    return storage.restricted_root() / "quarantine" / f"{source}.parquet"


def write_quarantine(storage, source: str, quarantined: pl.DataFrame) -> None:
    """Replace the source's quarantine file (owner-only; it holds raw lines) with this run's."""
    path = quarantine_path(storage, source)
    if quarantined.height or path.exists():
        atomic_write_parquet(quarantined, path, private=True)


def source_read_metadata(loaded, guard: GuardResult) -> dict[str, Any]:
    """Counts only: rows read, quarantined lines per reason, template gaps, the guard."""
    counts = dict(loaded.counts)
    meta: dict[str, Any] = {
        ROWS_KEY: guard.rows,
        GUARD_KEY: GUARD_PASSED if guard.passed else GUARD_FAILED,
        "input_guard_reason": guard.reason,
        "rows_quarantined": int(counts.get("rows_quarantined", 0)),
        "csv_rows_short": int(counts.get("csv_rows_short", 0)),
    }
    if loaded.quarantined.height:
        by_reason = loaded.quarantined.group_by(
            pl.col("reason").str.replace(r" \(.*", "")
        ).len().sort("reason")
        meta["quarantined_by_reason"] = MetadataValue.json(dict(by_reason.rows()))
    gaps = counts.get("template_rows_missing_a_column")
    if gaps:
        meta["template_rows_missing_a_column"] = MetadataValue.json(gaps)
    return meta
