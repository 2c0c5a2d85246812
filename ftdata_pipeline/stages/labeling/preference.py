"""Preference pairs from human judgements: rankings, ratings, pairwise A/B/tie choices.

Every judgement (one annotator's ranking of the responses to a prompt, their ratings of them,
or one pairwise comparison) votes on each pair of responses it covers: for one side, for the
other, or a tie (equal ranks; ratings closer than ``min_margin``). Several annotators are
combined per pair by majority; the pair's agreement is the share of its votes that agree with
the majority. Pairs whose majority is a tie (or split evenly) are dropped and counted.

Which pairs become training pairs is configurable (InstructGPT uses every pair):
``all_pairs`` — every decided pair, K·(K−1)/2 for K fully ranked responses;
``best_vs_worst`` — one pair per prompt: the response with the best consensus against the worst;
``best_vs_rest`` — the best response against each other one (K−1 pairs).
The consensus order ranks responses by Copeland score (pair wins minus losses), then by their
mean normalised score, then by record id, so it is deterministic.

Pairs keep the prompt id as ``conversation_id``: the split stage keeps every pair of one prompt
in one split.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ftdata_pipeline.config.models import PreferenceConfig
from ftdata_pipeline.records import conform, record_id_expr
from ftdata_pipeline.stages.base import StageResult, concat_rejects, reject

STAGE = "labeled"
_SIDE = ["record_id", "source_key", "response", "prompt", "system", "dup_cluster_id",
         "created_at"]  # fmt: skip


def judgements_from_ranks(df: pl.DataFrame) -> pl.DataFrame:
    """One judgement per prompt from ranks carried on the records themselves (1 = best)."""
    return df.filter(pl.col("rank").is_not_null()).select(
        "record_id",
        pl.lit("source").alias("annotator"),
        pl.concat_str(["source", "conversation_id"], separator="\x1f").alias("judgement"),
        (-pl.col("rank").cast(pl.Float64)).alias("score"),
    )


def judgements_from_annotations(
    df: pl.DataFrame, ann: pl.DataFrame, value: str
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Judgements from annotation rows (joined to responses on (source, key)).

    ``value`` is ``rank`` (rankings and pairwise choices: lower is better) or ``rating``
    (higher is better). A judgement is one annotator's answers sharing a ``judgement`` id, or,
    without one, all their answers on one prompt.
    """
    usable = ann.filter(pl.col(value).is_not_null() & pl.col("annotator").is_not_null())
    responses = df.select(
        "record_id",
        "conversation_id",
        pl.col("source").alias("item_source"),
        pl.col("source_key").alias("item_key"),
    )
    joined = usable.join(responses, on=["item_source", "item_key"], how="inner")
    # One answer per annotator and response within a judgement: the first by key.
    group = pl.coalesce(
        pl.col("judgement") if "judgement" in joined.columns else pl.lit(None, pl.String),
        pl.concat_str([pl.col("source"), pl.col("annotator"), pl.col("item_source"),
                       pl.col("conversation_id")], separator="\x1f"),  # fmt: skip
    )
    out = (
        joined.with_columns(group.alias("judgement"))
        .sort("judgement", "record_id", "source_key")
        .unique(["judgement", "record_id"], keep="first", maintain_order=True)
        .select(
            "record_id",
            "annotator",
            "judgement",
            (-pl.col(value).cast(pl.Float64) if value == "rank" else pl.col(value).cast(pl.Float64))
            .alias("score"),
        )
    )
    counts = {
        "annotations_used": out.height,
        "annotations_without_value": ann.height - usable.height,
        "annotations_for_other_records": usable.height - joined.height,
    }
    return out, counts


