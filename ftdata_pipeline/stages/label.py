"""Labeled stage: give classification records their label, or turn ranked responses into pairs.

Methods (``recipe.label.method``): ``none`` passes records through; ``source`` checks labels (or
pairs) already on the records; ``rules`` labels by the first matching regex; ``majority_vote``
takes the winning label of imported human annotations (rules as fallback) and measures
inter-annotator agreement; ``rankings`` turns K ranked responses per prompt into K·(K-1)/2
preference pairs. Rejects and stats carry counts, ids and labels only, never record text.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ftdata_pipeline.config import safe_regex
from ftdata_pipeline.config.models import LabelConfig, LabelRule, RecipeConfig
from ftdata_pipeline.records import ANNOTATION_SCHEMA, conform, record_id_expr
from ftdata_pipeline.stages.base import StageResult, concat_rejects, reject

STAGE = "labeled"

# Working columns; none of them survives into kept or rejected rows.
_LABEL = "__label"  # label the stage arrived at
_AGREEMENT = "__agreement"
_VIA = "__via"  # method that produced the label
_RULE = "__rule"  # reject rule, null when kept
_SCORE = "__score"
_DETAIL = "__detail"


def label(
    records: pl.LazyFrame, recipe: RecipeConfig, annotations: pl.LazyFrame | None = None
) -> StageResult:
    """Label (or pair) the records as the recipe's ``label`` section says."""
    cfg = recipe.label
    df = records.collect().sort("record_id")
    if cfg.method == "none":
        return StageResult(
            kept=df,
            rejected=concat_rejects([], df),
            rows_in=df.height,
            stats={"method": "none", "passthrough": True},
        )
    if cfg.method == "rankings":
        return _rankings(df)
    if cfg.method == "source" and recipe.kind == "preference":
        return _source_pairs(df)
    if cfg.method == "source":
        return _finish(df, cfg, _from_source(df), {})
    if cfg.method == "rules":
        return _finish(df, cfg, _from_rules(df, cfg.rules), {})
    if annotations is None:
        raise ValueError("label.method 'majority_vote' needs the annotations frame")
    ann = _clean_annotations(annotations.collect(), df)
    decided = _from_votes(df, cfg, ann["votes"])
    return _finish(df, cfg, decided, {"agreement": ann["agreement"], **ann["counts"]})


# --------------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------------


def _from_source(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        pl.col("label").alias(_LABEL),
        pl.lit(None, dtype=pl.Float64).alias(_AGREEMENT),
        pl.lit("source").alias(_VIA),
        pl.when(pl.col("label").is_null()).then(pl.lit("missing_label")).alias(_RULE),
        pl.lit(None, dtype=pl.Float64).alias(_SCORE),
        pl.when(pl.col("label").is_null()).then(pl.lit("record has no label")).alias(_DETAIL),
    )


def _rule_label(rules: list[LabelRule]) -> pl.Expr:
    """Label of the first rule whose pattern is found in ``text``; null if none matches."""
    expr = pl.lit(None, dtype=pl.String)
    for rule in reversed(rules):
        found = _search(pl.col("text"), rule.pattern)
        expr = pl.when(found).then(pl.lit(rule.label)).otherwise(expr)
    return expr


def _search(text: pl.Expr, pattern: str) -> pl.Expr:
    """``re.search`` semantics in Polars' linear-time engine (patterns validated by the config)."""
    return safe_regex.contains(text, pattern)


def _from_rules(df: pl.DataFrame, rules: list[LabelRule]) -> pl.DataFrame:
    matched = _rule_label(rules)
    return df.with_columns(matched.alias(_LABEL)).with_columns(
        pl.lit(None, dtype=pl.Float64).alias(_AGREEMENT),
        pl.lit("rules").alias(_VIA),
        pl.when(pl.col(_LABEL).is_null()).then(pl.lit("no_rule_matched")).alias(_RULE),
        pl.lit(None, dtype=pl.Float64).alias(_SCORE),
        pl.when(pl.col(_LABEL).is_null()).then(pl.lit("no rule pattern found in text")).alias(
            _DETAIL
        ),
    )


def _clean_annotations(raw: pl.DataFrame, df: pl.DataFrame) -> dict[str, Any]:
    """Annotations of this frame's records, one vote per (item, annotator), with agreement."""
    ann = conform(raw, ANNOTATION_SCHEMA).select(list(ANNOTATION_SCHEMA))
    usable = ann.filter(
        pl.col("item_key").is_not_null()
        & pl.col("annotator").is_not_null()
        & pl.col("label").is_not_null()
    )
    ours = usable.join(
        df.select(pl.col("source_key").alias("item_key")).unique(), on="item_key", how="semi"
    )
    # An annotator voting twice on one item counts once: their first annotation by key.
    votes = ours.sort("item_key", "annotator", "source_key", nulls_last=True).unique(
        ["item_key", "annotator"], keep="first", maintain_order=True
    )
    return {
        "votes": votes,
        "agreement": annotation_agreement(votes),
        "counts": {
            "annotations_used": votes.height,
            "annotations_unusable": ann.height - usable.height,
            "annotations_duplicate": ours.height - votes.height,
            "annotations_for_other_records": usable.height - ours.height,
        },
    }


