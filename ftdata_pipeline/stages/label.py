"""Labeled stage: labels, preference pairs or distilled examples, as ``recipe.label`` says.

Methods (``recipe.label.method``): ``none`` passes records through; ``source`` checks labels (or
pairs) already on the records; ``rules`` labels by labeling functions (or the first matching
rule); ``majority_vote`` takes the annotators' label (single or multi-label; labeling functions as
fallback), measures agreement and sends contested items to the review queue; ``rankings`` and
``ratings`` turn human judgements into preference pairs (``ratings`` on chat data gives KTO's
desirable / undesirable); ``teacher`` answers prompts with teacher outputs (distillation). The
parts live in ``stages/labeling/``. Rejects and stats carry counts, ids and labels only, never
record text.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ftdata_pipeline.config.models import LabelConfig, RecipeConfig
from ftdata_pipeline.records import ANNOTATION_SCHEMA, conform
from ftdata_pipeline.stages.base import StageResult, concat_rejects, reject
from ftdata_pipeline.stages.labeling.agreement import (  # noqa: F401 - re-exported
    annotation_agreement,
    cohen_kappas,
    multi_label_agreement,
    fleiss_kappa,
    item_agreement,
    krippendorff_alpha,
)
from ftdata_pipeline.stages.labeling.distill import distill
from ftdata_pipeline.stages.labeling.preference import (
    judgements_from_annotations,
    judgements_from_ranks,
    pairs_from_judgements,
)
from ftdata_pipeline.stages.labeling.review import NEEDS_REVIEW, flag_duplicate_conflicts
from ftdata_pipeline.stages.labeling.rules import apply_functions, first_rule_label

STAGE = "labeled"

# Working columns; none of them survives into kept or rejected rows.
_LABEL = "__label"  # label the stage arrived at
_AGREEMENT = "__agreement"
_VIA = "__via"  # method that produced the label
_RULE = "__rule"  # reject rule, null when kept
_SCORE = "__score"
_DETAIL = "__detail"


def label(
    records: pl.LazyFrame,
    recipe: RecipeConfig,
    annotations: pl.LazyFrame | None = None,
    teacher_outputs: pl.LazyFrame | None = None,
) -> StageResult:
    """Label (or pair, or distill) the records as the recipe's ``label`` section says."""
    cfg = recipe.label
    if cfg.method == "none":
        return _passthrough(records)
    df = records.collect().sort("record_id")
    if cfg.method == "teacher":
        if teacher_outputs is None:
            raise ValueError("label.method 'teacher' needs the teacher outputs frame")
        return distill(df, recipe, teacher_outputs.collect())
    if cfg.method == "ratings" and recipe.kind == "chat_sft":
        return _thumbs_from_ratings(df, recipe, annotations)
    if cfg.method in ("rankings", "ratings"):
        return _preference(df, recipe, annotations)
    if cfg.method == "source" and recipe.kind == "preference":
        return _source_pairs(df)
    if cfg.method == "source":
        return _finish(df, cfg, _from_source(df), {})
    if cfg.method == "rules":
        decided, extra = _from_rules(df, cfg)
        return _finish(df, cfg, decided, extra)
    if annotations is None:
        raise ValueError("label.method 'majority_vote' needs the annotations frame")
    ann = _clean_annotations(annotations.collect(), df, recipe)
    ruled, extra = _with_rule_labels(df, cfg)
    decide = _from_multi_votes if cfg.multi_label else _from_votes
    decided = decide(ruled, cfg, ann["votes"], ann["reviews"]).drop(_LF, _LF_TIE)
    return _finish(df, cfg, decided, {"agreement": ann["agreement"], **ann["counts"], **extra})


def _passthrough(records: pl.LazyFrame) -> StageResult:
    """Nothing to decide: the records as they are, in id order. Records already in id order
    (the redacted stage keeps the curated order) pass as the scan they came as, so the step
    never holds them; only their ids are read to know."""
    ids = records.select("record_id").collect()["record_id"]
    kept = records if ids.is_sorted() else records.collect().sort("record_id")
    return StageResult(
        kept=kept,
        rejected=concat_rejects([], records.clear().collect()),
        rows_in=ids.len(),
        stats={"method": "none", "passthrough": True},
    )


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


