"""Erasure requests on a partitioned source: applied per partition, fulfilled when no partition
holds the rows any more, and taken out of the dedup index.

A raw partition applies every request of its source to its own rows when it is materialized
(as the unpartitioned raw asset does). A request is marked fulfilled only when no *other*
stored partition of the source still holds one of its rows; otherwise it stays pending and the
step (and ``ftdata erasure list``) names the partitions to rematerialize. Erased rows' entries
are removed from the dedup index of every dataset at once, so no later partition is matched
against a text that must be forgotten.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from ftdata_pipeline.governance.erasure import (
    ErasureError,
    ErasureOutcome,
    ErasureRule,
    apply_erasure,
    locate_subjects,
)
from ftdata_pipeline.records import RECORD_ID, SOURCE_KEY
from ftdata_pipeline.orchestration.partition_runs import DedupIndex
from ftdata_pipeline.orchestration.storage import PipelineStorage


def stored_raw_partitions(storage: PipelineStorage, source: str) -> dict[str, Any]:
    return storage.partition_paths(["raw", source], restricted=True)


def partitions_holding(
    storage: PipelineStorage, source: str, cfg: Any, root: Path | str,
    rules: list[ErasureRule], *, exclude: str | None = None,
) -> dict[int, list[str]]:
    """Request id -> the stored raw partitions (other than ``exclude``) holding its rows."""
    from ftdata_pipeline.orchestration.partitions import partition_source_cfg

    held: dict[int, list[str]] = {}
    for key, path in stored_raw_partitions(storage, source).items():
        if key == exclude:
            continue
        stored = set(pl.read_parquet(path, columns=[SOURCE_KEY])[SOURCE_KEY].to_list())
        wanted: dict[int, set[str]] = {}
        for rule in rules:
            if rule.match == "key":
                wanted.setdefault(rule.request_id, set()).add(rule.value)
        subject_rules = [r for r in rules if r.match == "subject"]
        if subject_rules:
            # the subject column is a raw column: read the partition's own rows again
            found, _ = locate_subjects(source, partition_source_cfg(source, cfg, root, key),
                                       root, subject_rules)
            for rid, keys in found.items():
                wanted.setdefault(rid, set()).update(keys)
        for rid, keys in wanted.items():
            if keys & stored:
                held.setdefault(rid, []).append(key)
    return held


def raw_partition_erasure(
    catalog_resource: Any, storage: PipelineStorage, run_id: str, name: str, cfg: Any,
    read_cfg: Any, root: str, df: pl.DataFrame, config_hash: str, partition: str,
) -> tuple[ErasureOutcome, dict[int, list[str]]]:
    """Apply the source's requests to one partition; (outcome, requests held elsewhere)."""
    catalog = catalog_resource.catalog()
    catalog.upsert_source(name, cfg, config_hash)
    rules = catalog.erasure_rules(name)
    try:
        outcome = apply_erasure(name, read_cfg, Path(root), df, rules)
    except ErasureError as exc:
        catalog.log("erasure_refused", run_id=run_id, source=name,
                    details={"reason": str(exc), "partition": partition})
        raise
    pending = {r.id for r in catalog.erasure_requests(name) if r.status == "pending"}
    held = partitions_holding(
        storage, name, cfg, root, [r for r in rules if r.request_id in pending],
        exclude=partition,
    ) if pending else {}
    catalog.fulfil_erasures(name, run_id, outcome.per_request, held_elsewhere=held)
    if outcome.rows_erased:
        erased = sorted(set(df[RECORD_ID].to_list()) - set(outcome.kept[RECORD_ID].to_list()))
        forget_in_indexes(storage, erased)
    return outcome, held


def forget_in_indexes(storage: PipelineStorage, record_ids: list[str]) -> dict[str, dict]:
    """Remove these records' entries from every dataset's dedup index."""
    folder = storage.restricted_root() / "dedup_index"
    removed = {}
    if folder.is_dir():
        for dataset in sorted(p.name for p in folder.iterdir() if p.is_dir()):
            out = DedupIndex(storage, dataset).remove_records(record_ids)
            if out:
                removed[dataset] = out
    return removed
