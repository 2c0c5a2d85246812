"""Distillation: prompt records answered by a teacher model become SFT examples.

Teacher outputs (a ``teacher_outputs`` source: prompt key, teacher model and version, response,
optional score) join the prompts on (source, key). Each output passes named filters — empty,
refusal, too short, too long, low score — and each prompt keeps its best passing output (highest
score, then teacher and key, so the choice is deterministic). The teacher's identity
(``model@version``) is kept on the example (``teacher``), goes into the export's provenance and
the card. Prompts no output survives for are rejected with the reason of their best output.

Teacher outputs are free text that may quote the prompt's personal data, so the orchestration
redacts them with the recipe's redact settings before they reach this stage.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ftdata_pipeline.config.models import RecipeConfig, TeacherConfig
from ftdata_pipeline.config.safe_regex import contains
from ftdata_pipeline.records import MESSAGE, TEACHER_SCHEMA, conform
from ftdata_pipeline.stages.base import StageResult, concat_rejects, reject

STAGE = "labeled"
TEACHER = "teacher"  # model@version on every distilled example
# Filters on one teacher output, in order: the first that applies is its reason.
FILTERS = ("teacher_empty", "teacher_refusal", "teacher_too_short", "teacher_too_long",
           "teacher_low_score")  # fmt: skip


def _failure(cfg: TeacherConfig) -> pl.Expr:
    text = pl.col("response")
    words = text.str.count_matches(r"\S+").fill_null(0)
    refusal = pl.lit(False)
    if cfg.drop_refusals:
        for pattern in cfg.refusal_patterns:
            refusal = refusal | contains(text, pattern)
    checks = [
        ("teacher_empty", text.is_null() | (text.str.strip_chars() == "")),
        ("teacher_refusal", refusal),
        ("teacher_too_short", words < cfg.min_words),
        ("teacher_too_long", words > cfg.max_words if cfg.max_words else pl.lit(False)),
        ("teacher_low_score",
         (pl.col("score").is_null() | (pl.col("score") < cfg.min_score))
         if cfg.min_score is not None else pl.lit(False)),
    ]  # fmt: skip
    expr = pl.lit(None, dtype=pl.String)
    for name, failed in reversed(checks):
        expr = pl.when(failed).then(pl.lit(name)).otherwise(expr)
    return expr


def distill(df: pl.DataFrame, recipe: RecipeConfig, outputs: pl.DataFrame) -> StageResult:
    """SFT examples from prompt records ``df`` and teacher ``outputs`` (TEACHER_SCHEMA)."""
    cfg = recipe.label.teacher
    assert cfg is not None  # the recipe validator guarantees it for method 'teacher'
    out = conform(outputs, TEACHER_SCHEMA).select(list(TEACHER_SCHEMA))
    if out["item_source"].null_count():
        if len(recipe.sources) != 1:
            raise ValueError(
                f"teacher outputs {cfg.outputs!r}: {out['item_source'].null_count()} row(s) do not "
                f"say which prompt source they answer and the recipe reads {list(recipe.sources)}; "
                "map item_source in sources.yaml"
            )
        out = out.with_columns(pl.col("item_source").fill_null(recipe.sources[0]))
    judged = out.with_columns(
        _failure(cfg).alias("__fail"),
        pl.format("{}@{}", "teacher_model", pl.col("teacher_version").fill_null("unversioned"))
        .alias(TEACHER),
    )
    prompts = df.select(pl.col("source").alias("item_source"),
                        pl.col("source_key").alias("item_key"))  # fmt: skip
    for_us = judged.join(prompts, on=["item_source", "item_key"], how="semi")
    ranked = for_us.with_columns(pl.col("__fail").is_not_null().alias("__failed")).sort(
        ["item_source", "item_key", "__failed", "score", TEACHER, "source_key"],
        descending=[False, False, False, True, False, False],
        nulls_last=True,
    )
    best = ranked.unique(["item_source", "item_key"], keep="first", maintain_order=True)
    joined = df.join(
        best.select("item_source", "item_key", pl.col("response").alias("__response"),
                    "score", TEACHER, "__fail"),  # fmt: skip
        left_on=["source", "source_key"],
        right_on=["item_source", "item_key"],
        how="left",
    )
    has_output = pl.col(TEACHER).is_not_null()
    keep = has_output & pl.col("__fail").is_null()
    prompt = pl.coalesce("prompt", "text")
    kept = joined.filter(keep).with_columns(
        pl.col("__response").alias("response"),
        pl.concat_list(
            [pl.struct(role=pl.lit("user"), content=prompt),
             pl.struct(role=pl.lit("assistant"), content=pl.col("__response"))]  # fmt: skip
        ).cast(pl.List(MESSAGE)).alias("messages"),
        pl.coalesce("system", pl.lit(recipe.system_prompt, dtype=pl.String)).alias("system"),
    )
    dropped = joined.filter(~keep).with_columns(
        pl.when(has_output).then(pl.col("__fail")).otherwise(pl.lit("no_teacher_output"))
        .alias("__rule")
    )  # fmt: skip
    columns = [*df.columns, TEACHER]
    rejects = [
        reject(
            dropped.filter(pl.col("__rule") == rule).select(
                *df.columns, TEACHER, pl.col("score").alias("__teacher_score")
            ),
            stage=STAGE,
            rule=rule,
            score=pl.col("__teacher_score"),  # the teacher output's own score, if any
            detail="no teacher output for this prompt" if rule == "no_teacher_output"
            else f"best teacher output failed {rule}",
        ).drop("__teacher_score")
        for rule in sorted(dropped["__rule"].unique().to_list())
    ]  # fmt: skip
    kept_df = kept.select(columns).sort("record_id")
    fails = for_us.filter(pl.col("__fail").is_not_null()).group_by("__fail").len().sort("__fail")
    teachers = kept_df.group_by(TEACHER).len().sort(TEACHER)
    stats: dict[str, Any] = {
        "method": "teacher",
        "teacher_outputs": out.height,
        "teacher_outputs_for_other_records": out.height - for_us.height,
        "teacher_outputs_failed": dict(zip(fails["__fail"].to_list(), fails["len"].to_list(),
                                           strict=True)),  # fmt: skip
        "teachers": dict(zip(teachers[TEACHER].to_list(), teachers["len"].to_list(), strict=True)),
        "distilled": kept_df.height,
    }
    return StageResult(
        kept=kept_df,
        rejected=concat_rejects(rejects, kept_df).sort("record_id"),
        rows_in=df.height,
        stats=stats,
    )