_LF = "__lf_label"  # labeling functions' combined vote
_LF_TIE = "__lf_tie"


def _with_rule_labels(df: pl.DataFrame, cfg: LabelConfig) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Add the rules' label (``_LF``, null when none applies) and per-function stats."""
    if cfg.functions:
        votes, analysis = apply_functions(df, cfg.functions, cfg.vote, cfg.multi_label)
        out = df.join(
            votes.select("record_id", pl.col("label").alias(_LF), pl.col("tie").alias(_LF_TIE)),
            on="record_id",
            how="left",
        )
        return out, {"functions": analysis, "vote": cfg.vote}
    label_expr = first_rule_label(cfg.rules) if cfg.rules else pl.lit(None, dtype=pl.String)
    return df.with_columns(label_expr.alias(_LF), pl.lit(False).alias(_LF_TIE)), {}


def _from_rules(df: pl.DataFrame, cfg: LabelConfig) -> tuple[pl.DataFrame, dict[str, Any]]:
    ruled, extra = _with_rule_labels(df, cfg)
    missing = pl.col(_LABEL).is_null()
    out = ruled.with_columns(pl.col(_LF).alias(_LABEL)).with_columns(
        pl.lit(None, dtype=pl.Float64).alias(_AGREEMENT),
        pl.lit("rules").alias(_VIA),
        pl.when(missing & pl.col(_LF_TIE))
        .then(pl.lit("rules_tie"))
        .when(missing)
        .then(pl.lit("no_rule_matched"))
        .alias(_RULE),
        pl.lit(None, dtype=pl.Float64).alias(_SCORE),
        pl.when(missing & pl.col(_LF_TIE))
        .then(pl.lit("labeling functions tie between labels"))
        .when(missing)
        .then(pl.lit("no rule pattern found in text"))
        .alias(_DETAIL),
    )
    return out.drop(_LF, _LF_TIE), extra


def _clean_annotations(raw: pl.DataFrame, df: pl.DataFrame, recipe: RecipeConfig) -> dict[str, Any]:
    """Annotations of this frame's records, one vote per (item, annotator), with agreement.

    Only submitted answers count (Label Studio's cancelled, Argilla's discarded and draft
    responses are excluded and counted). Annotations join records on (source, key).
    """
    cfg = recipe.label
    ann = prepare_annotations(raw, recipe)
    status = pl.col("status").fill_null("submitted").str.to_lowercase()
    excluded = ann.filter(status != "submitted")
    ann = ann.filter(status == "submitted")
    usable = ann.filter(
        pl.col("item_key").is_not_null()
        & pl.col("annotator").is_not_null()
        & pl.col("label").is_not_null()
    )
    records = df.select(pl.col("source").alias("item_source"), pl.col("source_key").alias("item_key"))
    ours = usable.join(records.unique(), on=["item_source", "item_key"], how="semi")
    # An annotator answering twice on one item counts once: their first annotation by key.
    # multi-label: an annotator's several labels on one item are all votes
    one = ["label"] if cfg.multi_label else []
    first = ours.sort("item_source", "item_key", "annotator", "source", "source_key",
                      nulls_last=True).unique(  # fmt: skip
        ["source", "item_source", "item_key", "annotator", *one], keep="first", maintain_order=True
    )
    is_review = pl.col("source") == pl.lit(cfg.review_answers)
    reviews = first.filter(is_review) if cfg.review_answers else first.head(0)
    votes = first.filter(~is_review) if cfg.review_answers else first
    votes = votes.unique(["item_source", "item_key", "annotator", *one], keep="first",
                         maintain_order=True)  # fmt: skip
    by_item = votes.with_columns(_item_id().alias("item_key"))
    agreement = (
        multi_label_agreement(by_item)
        if cfg.multi_label
        else annotation_agreement(by_item, level=cfg.agreement.level, label_order=cfg.label_set)
    )
    return {
        "votes": votes,
        "reviews": reviews,
        "agreement": agreement,
        "counts": {
            "annotations_used": votes.height,
            "review_answers_used": reviews.height,
            "annotations_unusable": ann.height - usable.height,
            "annotations_duplicate": ours.height - votes.height - reviews.height,
            "annotations_for_other_records": usable.height - ours.height,
            "annotations_excluded_by_status": _value_counts(
                excluded.with_columns(status.alias("status")), "status"
            ),
        },
    }


