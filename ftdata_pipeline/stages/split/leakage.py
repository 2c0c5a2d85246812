"""Leakage between splits, measured on the split output: shared groups, near duplicates,
prompt-level leaks, and records a shared source puts in different splits of two datasets.

Every report holds counts and record ids only (the split stage runs after redaction, but
check metadata is readable by everyone with the UI, so no text goes in).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from ftdata_pipeline.config.models import LeakageConfig
from ftdata_pipeline.records import RECORD_ID, SOURCE, SOURCE_KEY, conform
from ftdata_pipeline.stages.split.groups import GROUP_KEY, base_group_key
from ftdata_pipeline.stages.split.similarity import (
    Pairs,
    distinct_texts,
    shingle_matrix,
    similar_pairs,
)
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


def near_duplicate_leaks(
    df: pl.DataFrame,
    kind: str,
    cfg: LeakageConfig,
    texts: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
) -> dict:
    """Pairs (train, validation/test) whose inputs reach ``cfg.near_duplicate_threshold``.

    ``eval_with_train_neighbour`` counts validation/test examples with at least one such train
    example, per split: the share of the held-out split that is not really unseen. ``search``:
    ``exact`` (every pair), or ``lsh`` where the exact search was too large (a lower bound).

    Similarity depends on the input alone, so it is computed once per distinct input and the
    records are counted after: datasets repeat inputs (a prompt answered several ways,
    tickets that differ only in their replies), and every repeat would otherwise multiply the
    pairs to compare.

    ``texts``: gives the inputs (one column for the frame's rows) when ``df`` holds no content
    (the split stage put it aside); they are dropped before the search.
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
    texts = (df.select(input_text(kind)) if texts is None else texts(df)).to_series()
    # the distinct inputs as positions (no copy of the texts), in text order
    first, inverse = distinct_texts(texts)
    rows = df.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"),
        pl.Series("_u", inverse, dtype=pl.UInt32),
        pl.col("split"),
        pl.col(RECORD_ID),
    )
    u = inverse.astype(np.int64)
    del inverse
    split = rows["split"].to_numpy()
    held, train = np.isin(split, EVAL_SPLITS), split == "train"
    n_texts = first.size
    n_held = np.bincount(u[held], minlength=n_texts)
    n_train = np.bincount(u[train], minlength=n_texts)
    x = shingle_matrix(texts, cfg.shingle_words, rows=first)
    del texts, first  # the matrix stands for them from here
    pairs = similar_pairs(
        x, cfg.near_duplicate_threshold, rows=np.flatnonzero(n_held), cols=np.flatnonzero(n_train)
    )
    del x
    # a pair of inputs stands for every (validation/test record, train record) pair holding them
    out["pairs"] = int((n_held[pairs.i] * n_train[pairs.j]).sum())
    out["search"] = "exact" if pairs.exact else "lsh"
    neighbour = np.zeros(n_texts, dtype=bool)
    neighbour[pairs.i] = True
    for name in EVAL_SPLITS:
        out["eval_with_train_neighbour"][name] = int(((split == name) & neighbour[u]).sum())
    side = np.where(held, "eval", np.where(train, "train", None))
    out["examples"] = _leak_examples(rows.with_columns(pl.Series("_side", side)), pairs,
                                     n_held, n_train)
    return out


def _leak_examples(
    rows: pl.DataFrame, pairs: Pairs, n_held: np.ndarray, n_train: np.ndarray
) -> list[dict]:
    """The first ``MAX_EXAMPLES`` record pairs, most similar first, then by row (held, train).

    Only the distinct-input pairs at or above the similarity where ``MAX_EXAMPLES`` record
    pairs are reached can hold them, and from each input only its first ``MAX_EXAMPLES``
    records of either side.
    """
    if len(pairs) == 0:
        return []
    order = np.argsort(-pairs.sim, kind="stable")
    reached = np.cumsum((n_held[pairs.i] * n_train[pairs.j])[order])
    cut = pairs.sim[order[min(int(np.searchsorted(reached, MAX_EXAMPLES)), len(order) - 1)]]
    top = pairs.sim >= cut
    first = (
        rows.filter(pl.col("_side").is_not_null())
        .sort("_row")
        .group_by("_side", "_u")
        .agg(pl.col("_row").head(MAX_EXAMPLES), pl.col(RECORD_ID).head(MAX_EXAMPLES))
        .explode("_row", RECORD_ID)
    )

    def side(name: str, text: str, row: str) -> pl.DataFrame:
        return first.filter(pl.col("_side") == name).select(
            pl.col("_u").alias(text), pl.col("_row").alias(row), pl.col(RECORD_ID).alias(name)
        )

    candidates = pl.DataFrame(
        {"_a": pairs.i[top], "_b": pairs.j[top], "_sim": pairs.sim[top]},
        schema={"_a": pl.UInt32, "_b": pl.UInt32, "_sim": pl.Float64},
    )
    best = (
        candidates.join(side("eval", "_a", "_i"), on="_a")
        .join(side("train", "_b", "_j"), on="_b")
        .sort(pl.col("_sim"), "_i", "_j", descending=[True, False, False])
        .head(MAX_EXAMPLES)
    )
    return [
        {"eval": e, "train": t, "jaccard": round(float(s), 3)}
        for e, t, s in best.select("eval", "train", "_sim").iter_rows()
    ]


def prompt_leaks(
    df: pl.DataFrame, kind: str, restore: Callable[[pl.DataFrame], pl.DataFrame] | None = None
) -> dict:
    """First user turns (normalized) found in train and in validation/test with different answers.

    ``restore``: fills the frame's content when it holds none (the split stage put it aside).
    """
    out = {"prompts": 0, "records": 0, "examples": []}
    if df.is_empty() or kind == "pretraining":
        return out
    keyed = (df if restore is None else restore(df)).select(
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


def cross_dataset_conflicts(
    df: pl.DataFrame | pl.LazyFrame, others: dict[str, pl.DataFrame]
) -> dict:
    """Records of this dataset that another dataset puts in another split.

    ``others``: dataset name -> its split output (needs source, source_key, split). Records
    are matched on (source, source_key), the source row they come from. ``train_test`` counts
    records that are train in one dataset and test in the other (either way): a model trained
    on one dataset is tested on its own training data by the other.
    """
    mine = (df.lazy().select(SOURCE, SOURCE_KEY, pl.col("split").alias("_here"))
            .unique([SOURCE, SOURCE_KEY]).collect())
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
