"""Leakage between splits, measured on the split output: shared groups, near duplicates,
prompt-level leaks, and records a shared source puts in different splits of two datasets.

Every report holds counts and record ids only (the split stage runs after redaction, but
check metadata is readable by everyone with the UI, so no text goes in).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ftdata_pipeline.config.models import LeakageConfig
from ftdata_pipeline.records import RECORD_ID, SOURCE, SOURCE_KEY, conform
from ftdata_pipeline.stages.split.groups import GROUP_KEY, base_group_key
from ftdata_pipeline.stages.split.similarity import shingle_matrix, similar_pairs
from ftdata_pipeline.stages.split.slices import answer, first_prompt, input_text, normalized

EVAL_SPLITS = ("validation", "test")
MAX_EXAMPLES = 10  # record-id pairs kept per finding, to start an investigation


def crossing(df: pl.DataFrame, column: str, across: str = "split") -> int:
    """How many distinct non-null values of ``column`` occur in more than one split (or
    other part named by ``across``: the RLHF step)."""
    if column not in df.columns or df.is_empty():
        return 0
    spread = (
        df.filter(pl.col(column).is_not_null())
        .group_by(column)
        .agg(pl.col(across).n_unique().alias("_n"))
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
        "group_keys": crossing(df.with_columns(base_group_key().alias(GROUP_KEY)), GROUP_KEY),
        "conversation_ids": crossing(df, "conversation_id"),
        "dup_cluster_ids": crossing(df, "dup_cluster_id"),
        "content_hashes": crossing(df, "content_hash"),
    }


def near_duplicate_leaks(df: pl.DataFrame, kind: str, cfg: LeakageConfig) -> dict:
    """Pairs (train, validation/test) whose inputs reach ``cfg.near_duplicate_threshold``.

    ``eval_with_train_neighbour`` counts validation/test examples with at least one such train
    example, per split: the share of the held-out split that is not really unseen.
    """
    out = {
        "threshold": cfg.near_duplicate_threshold,
        "shingle_words": cfg.shingle_words,
        "pairs": 0,
        "eval_with_train_neighbour": dict.fromkeys(EVAL_SPLITS, 0),
        "examples": [],
    }
    if df.is_empty():
        return out
    texts = df.select(input_text(kind)).to_series().to_list()
    splits = df["split"].to_list()
    x = shingle_matrix(texts, cfg.shingle_words)
    train = [i for i, s in enumerate(splits) if s == "train"]
    held = [i for i, s in enumerate(splits) if s in EVAL_SPLITS]
    pairs = similar_pairs(
        x, cfg.near_duplicate_threshold, rows=np.array(held, dtype=np.int64),
        cols=np.array(train, dtype=np.int64),
    )
    out["pairs"] = len(pairs)
    ids = df[RECORD_ID].to_list()
    for split in EVAL_SPLITS:
        out["eval_with_train_neighbour"][split] = len(
            {i for i in pairs.i.tolist() if splits[i] == split}
        )
    order = sorted(range(len(pairs)), key=lambda p: (-pairs.sim[p], pairs.i[p], pairs.j[p]))
    out["examples"] = [
        {"eval": ids[pairs.i[p]], "train": ids[pairs.j[p]], "jaccard": round(float(pairs.sim[p]), 3)}
        for p in order[:MAX_EXAMPLES]
    ]
    return out


def prompt_leaks(df: pl.DataFrame, kind: str) -> dict:
    """First user turns (normalized) found in train and in validation/test with different answers."""
    out = {"prompts": 0, "records": 0, "examples": []}
    if df.is_empty() or kind == "pretraining":
        return out
    keyed = df.select(
        RECORD_ID,
        "split",
        normalized(first_prompt(kind)).alias("_prompt"),
        answer(kind).fill_null("").alias("_answer"),
    ).filter(pl.col("_prompt").is_not_null() & (pl.col("_prompt") != ""))
    per_prompt = keyed.group_by("_prompt").agg(
        (pl.col("split") == "train").any().alias("_in_train"),
        pl.col("split").is_in(list(EVAL_SPLITS)).any().alias("_in_eval"),
        pl.col("_answer").n_unique().alias("_answers"),
        pl.col(RECORD_ID).sort().alias("_ids"),
    )
    leaking = per_prompt.filter(pl.col("_in_train") & pl.col("_in_eval") & (pl.col("_answers") > 1))
    out["prompts"] = leaking.height
    out["records"] = int(leaking["_ids"].list.len().sum() or 0)
    out["examples"] = [ids for ids in leaking.sort("_ids")["_ids"].to_list()[:MAX_EXAMPLES]]
    return out


def cross_dataset_conflicts(df: pl.DataFrame, others: dict[str, pl.DataFrame]) -> dict:
    """Records of this dataset that another dataset puts in another split.

    ``others``: dataset name -> its split output (needs source, source_key, split). Records
    are matched on (source, source_key), the source row they come from. ``train_test`` counts
    records that are train in one dataset and test in the other (either way): a model trained
    on one dataset is tested on its own training data by the other.
    """
    mine = df.select(SOURCE, SOURCE_KEY, pl.col("split").alias("_here")).unique([SOURCE, SOURCE_KEY])
    report: dict[str, dict] = {}
    for name in sorted(others):
        theirs = others[name].select(SOURCE, SOURCE_KEY, pl.col("split").alias("_there")).unique(
            [SOURCE, SOURCE_KEY]
        )
        joined = mine.join(theirs, on=[SOURCE, SOURCE_KEY], how="inner")
        if joined.is_empty():
            continue
        differ = joined.filter(pl.col("_here") != pl.col("_there"))
        train_test = differ.filter(
            pl.concat_list("_here", "_there").list.sort().list.join(",") == "test,train"
        )
        report[name] = {
            "shared_records": joined.height,
            "different_split": differ.height,
            "train_test": train_test.height,
            "pairs": {
                f"{a}->{b}": n
                for a, b, n in differ.group_by("_here", "_there").len().sort("_here", "_there").iter_rows()
            },
        }
    return report