def _item_id() -> pl.Expr:
    """One id per annotated record: its source and key together (never the key alone)."""
    return pl.concat_str(["item_source", "item_key"], separator="\x1f")


def prepare_annotations(raw: pl.DataFrame, recipe: RecipeConfig) -> pl.DataFrame:
    """Annotation rows in the annotation schema, each naming its record's source.

    A row without ``item_source`` belongs to the recipe's only records source; with several
    sources that is ambiguous and an error naming the annotations source.
    """
    ann = conform(raw, ANNOTATION_SCHEMA).select(list(ANNOTATION_SCHEMA))
    missing = ann.filter(pl.col("item_source").is_null())
    if missing.height:
        if len(recipe.sources) != 1:
            names = sorted(set(missing["source"].drop_nulls().to_list()))
            raise ValueError(
                f"annotations source(s) {names}: {missing.height} row(s) do not say which records "
                f"source they annotate and the recipe reads {list(recipe.sources)}; set "
                "'annotates' on the source in sources.yaml or map item_source"
            )
        ann = ann.with_columns(pl.col("item_source").fill_null(recipe.sources[0]))
    return ann


def _from_votes(
    df: pl.DataFrame, cfg: LabelConfig, votes: pl.DataFrame, reviews: pl.DataFrame
) -> pl.DataFrame:
    items = item_agreement(votes.with_columns(_item_id().alias("item_key")).drop("item_source"))
    items = items.select(
        pl.col("item_key").alias("__id"),
        pl.col("votes").alias("__votes"),
        pl.col("tied").alias("__tied"),
        pl.col("top_label").alias("__winner"),
        pl.col("share").alias("__share"),
    )
    answered = item_agreement(reviews.with_columns(_item_id().alias("item_key")).drop("item_source"))
    answered = answered.filter(~pl.col("tied")).select(
        pl.col("item_key").alias("__id"),
        pl.col("top_label").alias("__reviewed"),
        pl.col("share").alias("__review_share"),
    )
    joined = (
        df.with_columns(pl.concat_str(["source", "source_key"], separator="\x1f").alias("__id"))
        .join(items, on="__id", how="left")
        .join(answered, on="__id", how="left")
    )

    votes_n = pl.col("__votes")
    share = pl.col("__share")
    fallback = pl.col(_LF)
    reviewed = pl.col("__reviewed").is_not_null()
    no_votes = votes_n.is_null() & ~reviewed
    too_few = (votes_n < cfg.min_votes) & ~reviewed
    tie = pl.col("__tied").fill_null(False) & ~reviewed
    review_below = cfg.agreement.review_below
    to_review = (
        (~no_votes & ~too_few & (tie | (share < review_below))) if review_below else pl.lit(False)
    )
    weak = share < cfg.min_agreement
    use_votes = ~reviewed & ~no_votes & ~too_few & ~tie & ~weak & ~to_review
    use_rules = (no_votes | too_few) & fallback.is_not_null()

    out = joined.with_columns(
        pl.when(reviewed)
        .then(pl.col("__reviewed"))
        .when(use_votes)
        .then(pl.col("__winner"))
        .when(use_rules)
        .then(fallback)
        .when(to_review | tie | weak)  # shown to reviewers as the suggestion
        .then(pl.col("__winner"))
        .alias(_LABEL),
        pl.when(reviewed)
        .then(pl.col("__review_share"))
        .when(use_votes)
        .then(share)
        .alias(_AGREEMENT),
        pl.when(reviewed)
        .then(pl.lit("review"))
        .when(use_votes)
        .then(pl.lit("majority_vote"))
        .when(use_rules)
        .then(pl.lit("rules"))
        .alias(_VIA),
        pl.when(reviewed | use_votes | use_rules)
        .then(None)
        .when(no_votes)
        .then(pl.lit("unlabeled"))
        .when(too_few)
        .then(pl.lit("insufficient_votes"))
        .when(to_review)
        .then(pl.lit(NEEDS_REVIEW))
        .when(tie)
        .then(pl.lit("no_majority"))
        .otherwise(pl.lit("low_agreement"))
        .alias(_RULE),
        pl.when(reviewed | use_votes | use_rules | no_votes)
        .then(None)
        .when(too_few)
        .then(votes_n.cast(pl.Float64))
        .otherwise(share)
        .alias(_SCORE),
        pl.when(reviewed | use_votes | use_rules)
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
        .when(to_review)
        .then(
            pl.format(
                "top label share {} below review_below {} (or tied): sent to the review queue",
                share.round(4),
                pl.lit(review_below),
            )
        )
        .when(tie)
        .then(pl.format("tie for the top label among {} votes", votes_n))
        .otherwise(pl.format("agreement below min_agreement {}", pl.lit(cfg.min_agreement)))
        .alias(_DETAIL),
    )
    if cfg.agreement.flag_duplicate_conflicts:
        out = flag_duplicate_conflicts(out, label=_LABEL, rule=_RULE, detail=_DETAIL, via=_VIA)
    return out.drop("__id", "__votes", "__tied", "__winner", "__share", "__reviewed",
                    "__review_share")  # fmt: skip


