"""Text views of a record per dataset kind: prompt side, response side, and all content.

Filters measure these working columns (``_prompt``, ``_response``, ``_all``) instead of
repeating per-kind logic; they are dropped before anything leaves the stage. The system prompt
is left out: it is usually a recipe-wide constant and says nothing about the example.
"""

from __future__ import annotations

import polars as pl

PROMPT, RESPONSE, ALL = "_prompt", "_response", "_all"
# What near-dedup compares: ALL, but for chats with each turn's role as a word, so that (like
# the exact content hash) the same words said by different roles are not duplicates.
NEAR = "_near_text"
# ALL without its code (fences, indented blocks, inline spans): what language ID, the harmful
# model and the prose quality rules (alphabetic and symbol ratios, stop words, repetition) read.
PROSE = "_prose"
VIEW_COLUMNS = (PROMPT, RESPONSE, ALL, NEAR, PROSE)


def _turns(role: str | None) -> pl.Expr:
    content = pl.element().struct.field("content")
    if role is not None:
        content = content.filter(pl.element().struct.field("role") == role)
    return pl.col("messages").list.eval(content.drop_nulls()).list.join("\n")


def add_views(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    if kind == "chat_sft":
        role_turns = pl.col("messages").list.eval(
            pl.concat_str(
                [pl.element().struct.field("role"), pl.element().struct.field("content")],
                separator=": ",
                ignore_nulls=True,
            )
        ).list.join("\n")
        return df.with_columns(
            _turns("user").alias(PROMPT),
            _turns("assistant").alias(RESPONSE),
            _turns(None).alias(ALL),
            role_turns.alias(NEAR),
        )
    if kind in ("preference", "distillation"):  # distillation: prompts, answered later
        response = pl.coalesce(pl.col("response"), pl.col("chosen"))
        return df.with_columns(
            pl.col("prompt").alias(PROMPT),
            response.alias(RESPONSE),
            pl.concat_str([pl.col("prompt"), response], separator="\n", ignore_nulls=True).alias(ALL),
        ).with_columns(pl.col(ALL).alias(NEAR))
    return df.with_columns(
        pl.col("text").alias(PROMPT),
        pl.lit(None, pl.String).alias(RESPONSE),
        pl.col("text").alias(ALL),
        pl.col("text").alias(NEAR),
    )


def words(expr: pl.Expr) -> pl.Expr:
    """Lowercased word tokens (Unicode \\w runs): the unit of every word-based rule."""
    return expr.str.to_lowercase().str.extract_all(r"\w+")


def _prose_only(s: pl.Series) -> pl.Series:
    from ftdata_pipeline.stages.curation.normalize import split_code

    distinct = s.drop_nulls().unique(maintain_order=True).to_list()
    prose = ["".join(seg for is_code, seg in split_code(t) if not is_code) for t in distinct]
    table = pl.DataFrame({"k": distinct, "v": prose}, schema={"k": pl.String, "v": pl.String})
    return pl.DataFrame({"k": s}).join(table, on="k", how="left", maintain_order="left")["v"]


def add_prose(df: pl.DataFrame, all_is_code: bool = False) -> pl.DataFrame:
    """The PROSE view; empty when the recipe marks the content's fields as code-bearing."""
    if all_is_code:
        return df.with_columns(pl.lit("", pl.String).alias(PROSE))
    return df.with_columns(
        pl.col(ALL).map_batches(_prose_only, return_dtype=pl.String).alias(PROSE)
    )
