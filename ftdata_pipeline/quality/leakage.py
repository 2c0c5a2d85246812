"""Split leakage as data: one row per grouping key with the number of splits it appears in.

Records sharing a conversation, a duplicate cluster or a content hash must all land in one
split. Turning that rule into a derived frame lets an ordinary GX expectation (n_splits <= 1)
verify it and report how many keys leak, without any key or content leaving the frame.
"""

from __future__ import annotations

import polars as pl

from ftdata_pipeline.config.models import ExpectationConfig

GROUP_KEYS = ("conversation_id", "dup_cluster_id", "content_hash")
LEAKAGE_SCHEMA = {"key_type": pl.String, "key": pl.String, "n_splits": pl.Int64}


def split_leakage(df: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """(key_type, key, n_splits) for every non-null grouping key, sorted by key_type and key.

    Of a LazyFrame only the key columns and the split are read."""
    names = df.collect_schema().names()
    if "split" not in names:
        raise ValueError("split_leakage needs a 'split' column")
    lazy = df.lazy()
    frames = [
        lazy.filter(pl.col(key).is_not_null() & pl.col("split").is_not_null())
        .group_by(key)
        .agg(pl.col("split").n_unique().cast(pl.Int64).alias("n_splits"))
        .select(
            pl.lit(key).alias("key_type"),
            pl.col(key).cast(pl.String).alias("key"),
            "n_splits",
        )
        for key in GROUP_KEYS
        if key in names
    ]
    if not frames:
        return pl.DataFrame(schema=LEAKAGE_SCHEMA)
    return pl.concat(frames).sort("key_type", "key").collect()


def leaking_keys(leakage: pl.DataFrame) -> dict[str, int]:
    """Number of keys found in more than one split, per key type (all key types listed)."""
    counts = dict.fromkeys(GROUP_KEYS, 0)
    found = leakage.filter(pl.col("n_splits") > 1).group_by("key_type").len()
    for key_type, n in found.iter_rows():
        counts[key_type] = n
    return counts


def leakage_expectations() -> list[ExpectationConfig]:
    """Expectations to run on ``split_leakage(df)``: every key sits in exactly one split."""
    return [
        ExpectationConfig(
            expectation="ExpectColumnValuesToBeBetween",
            kwargs={"column": "n_splits", "min_value": 1, "max_value": 1},
            severity="error",
        )
    ]