def label_instruction(cfg: LabelConfig) -> str | None:
    """The instruction a chat-format classification example carries: the label schema."""
    if not cfg.descriptions:
        return None
    lines = [f"- {lab.name}: {lab.description}" if lab.description else f"- {lab.name}"
             for lab in cfg.labels]  # fmt: skip
    how = "one or more labels, comma-separated" if cfg.multi_label else "exactly one label"
    return f"Classify the text. Answer with {how} from this list:\n" + "\n".join(lines)


def _from_multi_votes(
    df: pl.DataFrame, cfg: LabelConfig, votes: pl.DataFrame, reviews: pl.DataFrame
) -> pl.DataFrame:
    """Multi-label: every label chosen by at least ``min_agreement`` of an item's annotators.

    A label chosen by a contested share (between 1 - review_below and review_below) sends the
    item to the review queue; reviewers' answers (all their labels) decide an item outright.
    """

    def shares(frame: pl.DataFrame) -> pl.DataFrame:
        ids = frame.with_columns(_item_id().alias("__id"))
        raters = ids.group_by("__id").agg(pl.col("annotator").n_unique().alias("__raters"))
        return (
            ids.group_by("__id", "label").agg(pl.col("annotator").n_unique().alias("__n"))
            .join(raters, on="__id")
            .with_columns((pl.col("__n") / pl.col("__raters")).alias("__share"))
        )  # fmt: skip

    bar, review = cfg.min_agreement, cfg.agreement.review_below
    per_label = shares(votes)
    contested = (
        (pl.col("__share") > 1 - review) & (pl.col("__share") < review) if review
        else pl.lit(False)
    )
    items = per_label.group_by("__id").agg(
        pl.col("__raters").first().alias("__votes"),
        pl.col("label").filter(pl.col("__share") >= bar).sort().str.join(",").alias("__winner"),
        pl.col("__share").filter(pl.col("__share") >= bar).min().alias("__share"),
        contested.any().alias("__contested"),
    ).with_columns(pl.when(pl.col("__winner") != "").then(pl.col("__winner")).alias("__winner"))
    answered = shares(reviews).group_by("__id").agg(
        pl.col("label").sort().str.join(",").alias("__reviewed")
    )
    joined = (
        df.with_columns(pl.concat_str(["source", "source_key"], separator="\x1f").alias("__id"))
        .join(items, on="__id", how="left")
        .join(answered, on="__id", how="left")
    )
    reviewed = pl.col("__reviewed").is_not_null()
    no_votes = pl.col("__votes").is_null() & ~reviewed
    too_few = (pl.col("__votes") < cfg.min_votes) & ~reviewed
    to_review = ~reviewed & ~no_votes & ~too_few & pl.col("__contested")
    none_chosen = pl.col("__winner").is_null()
    use_votes = ~reviewed & ~no_votes & ~too_few & ~to_review & ~none_chosen
    use_rules = (no_votes | too_few) & pl.col(_LF).is_not_null()
    out = joined.with_columns(
        pl.when(reviewed).then(pl.col("__reviewed")).when(use_votes).then(pl.col("__winner"))
        .when(use_rules).then(pl.col(_LF)).when(to_review).then(pl.col("__winner"))
        .alias(_LABEL),
        pl.when(use_votes).then(pl.col("__share")).alias(_AGREEMENT),
        pl.when(reviewed).then(pl.lit("review")).when(use_votes).then(pl.lit("majority_vote"))
        .when(use_rules).then(pl.lit("rules")).alias(_VIA),
        pl.when(reviewed | use_votes | use_rules).then(None)
        .when(no_votes).then(pl.lit("unlabeled"))
        .when(too_few).then(pl.lit("insufficient_votes"))
        .when(to_review).then(pl.lit(NEEDS_REVIEW))
        .otherwise(pl.lit("low_agreement")).alias(_RULE),
        pl.lit(None, dtype=pl.Float64).alias(_SCORE),
        pl.when(reviewed | use_votes | use_rules).then(None)
        .when(to_review).then(pl.lit("a label's share of annotators is contested: review queue"))
        .otherwise(pl.format("no label chosen by min_agreement {} of the annotators",
                             pl.lit(bar))).alias(_DETAIL),
    )  # fmt: skip
    return out.drop("__id", "__votes", "__winner", "__share", "__contested", "__reviewed")


