"""One partition of a stage: the dedup index, the unchanged-partition ledger, per-partition stats.

- ``DedupIndex``: the per-dataset index of what each curated partition kept (content hashes,
  MinHash signatures and band keys; never text), one file per partition in the restricted root,
  written atomically. Rematerializing a partition replaces its own file.
- ``run_partition``: runs a stage's work for one partition, unless the partition's input
  version and the recipe's config hash are those of its last run and that run's output is still
  stored: then the stored result is returned and nothing is recomputed (``unchanged: true``).
- ``write_partition_stats``: counts of one partition, and the stage's totals over all stored
  partitions (what the dataset card and ``ftdata`` read).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from ftdata_pipeline.governance.versions import frame_hash
from ftdata_pipeline.orchestration.storage import (
    PipelineStorage,
    atomic_write_bytes,
    atomic_write_parquet,
    partition_file_name,
    stored_partitions,
)
from ftdata_pipeline.records import RECORD_ID
from ftdata_pipeline.stages.base import StageResult
from ftdata_pipeline.stages.curation.index import INDEX_SCHEMA, empty_index

UNCHANGED = "unchanged"


class DedupIndex:
    """What each curated partition of one dataset kept, for deduplication across partitions."""

    def __init__(self, storage: PipelineStorage, dataset: str):
        self.folder = storage.restricted_root() / "dedup_index" / dataset

    def load(self) -> pl.DataFrame:
        files = stored_partitions(self.folder)
        if not files:
            return empty_index()
        return pl.concat([pl.read_parquet(p).cast(INDEX_SCHEMA) for p in files.values()])

    def replace(self, partition: str, entries: pl.DataFrame) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        atomic_write_parquet(
            entries.cast(INDEX_SCHEMA), self.folder / partition_file_name(partition), private=True
        )

    def remove_records(self, record_ids: list[str]) -> dict[str, int]:
        """Drop the entries of these records (erased rows); entries removed per partition."""
        removed: dict[str, int] = {}
        for key, path in stored_partitions(self.folder).items():
            entries = pl.read_parquet(path)
            left = entries.filter(~pl.col(RECORD_ID).is_in(record_ids))
            if left.height != entries.height:
                atomic_write_parquet(left, path, private=True)
                removed[key] = entries.height - left.height
        return removed


def _ledger_path(storage: PipelineStorage, dataset: str, stage: str, partition: str) -> Path:
    name = partition_file_name(partition).removesuffix(".parquet") + ".json"
    return storage.restricted_root() / "partition_ledger" / dataset / stage / name


def _output_hash(df: pl.DataFrame) -> str:
    return frame_hash(df.rechunk())


def _stored_form(df: pl.DataFrame) -> pl.DataFrame:
    """The frame as it reads back from Parquet (Arrow buffers can differ from a computed
    frame's with equal values), so the ledger's hash is the stored file's."""
    buffer = io.BytesIO()
    df.write_parquet(buffer, compression="zstd", statistics=False)
    buffer.seek(0)
    return pl.read_parquet(buffer)


def run_partition(
    storage: PipelineStorage,
    *,
    dataset: str,
    stage: str,
    partition: str,
    inputs: pl.DataFrame,
    cfg_hash: str,
    restricted: bool,
    work: Callable[[], StageResult],
    reject_restricted: bool,
) -> StageResult:
    """``work()`` for this partition, or its stored result when nothing it depends on changed."""
    ledger_path = _ledger_path(storage, dataset, stage, partition)
    input_version = frame_hash(inputs.rechunk())
    stored = _reuse(storage, ledger_path, dataset, stage, partition, input_version, cfg_hash,
                    restricted, reject_restricted)
    if stored is not None:
        return stored
    result = work()
    ledger = {
        "input_version": input_version,
        "config_hash": cfg_hash,
        "output_version": _output_hash(_stored_form(result.kept)),
        "rows_in": result.rows_in,
        "inputs_kept": result.inputs_kept,
        "stats": result.stats,
    }
    data = json.dumps(ledger, sort_keys=True, default=str).encode("utf-8")
    atomic_write_bytes(ledger_path, data, private=True)
    return result


def _reuse(storage, ledger_path, dataset, stage, partition, input_version, cfg_hash,
           restricted, reject_restricted) -> StageResult | None:
    if not ledger_path.exists():
        return None
    ledger = json.loads(ledger_path.read_text("utf-8"))
    if (ledger.get("input_version"), ledger.get("config_hash")) != (input_version, cfg_hash):
        return None
    out = storage.asset_path([dataset, stage], restricted=restricted, partition=partition)
    rejects = storage.rejects_path(dataset, stage, restricted=reject_restricted,
                                   partition=partition)
    if not (out.exists() and rejects.exists()):
        return None
    kept = pl.read_parquet(out)
    if _output_hash(kept) != ledger.get("output_version"):
        return None  # a run stopped between its bookkeeping and its output: do the work
    return StageResult(
        kept=kept,
        rejected=pl.read_parquet(rejects),
        rows_in=int(ledger["rows_in"]),
        stats={**ledger.get("stats", {}), UNCHANGED: True},
        inputs_kept=ledger.get("inputs_kept"),
    )


_SUMMED = ("rows_in", "rows_kept", "rows_rejected", "rows_out")


def write_partition_stats(
    storage: PipelineStorage, dataset: str, stage: str, partition: str, counts: dict[str, Any]
) -> dict[str, Any]:
    """Store one partition's counts; rewrite the stage's totals over all its partitions."""
    folder = storage.stats_path(dataset, stage).with_suffix("")
    name = partition_file_name(partition).removesuffix(".parquet") + ".json"
    data = json.dumps(counts, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write_bytes(folder / name, data.encode("utf-8"))
    per = {
        p.name: json.loads(p.read_text("utf-8")) for p in sorted(folder.glob("*.json"))
    }
    total: dict[str, Any] = {"stage": stage, **{k: 0 for k in _SUMMED}, "drops": {}}
    for one in per.values():
        for k in _SUMMED:
            total[k] += int(one.get(k) or 0)
        for rule, n in (one.get("drops") or {}).items():
            total["drops"][rule] = total["drops"].get(rule, 0) + n
    total["drops"] = dict(sorted(total["drops"].items()))
    total["stats"] = {"partitions": len(per)}
    storage.write_stats(dataset, stage, total)
    return total
