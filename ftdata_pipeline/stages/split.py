"""The split stage: group-aware, deterministic train/validation/test assignment with a size target.

A record's split depends only on the seed and its group key, never on the rest of the data,
so adding data does not move existing groups between splits. Records that share a
conversation, a duplicate cluster or a content hash are one group: they always land together.
"""

from __future__ import annotations

import hashlib

import polars as pl

from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.records import (
    KIND_REQUIRED_FIELDS,
    RECORD_ID,
    SOURCE,
    SOURCE_KEY,
    SPLITS,
    conform,
)
from ftdata_pipeline.stages.base import StageResult, concat_rejects, reject

STAGE = "split"

GROUP_KEY = "_group_key"
_U = "_u"
_PRIORITY = "_priority"
_LINKS = ("conversation_id", "dup_cluster_id", "content_hash")


def base_group_key() -> pl.Expr:
    """A record's own group key: its conversation, else its duplicate cluster, else itself."""
    return pl.coalesce(pl.col("conversation_id"), pl.col("dup_cluster_id"), pl.col(RECORD_ID))


def _group_keys(df: pl.DataFrame) -> pl.DataFrame:
    """Add GROUP_KEY: the smallest base key of the record's connected component.

    A near-duplicate cluster may span two conversations; the coalesced key alone would then
    let the cluster cross splits. Propagating the minimum key over every shared link until
    nothing changes merges such groups (vectorized label propagation; it converges in as many
    rounds as the longest chain of links, usually one or two). Without cross links the key is
    the base key unchanged.
    """
    df = df.with_columns(base_group_key().alias(GROUP_KEY))
    while True:
        before = df[GROUP_KEY]
        for link in _LINKS:
            df = df.with_columns(
                pl.when(pl.col(link).is_not_null())
                .then(pl.col(GROUP_KEY).min().over(link))
                .otherwise(pl.col(GROUP_KEY))
                .alias(GROUP_KEY)
            )
        if df[GROUP_KEY].equals(before):
            return df


def unit_interval(seed: int, keys: pl.Expr, offset: int = 0) -> pl.Expr:
    """u in [0, 1): bytes [offset, offset+8) of sha256(f"{seed}:{key}") as an integer / 2**64.

    offset 0 assigns the split; offset 8 orders groups for the size target. Sampling by the
    same bytes that assign the split would keep only the lowest u, i.e. only train.
    """

    def _u(s: pl.Series) -> pl.Series:
        return pl.Series(
            [
                int.from_bytes(
                    hashlib.sha256(f"{seed}:{k}".encode()).digest()[offset : offset + 8], "big"
                )
                / 2**64
                for k in s.to_list()
            ],
            dtype=pl.Float64,
        )

    return keys.map_batches(_u, return_dtype=pl.Float64)


def _complete(kind: str) -> tuple[pl.Expr, pl.Expr]:
    """(record is complete, comma-separated names of its missing fields)."""
    present = {}
    for name in KIND_REQUIRED_FIELDS[kind]:
        col = pl.col(name)
        if name == "messages":
            present[name] = col.is_not_null() & (col.list.len() > 0)
        else:
            present[name] = col.is_not_null() & (col.str.strip_chars().str.len_chars() > 0)
    missing = pl.concat_str(
        [pl.when(~ok).then(pl.lit(name)) for name, ok in present.items()],
        separator=",",
        ignore_nulls=True,
    )
    return pl.all_horizontal(present.values()), missing


def _assign(u: pl.Expr, ratios: dict[str, float]) -> pl.Expr:
    # A split with ratio 0 must stay empty even when float sums fall just short of 1.
    cut_train = ratios["train"] if ratios["validation"] + ratios["test"] > 0 else 1.0
    cut_val = ratios["train"] + ratios["validation"] if ratios["test"] > 0 else 1.0
    return (
        pl.when(u < cut_train)
        .then(pl.lit("train"))
        .when(u < cut_val)
        .then(pl.lit("validation"))
        .otherwise(pl.lit("test"))
    )