def _value_counts(frame: pl.DataFrame, column: str) -> dict[str, int]:
    counts = frame.group_by(column).len().sort(column)
    return dict(zip(counts[column].to_list(), counts["len"].to_list(), strict=True))


def _finish(
    df: pl.DataFrame, cfg: LabelConfig, decided: pl.DataFrame, extra: dict[str, Any]
) -> StageResult:
    """Apply the label set, split kept from rejected, and gather stats."""
    if cfg.label_set:
        inside = (
            pl.col(_LABEL).str.split(",").list.eval(pl.element().is_in(cfg.label_set)).list.all()
            if cfg.multi_label
            else pl.col(_LABEL).is_in(cfg.label_set)
        )
        outside = pl.col(_RULE).is_null() & ~inside
        decided = decided.with_columns(
            pl.when(outside).then(pl.lit("label_not_in_set")).otherwise(pl.col(_RULE)).alias(_RULE),
            pl.when(outside)
            .then(pl.format("label from {} not in label_set", pl.col(_VIA)))
            .otherwise(pl.col(_DETAIL))
            .alias(_DETAIL),
        )
    columns = df.columns
    instruction = label_instruction(cfg)
    kept = (
        decided.filter(pl.col(_RULE).is_null())
        .with_columns(
            pl.col(_LABEL).alias("label"),
            pl.col(_AGREEMENT).cast(pl.Float64).alias("label_agreement"),
            # chat exports of classification data: the schema is the instruction
            pl.coalesce("system", pl.lit(instruction)).alias("system")
            if instruction
            else pl.col("system"),
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
# preference
# --------------------------------------------------------------------------------------------


def _preference(
    df: pl.DataFrame, recipe: RecipeConfig, annotations: pl.LazyFrame | None
) -> StageResult:
    """Pairs from ranks on the records, or from annotators' rankings, pairwise choices or
    ratings (``labeling.preference``). Accounting: ``rows_in`` counts responses and
    ``rows_kept`` the responses used in at least one pair; ``kept`` holds the pairs."""
    cfg = recipe.label
    extra: dict[str, Any] = {}
    if cfg.annotations:
        if annotations is None:
            raise ValueError(f"label.method {cfg.method!r} needs the annotations frame")
        ann = prepare_annotations(annotations.collect(), recipe)
        status = pl.col("status").fill_null("submitted").str.to_lowercase()
        extra["annotations_excluded_by_status"] = _value_counts(
            ann.filter(status != "submitted").with_columns(status.alias("status")), "status"
        )
        ann = ann.filter(status == "submitted")
        value = "rank" if cfg.method == "rankings" else "rating"
        judgements, counts = judgements_from_annotations(df, ann, value)
        extra |= counts
        if cfg.method == "ratings":
            rated = judgements.select(
                pl.col("record_id").alias("item_key"), "annotator", pl.col("score").alias("value")
            ).unique(["item_key", "annotator"], keep="first")
            extra["rating_alpha_interval"] = _round(krippendorff_alpha(rated, "interval"))
    else:
        judgements = judgements_from_ranks(df)
    margin = cfg.preference.min_margin if cfg.method == "ratings" else 0.0
    result = pairs_from_judgements(df, judgements, cfg.preference, margin=margin)
    result.stats = {"method": cfg.method, **result.stats, **extra}
    return result


def _thumbs_from_ratings(
    df: pl.DataFrame, recipe: RecipeConfig, annotations: pl.LazyFrame | None
) -> StageResult:
    """Chat examples labelled desirable / undesirable from their mean human rating (KTO)."""
    cfg = recipe.label
    if annotations is None:
        raise ValueError("label.method 'ratings' needs the annotations frame")
    ann = prepare_annotations(annotations.collect(), recipe)
    status = pl.col("status").fill_null("submitted").str.to_lowercase()
    excluded = _value_counts(
        ann.filter(status != "submitted").with_columns(status.alias("status")), "status"
    )
    rated = (
        ann.filter((status == "submitted") & pl.col("rating").is_not_null())
        .sort("item_source", "item_key", "annotator", "source", "source_key")
        .unique(["item_source", "item_key", "annotator"], keep="first", maintain_order=True)
    )
    alpha = krippendorff_alpha(
        rated.select(_item_id().alias("item_key"), "annotator", pl.col("rating").alias("value")),
        "interval",
    )
    means = rated.group_by("item_source", "item_key").agg(
        pl.col("rating").mean().alias("__mean"), pl.len().alias("__n")
    )
    p = cfg.preference
    joined = df.join(
        means, left_on=["source", "source_key"], right_on=["item_source", "item_key"], how="left"
    )
    mean = pl.col("__mean")
    good, bad = mean >= p.desirable_at, mean <= p.undesirable_at
    decided = joined.with_columns(
        pl.when(good).then(pl.lit("desirable")).when(bad).then(pl.lit("undesirable")).alias(_LABEL),
        pl.lit(None, dtype=pl.Float64).alias(_AGREEMENT),
        pl.lit("ratings").alias(_VIA),
        pl.when(mean.is_null())
        .then(pl.lit("unrated"))
        .when(~good & ~bad)
        .then(pl.lit("neutral_rating"))
        .alias(_RULE),
        mean.alias(_SCORE),
        pl.when(mean.is_null())
        .then(pl.lit("no rating for this record"))
        .when(~good & ~bad)
        .then(pl.format("mean rating between undesirable_at {} and desirable_at {}",
                        pl.lit(p.undesirable_at), pl.lit(p.desirable_at)))  # fmt: skip
        .alias(_DETAIL),
    ).drop("__mean", "__n")
    extra = {"annotations_excluded_by_status": excluded, "ratings_used": rated.height,
             "rating_alpha_interval": _round(alpha)}  # fmt: skip
    return _finish(df, cfg, decided, extra)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


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

