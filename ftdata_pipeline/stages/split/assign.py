"""Which split each group goes to: a hash of its key, stratified within the group constraint.

The hash: ``u = sha256(f"{seed}:{group key}")`` read as a number in [0, 1); ``u`` below the
train ratio is train, then validation, then test. A group key is built from the source record
(its conversation, duplicate cluster or record id, the record id being a hash of source and
source key), never from the dataset, so with one seed every dataset that reads a record puts
it in the same split, and adding data never moves an existing group.

Stratified: within each stratum (a combination of ``stratify_by`` attributes), groups are taken
in ``u`` order and cut where the running record count reaches the ratios, so each stratum is
split at the configured ratios (to the size of one group) instead of only on average. That
uses the other groups of the stratum, so it may move a group across a boundary relative to
the hash: groups holding a record of a source another recipe also reads are *pinned* to their
hash split (``shared_sources: pin``), and the stratification fills each stratum's remaining
quota with the other groups.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

from ftdata_pipeline.records import SPLITS

U = "_u"
PRIORITY = "_priority"
STRATUM = "_stratum"
PINNED = "_pinned"  # the split a record is pinned to (null: free)


def unit_interval(seed: int, keys: pl.Expr, offset: int = 0) -> pl.Expr:
    """u in [0, 1): bytes [offset, offset+8) of sha256(f"{seed}:{key}") as an integer / 2**64.

    offset 0 assigns the split; offset 8 orders groups for the size target; offset 16 orders
    them for the RLHF steps. Sampling by the
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


def hash_split(u: pl.Expr, ratios: dict[str, float]) -> pl.Expr:
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


def _quota_split(free: pl.DataFrame, n_stratum: int, pinned: dict[str, int],
                 ratios: dict[str, float], names: tuple[str, ...] = SPLITS) -> list[str]:
    """Splits of a stratum's free groups (sorted by u): fill what the pinned ones left.

    ``names``: the parts cut in order (the splits; the RLHF steps reuse the same cut)."""
    total_free = int(free["_size"].sum())
    remaining = np.array(
        [max(ratios[s] * n_stratum - pinned.get(s, 0), 0.0) for s in names], dtype=float
    )
    if remaining.sum() <= 0:
        remaining = np.array([ratios[s] for s in names], dtype=float)
    remaining *= total_free / remaining.sum()
    cuts = np.cumsum(remaining)
    sizes = free["_size"].to_numpy().astype(float)
    middle = np.cumsum(sizes) - sizes / 2
    index = np.searchsorted(cuts, middle, side="right")
    # Never past the last split with a share (float rounding at the end of the line).
    last = max(i for i, s in enumerate(names) if remaining[i] > 0)
    return [names[min(i, last)] for i in index]


def assign_splits(df: pl.DataFrame, group_key: str, ratios: dict[str, float],
                  stratified: bool) -> pl.DataFrame:
    """Add ``split``; needs U (constant within a group), STRATUM and PINNED columns.

    A group holding pinned records takes their split (grouping never mixes two pins).
    """
    groups = (
        df.group_by(group_key)
        .agg(
            pl.len().alias("_size"),
            pl.col(U).first(),
            pl.col(PINNED).drop_nulls().first().alias("_pin"),
            # a group's stratum: its most frequent member stratum (smallest on ties)
            pl.col(STRATUM).sort().mode().sort().first(),
        )
        .with_columns(
            pl.coalesce(pl.col("_pin"), hash_split(pl.col(U), ratios)).alias("_hash_split"),
            pl.col("_pin").is_not_null().alias(PINNED),
        )
        .sort(U, group_key)
    )
    if not stratified:
        chosen = groups.select(group_key, pl.col("_hash_split").alias("split"))
    else:
        parts = []
        for (stratum,), members in groups.group_by(STRATUM, maintain_order=True):
            pinned_groups = members.filter(pl.col(PINNED))
            free = members.filter(~pl.col(PINNED))
            pinned_counts = dict(
                pinned_groups.group_by("_hash_split").agg(pl.col("_size").sum()).iter_rows()
            )
            parts.append(pinned_groups.select(group_key, pl.col("_hash_split").alias("split")))
            if free.height:
                splits = _quota_split(free, int(members["_size"].sum()), pinned_counts, ratios)
                parts.append(
                    free.select(group_key).with_columns(pl.Series("split", splits, pl.String))
                )
        chosen = pl.concat(parts) if parts else groups.select(group_key).with_columns(
            pl.lit(None, dtype=pl.String).alias("split")
        )
    return df.drop("split", strict=False).join(
        chosen, on=group_key, how="left", maintain_order="left"
    )


def ratio_report(counts: dict[str, int], ratios: dict[str, float], tolerance: float) -> dict:
    """Configured vs actual share per split, the largest deviation, and whether it is in tolerance."""
    total = sum(counts.values())
    actual = {s: (counts.get(s, 0) / total if total else 0.0) for s in SPLITS}
    deviation = max((abs(actual[s] - ratios[s]) for s in SPLITS), default=0.0)
    return {
        "configured": {s: ratios[s] for s in SPLITS},
        "actual": {s: round(actual[s], 4) for s in SPLITS},
        "max_deviation": round(deviation, 4),
        "tolerance": tolerance,
        "within_tolerance": deviation <= tolerance + 1e-12,
    }