def pairs_from_judgements(
    df: pl.DataFrame, judgements: pl.DataFrame, cfg: PreferenceConfig, *, margin: float
) -> StageResult:
    """Preference records from judgements over the response records in ``df``."""
    responses = df.filter(
        pl.col("conversation_id").is_not_null() & pl.col("response").is_not_null()
    ).select("source", "conversation_id", *_SIDE)
    j = judgements.join(responses.select("record_id", "source", "conversation_id"),
                        on="record_id", how="inner")  # fmt: skip
    # votes: every pair of responses to one prompt inside one judgement (a < b by id)
    both = j.join(j, on=["judgement", "source", "conversation_id"], suffix="_b").filter(
        pl.col("record_id") < pl.col("record_id_b")
    )
    diff = pl.col("score") - pl.col("score_b")
    votes = both.select(
        "source", "conversation_id", "record_id", "record_id_b", "annotator",
        pl.when(diff.abs() < max(margin, 1e-12)).then(0).when(diff > 0).then(1).otherwise(-1)
        .alias("vote"),
    )  # fmt: skip
    pair_keys = ["source", "conversation_id", "record_id", "record_id_b"]
    tallied = votes.group_by(pair_keys).agg(
        (pl.col("vote") == 1).sum().alias("a"),
        (pl.col("vote") == -1).sum().alias("b"),
        (pl.col("vote") == 0).sum().alias("tie"),
        pl.len().alias("n"),
        pl.col("annotator").n_unique().alias("annotators"),
    )
    top = pl.max_horizontal("a", "b", "tie")
    decided_expr = (top > pl.col("tie")) & (pl.col("a") != pl.col("b"))
    tallied = tallied.with_columns(
        decided_expr.alias("decided"),
        (top / pl.col("n")).alias("agreement"),
        (pl.col("a") > pl.col("b")).alias("a_wins"),
    )
    tied = tallied.filter(~pl.col("decided"))
    decided = tallied.filter(pl.col("decided"))
    low = decided.filter(pl.col("agreement") < cfg.min_pair_agreement)
    decided = decided.filter(pl.col("agreement") >= cfg.min_pair_agreement)
    oriented = decided.select(
        "source",
        "conversation_id",
        pl.when("a_wins").then("record_id").otherwise("record_id_b").alias("chosen_id"),
        pl.when("a_wins").then("record_id_b").otherwise("record_id").alias("rejected_id"),
        "agreement",
        "annotators",
    )
    selected = _select_pairs(oriented, j, cfg.pairs)
    pairs = _pair_records(selected, responses)
    used = pl.concat([selected["chosen_id"], selected["rejected_id"]]).unique()
    unused = df.filter(~pl.col("record_id").is_in(used.implode()))
    judged = j["record_id"].unique()
    why = (
        pl.when(pl.col("conversation_id").is_null())
        .then(pl.lit("response has no prompt id (conversation_id)"))
        .when(pl.col("response").is_null())
        .then(pl.lit("record has no response"))
        .when(~pl.col("record_id").is_in(judged.implode()))
        .then(pl.lit("response was not ranked or rated"))
        .otherwise(pl.lit(f"in no decided pair selected by '{cfg.pairs}'"))
    )
    rejected = reject(unused, stage=STAGE, rule="no_pair", detail=why)
    agreement = pairs["label_agreement"]
    multi = selected.filter(pl.col("annotators") > 1)
    stats: dict[str, Any] = {
        "pairs": pairs.height,
        "prompts": pairs.select("source", "conversation_id").unique().height,
        "tied_pairs_dropped": tied.height,
        "responses_used": used.len(),
        "pair_strategy": cfg.pairs,
        "judgements": j["judgement"].n_unique(),
        "low_agreement_pairs_dropped": low.height,
        "pair_agreement_mean": round(float(agreement.mean()), 4) if pairs.height else None,
        "pairs_with_several_annotators": multi.height,
        "pairs_unanimous": int((multi["agreement"] == 1.0).sum()),
    }
    return StageResult(
        kept=pairs,
        rejected=concat_rejects([rejected], df).sort("record_id"),
        rows_in=df.height,
        inputs_kept=used.len(),
        stats=stats,
    )


def _select_pairs(oriented: pl.DataFrame, j: pl.DataFrame, strategy: str) -> pl.DataFrame:
    if strategy == "all_pairs" or oriented.is_empty():
        return oriented
    prompt = ["source", "conversation_id"]
    wins = oriented.group_by(*prompt, pl.col("chosen_id").alias("record_id")).len("w")
    losses = oriented.group_by(*prompt, pl.col("rejected_id").alias("record_id")).len("l")
    # mean score per response, normalised per judgement so ranks and ratings mix fairly
    norm = j.with_columns(
        ((pl.col("score") - pl.col("score").min().over("judgement"))
         / (pl.col("score").max() - pl.col("score").min()).over("judgement")).fill_nan(0.5)
        .alias("norm")
    ).group_by("record_id").agg(pl.col("norm").mean())  # fmt: skip
    members = pl.concat(
        [oriented.select(*prompt, pl.col(c).alias("record_id")) for c in ("chosen_id",
                                                                          "rejected_id")]
    ).unique()  # fmt: skip
    order = (
        members.join(wins, on=[*prompt, "record_id"], how="left")
        .join(losses, on=[*prompt, "record_id"], how="left")
        .join(norm, on="record_id", how="left")
        .with_columns(  # counts are unsigned: cast before subtracting
            (pl.col("w").fill_null(0).cast(pl.Int64) - pl.col("l").fill_null(0).cast(pl.Int64))
            .alias("copeland")
        )
        .sort([*prompt, "copeland", "norm", "record_id"], descending=[False, False, True, True,
                                                                      False])  # fmt: skip
    )
    best = order.group_by(prompt, maintain_order=True).first().select(
        *prompt, pl.col("record_id").alias("best")
    )
    worst = order.group_by(prompt, maintain_order=True).last().select(
        *prompt, pl.col("record_id").alias("worst")
    )
    with_best = oriented.join(best, on=prompt).join(worst, on=prompt)
    involves_best = (pl.col("chosen_id") == pl.col("best")) | (pl.col("rejected_id") == pl.col("best"))
    if strategy == "best_vs_rest":
        keep = involves_best
    else:  # best_vs_worst
        keep = involves_best & (
            (pl.col("chosen_id") == pl.col("worst")) | (pl.col("rejected_id") == pl.col("worst"))
        )
    return with_best.filter(keep).drop("best", "worst")


def _pair_records(selected: pl.DataFrame, responses: pl.DataFrame) -> pl.DataFrame:
    side = responses.select(*_SIDE)
    chosen = side.rename({c: f"{c}_c" for c in _SIDE})
    rejected = side.rename({c: f"{c}_r" for c in _SIDE})
    joined = selected.join(chosen, left_on="chosen_id", right_on="record_id_c").join(
        rejected, left_on="rejected_id", right_on="record_id_r"
    )
    out = joined.select(
        record_id_expr(pl.col("chosen_id"), pl.col("rejected_id")).alias("record_id"),
        "source",
        pl.format("{}>{}", "source_key_c", "source_key_r").alias("source_key"),
        "conversation_id",
        pl.col("prompt_c").alias("prompt"),
        pl.col("system_c").alias("system"),
        pl.col("response_c").alias("chosen"),
        pl.col("response_r").alias("rejected"),
        pl.col("dup_cluster_id_c").alias("dup_cluster_id"),
        pl.max_horizontal("created_at_c", "created_at_r").alias("created_at"),
        pl.col("agreement").alias("label_agreement"),
    )
    return conform(out).sort("record_id")
