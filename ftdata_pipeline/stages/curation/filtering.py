"""Named filters (datatrove style) and the loop that applies them with full accounting.

A ``Filter`` is a name (the reject ``rule``), a boolean "fails" expression, and optional score
and detail expressions. ``run_filters`` applies filters in order; a record is rejected by the
first one it fails, so every record is rejected at most once and in = kept + rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ftdata_pipeline.stages.base import reject

STAGE = "curated"
_FAILS, _SCORE, _DETAIL = "_fails", "_score", "_detail"


@dataclass(frozen=True)
class Filter:
    """One named check: rows where ``fails`` is true are rejected with rule ``name``."""

    name: str
    fails: pl.Expr
    score: pl.Expr | None = None
    detail: pl.Expr | None = None


def run_filters(
    df: pl.DataFrame, filters: list[Filter], steps: dict, rejects: list[pl.DataFrame]
) -> pl.DataFrame:
    """Apply ``filters`` in order; per-rule counts go to ``steps``, dropped rows to ``rejects``."""
    for f in filters:
        # A null verdict would drop the row from both kept and rejected: count it as a pass.
        flagged = df.with_columns(
            f.fails.fill_null(False).alias(_FAILS),
            (f.score if f.score is not None else pl.lit(None)).cast(pl.Float64).alias(_SCORE),
            (f.detail if f.detail is not None else pl.lit(None)).cast(pl.String).alias(_DETAIL),
        )
        dropped = flagged.filter(pl.col(_FAILS))
        steps[f.name] = {"in": df.height, "dropped": dropped.height}
        if dropped.height:
            rejects.append(
                reject(
                    dropped.drop(_FAILS),
                    stage=STAGE,
                    rule=f.name,
                    score=pl.col(_SCORE),
                    detail=pl.col(_DETAIL),
                ).drop(_SCORE, _DETAIL)
            )
        df = flagged.filter(~pl.col(_FAILS)).drop(_FAILS, _SCORE, _DETAIL)
    return df