def _from_votes(df: pl.DataFrame, cfg: LabelConfig, votes: pl.DataFrame) -> pl.DataFrame:
    counts = votes.group_by("item_key", "label").len("n")
    items = counts.group_by("item_key").agg(
        pl.col("n").sum().alias("__votes"),
        (pl.col("n") == pl.col("n").max()).sum().alias("__n_top"),
        # min() only breaks the tie deterministically; tied items are rejected anyway.
        pl.col("label").filter(pl.col("n") == pl.col("n").max()).min().alias("__winner"),
        (pl.col("n").max() / pl.col("n").sum()).alias("__share"),
    )
    joined = df.join(items, left_on="source_key", right_on="item_key", how="left")

    votes_n = pl.col("__votes")
    share = pl.col("__share")
    fallback = _rule_label(cfg.rules) if cfg.rules else pl.lit(None, dtype=pl.String)
    no_votes = votes_n.is_null()
    too_few = votes_n < cfg.min_votes
    tie = pl.col("__n_top") > 1
    weak = share < cfg.min_agreement
    use_votes = ~no_votes & ~too_few & ~tie & ~weak
    use_rules = (no_votes | too_few) & fallback.is_not_null()

    out = joined.with_columns(
        pl.when(use_votes).then(pl.col("__winner")).when(use_rules).then(fallback).alias(_LABEL),
        pl.when(use_votes).then(share).alias(_AGREEMENT),
        pl.when(use_votes)
        .then(pl.lit("majority_vote"))
        .when(use_rules)
        .then(pl.lit("rules"))
        .alias(_VIA),
        pl.when(use_votes | use_rules)
        .then(None)
        .when(no_votes)
        .then(pl.lit("unlabeled"))
        .when(too_few)
        .then(pl.lit("insufficient_votes"))
        .when(tie)
        .then(pl.lit("no_majority"))
        .otherwise(pl.lit("low_agreement"))
        .alias(_RULE),
        pl.when(use_votes | use_rules | no_votes)
        .then(None)
        .when(too_few)
        .then(votes_n.cast(pl.Float64))
        .otherwise(share)
        .alias(_SCORE),
        pl.when(use_votes | use_rules)
        .then(None)
        .when(no_votes)
        .then(pl.lit("no annotations" + ("; no rule matched" if cfg.rules else "")))
        .when(too_few)
        .then(
            pl.format(
                "{} vote(s) < min_votes {}" + ("; no rule matched" if cfg.rules else ""),
                votes_n,
                pl.lit(cfg.min_votes),
            )
        )
        .when(tie)
        .then(pl.format("tie for the top label among {} votes", votes_n))
        .otherwise(pl.format("agreement below min_agreement {}", pl.lit(cfg.min_agreement)))
        .alias(_DETAIL),
    )
    return out.drop("__votes", "__n_top", "__winner", "__share")


def _value_counts(frame: pl.DataFrame, column: str) -> dict[str, int]:
    counts = frame.group_by(column).len().sort(column)
    return dict(zip(counts[column].to_list(), counts["len"].to_list(), strict=True))


def _finish(
    df: pl.DataFrame, cfg: LabelConfig, decided: pl.DataFrame, extra: dict[str, Any]
) -> StageResult:
    """Apply the label set, split kept from rejected, and gather stats."""
    if cfg.label_set:
        outside = pl.col(_RULE).is_null() & ~pl.col(_LABEL).is_in(cfg.label_set)
        decided = decided.with_columns(
            pl.when(outside).then(pl.lit("label_not_in_set")).otherwise(pl.col(_RULE)).alias(_RULE),
            pl.when(outside)
            .then(pl.format("label from {} not in label_set", pl.col(_VIA)))
            .otherwise(pl.col(_DETAIL))
            .alias(_DETAIL),
        )
    columns = df.columns
    kept = (
        decided.filter(pl.col(_RULE).is_null())
        .with_columns(
            pl.col(_LABEL).alias("label"),
            pl.col(_AGREEMENT).cast(pl.Float64).alias("label_agreement"),
        )
    )
    dropped = decided.filter(pl.col(_RULE).is_not_null()).with_columns(
        # A rejected row shows the label the stage arrived at, if any, for review.
        pl.coalesce(_LABEL, "label").alias("label")
    )
    rejects = [
        reject(
            dropped.filter(pl.col(_RULE) == rule).select(*columns, _SCORE, _DETAIL),
            stage=STAGE,
            rule=rule,
            score=pl.col(_SCORE),
            detail=pl.col(_DETAIL),
        ).drop(_SCORE, _DETAIL)
        for rule in sorted(dropped[_RULE].unique().to_list())
    ]
    stats = {
        "method": cfg.method,
        "labels": _value_counts(kept, "label"),
        "labeled_by": _value_counts(kept, _VIA),
        **extra,
    }
    kept_df = kept.select(columns).sort("record_id")
    return StageResult(
        kept=kept_df,
        rejected=concat_rejects(rejects, kept_df).sort("record_id"),
        rows_in=df.height,
        stats=stats,
    )