def _size_target(df: pl.DataFrame, max_records: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep whole groups in (priority, key) order while the running total stays within the budget."""
    groups = (
        df.group_by(GROUP_KEY)
        .agg(pl.len().alias("_size"), pl.col(_PRIORITY).first())
        .sort(_PRIORITY, GROUP_KEY)
        .with_columns(pl.col("_size").cum_sum().alias("_running"))
    )
    df = df.join(groups.select(GROUP_KEY, "_running"), on=GROUP_KEY, how="left")
    over = pl.col("_running") > max_records
    dropped = reject(
        df.filter(over),
        stage=STAGE,
        rule="size_target",
        score=pl.col("_running"),
        detail=f"max_records={max_records}",
    )
    return df.filter(~over).drop("_running"), dropped.drop("_running")


def _per_split(df: pl.DataFrame, value: pl.Expr) -> dict[str, int]:
    counts = dict.fromkeys(SPLITS, 0)
    for split, n in df.group_by("split").agg(value).iter_rows():
        counts[split] = int(n)
    return counts


def _crossing(df: pl.DataFrame, column: str) -> int:
    """How many distinct non-null values of ``column`` occur in more than one split."""
    if column not in df.columns or df.is_empty():
        return 0
    spread = (
        df.filter(pl.col(column).is_not_null())
        .group_by(column)
        .agg(pl.col("split").n_unique().alias("_n"))
    )
    return int(spread.filter(pl.col("_n") > 1).height)


def leakage_report(df: pl.DataFrame) -> dict:
    """Group keys, dup_cluster_ids and content_hashes found in more than one split (all 0 = ok).

    Group keys here are the records' own keys (conversation, else duplicate cluster, else
    record id), computed from the frame so any split output can be checked.
    """
    if "split" not in df.columns or df.is_empty():
        return {"group_keys": 0, "conversation_ids": 0, "dup_cluster_ids": 0, "content_hashes": 0}
    df = conform(df)
    return {
        "group_keys": _crossing(df.with_columns(base_group_key().alias(GROUP_KEY)), GROUP_KEY),
        "conversation_ids": _crossing(df, "conversation_id"),
        "dup_cluster_ids": _crossing(df, "dup_cluster_id"),
        "content_hashes": _crossing(df, "content_hash"),
    }


def split(records: pl.LazyFrame, recipe: RecipeConfig) -> StageResult:
    """Reject incomplete examples, apply the size target, assign splits (see module docstring)."""
    cfg = recipe.split
    # Sorted so that every later step sees the same row order whatever the input order.
    df = conform(records).collect().sort(RECORD_ID, SOURCE, SOURCE_KEY, nulls_last=True)
    rows_in = df.height
    rejects: list[pl.DataFrame] = []

    complete, missing = _complete(recipe.kind)
    flagged = df.with_columns(complete.fill_null(False).alias("_ok"), missing.alias("_missing"))
    incomplete = reject(
        flagged.filter(~pl.col("_ok")),
        stage=STAGE,
        rule="incomplete_example",
        detail=pl.col("_missing"),
    )
    rejects.append(incomplete.drop("_ok", "_missing"))
    df = flagged.filter(pl.col("_ok")).drop("_ok", "_missing")

    df = _group_keys(df)
    # Hashed once per group, not per record.
    keys = df.select(GROUP_KEY).unique().with_columns(
        unit_interval(cfg.seed, pl.col(GROUP_KEY)).alias(_U),
        unit_interval(cfg.seed, pl.col(GROUP_KEY), offset=8).alias(_PRIORITY),
    )
    df = df.join(keys, on=GROUP_KEY, how="left", maintain_order="left")
    if cfg.max_records is not None and df.height > cfg.max_records:
        df, dropped = _size_target(df, cfg.max_records)
        rejects.append(dropped.drop(GROUP_KEY, _U, _PRIORITY))

    df = df.with_columns(_assign(pl.col(_U), cfg.ratios).alias("split"))
    stats = {
        "records": _per_split(df, pl.len()),
        "groups": _per_split(df, pl.col(GROUP_KEY).n_unique()),
        "groups_crossing_splits": _crossing(df, GROUP_KEY),
        "merged_groups": int(
            df.group_by(GROUP_KEY).agg(base_group_key().n_unique().alias("_n"))
            .filter(pl.col("_n") > 1).height
        ),
        "leakage": leakage_report(df.drop(GROUP_KEY, _U, _PRIORITY)),
    }
    if recipe.kind == "classification":
        labels: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
        for split_name, label, n in (
            df.group_by("split", "label").len().sort("split", "label").iter_rows()
        ):
            labels[split_name][label] = int(n)
        stats["labels"] = labels

    order = [RECORD_ID, SOURCE, SOURCE_KEY]
    kept = conform(df.drop(GROUP_KEY, _U, _PRIORITY)).sort(["split", *order], nulls_last=True)
    rejected = concat_rejects(rejects, kept.clear()).sort(order, nulls_last=True)
    return StageResult(kept=kept, rejected=rejected, rows_in=rows_in, stats=stats)