# --------------------------------------------------------------------------------------------
# agreement
# --------------------------------------------------------------------------------------------
# Fleiss' and Cohen's kappa are two closed-form formulas; written here with Polars rather than
# pulling in a statistics package (statsmodels, scikit-learn) for them.


def fleiss_kappa(votes: pl.DataFrame) -> float | None:
    """Fleiss' kappa of ``votes`` (one row per vote: item_key, label), same rater count per item.

    None when undefined (fewer than 2 raters, no items, or a single category used throughout).
    """
    per_item = votes.group_by("item_key").len("r")
    if per_item.is_empty():
        return None
    raters = per_item["r"].unique()
    if raters.len() != 1:
        raise ValueError("Fleiss' kappa needs the same number of raters for every item")
    n = int(raters[0])
    n_items = per_item.height
    if n < 2:
        return None
    counts = votes.group_by("item_key", "label").len("n")
    # P_i: agreeing rater pairs on item i over all rater pairs; P_e: chance agreement.
    p_bar = (
        counts.group_by("item_key")
        .agg(((pl.col("n") * (pl.col("n") - 1)).sum() / (n * (n - 1))).alias("p_i"))["p_i"]
        .mean()
    )
    p_e = (
        counts.group_by("label").agg((pl.col("n").sum() / (n_items * n)).alias("p_j"))["p_j"] ** 2
    ).sum()
    if p_e >= 1:
        return None
    return float((p_bar - p_e) / (1 - p_e))


def cohen_kappas(votes: pl.DataFrame) -> pl.DataFrame:
    """Cohen's kappa for every annotator pair on the items both labelled.

    ``votes``: item_key, annotator, label (one per item and annotator). Returns annotator_a,
    annotator_b (a < b), items, kappa (null when chance agreement is 1), sorted by the pair.
    """
    v = votes.select("item_key", "annotator", "label")
    pairs = v.join(v, on="item_key", suffix="_b").filter(
        pl.col("annotator") < pl.col("annotator_b")
    )
    pair = ["annotator", "annotator_b"]
    observed = pairs.group_by(pair).agg(
        pl.len().alias("items"), (pl.col("label") == pl.col("label_b")).mean().alias("p_o")
    )
    marg_a = pairs.group_by(*pair, "label").len("n_a")
    marg_b = pairs.group_by(*pair, pl.col("label_b").alias("label")).len("n_b")
    chance = (
        marg_a.join(marg_b, on=[*pair, "label"], how="inner")
        .group_by(pair)
        .agg((pl.col("n_a") * pl.col("n_b")).sum().alias("nn"))
    )
    return (
        observed.join(chance, on=pair, how="left")
        .with_columns((pl.col("nn").fill_null(0) / pl.col("items") ** 2).alias("p_e"))
        .select(
            pl.col("annotator").alias("annotator_a"),
            pl.col("annotator_b"),
            pl.col("items").cast(pl.Int64),
            pl.when(pl.col("p_e") < 1)
            .then((pl.col("p_o") - pl.col("p_e")) / (1 - pl.col("p_e")))
            .alias("kappa"),
        )
        .sort("annotator_a", "annotator_b")
    )


def annotation_agreement(votes: pl.DataFrame) -> dict[str, Any]:
    """Agreement stats: Fleiss' kappa over items with the modal rater count, Cohen's per pair."""
    per_item = votes.group_by("item_key").len("r")
    stats: dict[str, Any] = {
        "items": per_item.height,
        "annotators": votes["annotator"].n_unique(),
        "fleiss_kappa": None,
        "fleiss_items": 0,
        "fleiss_raters": None,
    }
    if per_item.height:
        # Modal rater count; on a tie the larger count (more raters per item).
        modal = per_item.group_by("r").len().sort(["len", "r"], descending=True)["r"][0]
        items = per_item.filter(pl.col("r") == modal).select("item_key")
        kappa = fleiss_kappa(votes.join(items, on="item_key", how="semi"))
        stats |= {
            "fleiss_kappa": _round(kappa),
            "fleiss_items": items.height,
            "fleiss_raters": int(modal),
        }
    pairs = cohen_kappas(votes)
    stats["cohen_kappa"] = [
        {"annotators": [row["annotator_a"], row["annotator_b"]], "items": row["items"],
         "kappa": _round(row["kappa"])}
        for row in pairs.iter_rows(named=True)
    ]
    defined = pairs.filter(pl.col("kappa").is_not_null())
    stats["cohen_kappa_mean"] = (
        _round(float((defined["kappa"] * defined["items"]).sum() / defined["items"].sum()))
        if defined.height
        else None
    )
    return stats


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# --------------------------------------------------------------------------------------------
# preference
# --------------------------------------------------------------------------------------------


def _rankings(df: pl.DataFrame) -> StageResult:
    """Every pair of differently ranked responses to one prompt becomes a preference record.

    Accounting: ``rows_in`` counts responses and ``rows_kept`` the responses used in at least
    one pair; ``kept`` holds the pairs (``stats['pairs']``) — one response is in many pairs.
    """
    rankable = (
        pl.col("rank").is_not_null()
        & pl.col("conversation_id").is_not_null()
        & pl.col("response").is_not_null()
    )
    side = ["record_id", "source_key", "rank", "response", "prompt", "system",
            "dup_cluster_id", "created_at"]  # fmt: skip
    responses = df.filter(rankable).select("source", "conversation_id", *side)
    # Each unordered pair once (a < b by id), then oriented by rank.
    both = responses.join(responses, on=["source", "conversation_id"], suffix="_b").filter(
        pl.col("record_id") < pl.col("record_id_b")
    )
    tied = both.filter(pl.col("rank") == pl.col("rank_b")).height
    both = both.filter(pl.col("rank") != pl.col("rank_b"))
    a_wins = pl.col("rank") < pl.col("rank_b")

    def pick(name: str, winner: bool) -> pl.Expr:
        first, second = (name, f"{name}_b") if winner else (f"{name}_b", name)
        return pl.when(a_wins).then(pl.col(first)).otherwise(pl.col(second))

    oriented = both.select(
        pl.col("source"),
        pl.col("conversation_id"),
        pick("record_id", True).alias("__chosen_id"),
        pick("record_id", False).alias("__rejected_id"),
        pick("source_key", True).alias("__chosen_key"),
        pick("source_key", False).alias("__rejected_key"),
        pick("prompt", True).alias("prompt"),
        pick("system", True).alias("system"),
        pick("response", True).alias("chosen"),
        pick("response", False).alias("rejected"),
        pick("dup_cluster_id", True).alias("dup_cluster_id"),
        pl.max_horizontal("created_at", "created_at_b").alias("created_at"),
    )
    pairs = conform(
        oriented.with_columns(
            record_id_expr(pl.col("__chosen_id"), pl.col("__rejected_id")).alias("record_id"),
            pl.format("{}>{}", "__chosen_key", "__rejected_key").alias("source_key"),
        ).drop("__chosen_key", "__rejected_key")
    ).sort("record_id")
    used = pl.concat([pairs["__chosen_id"], pairs["__rejected_id"]]).unique()
    unused = df.filter(~pl.col("record_id").is_in(used.implode()))
    why = (
        pl.when(pl.col("rank").is_null())
        .then(pl.lit("response has no rank"))
        .when(pl.col("conversation_id").is_null())
        .then(pl.lit("response has no prompt id (conversation_id)"))
        .when(pl.col("response").is_null())
        .then(pl.lit("record has no response"))
        .otherwise(pl.lit("no differently ranked response to the same prompt"))
    )
    rejected = reject(unused, stage=STAGE, rule="no_pair", detail=why)
    kept = pairs.drop("__chosen_id", "__rejected_id")
    return StageResult(
        kept=kept,
        rejected=concat_rejects([rejected], df).sort("record_id"),
        rows_in=df.height,
        inputs_kept=used.len(),
        stats={
            "method": "rankings",
            "pairs": kept.height,
            "prompts": kept.select("source", "conversation_id").unique().height,
            "tied_pairs_dropped": tied,
            "responses_used": used.len(),
        },
    )


def _source_pairs(df: pl.DataFrame) -> StageResult:
    """Preference records that arrive as pairs: keep the complete ones."""
    complete = (
        pl.col("prompt").is_not_null()
        & pl.col("chosen").is_not_null()
        & pl.col("rejected").is_not_null()
    )
    dropped = reject(
        df.filter(~complete),
        stage=STAGE,
        rule="missing_pair",
        detail="record lacks prompt, chosen or rejected",
    )
    kept = df.filter(complete)
    return StageResult(
        kept=kept,
        rejected=concat_rejects([dropped], kept),
        rows_in=df.height,
        stats={"method": "source", "pairs": kept.height},
    )

