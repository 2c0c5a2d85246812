"""The contract every stage returns, and the helper that turns dropped rows into rejects."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import polars as pl

from ftdata_pipeline.records import REJECT_SCHEMA, row_count

REJECT_COLUMNS = ("stage", "rule", "score", "detail")


@dataclass
class StageResult:
    """What a stage kept, what it dropped (full rows + stage/rule/score/detail), and its stats.

    ``rows_in`` counts input rows; the invariant ``rows_in == rows_kept + rows_rejected`` must
    hold for every stage, and both sides are measured, never derived from each other:
    ``rows_kept`` is ``kept.height``, or, for a stage whose output rows are derived from its
    inputs (rankings -> preference pairs), ``inputs_kept``: the input rows it used, counted.

    ``kept`` (and ``rejected``) is a LazyFrame when the stage wrote it to disk batch by batch
    as it went (a scan of those files): then nothing downstream needs it whole in memory.
    """

    kept: pl.DataFrame | pl.LazyFrame
    rejected: pl.DataFrame | pl.LazyFrame
    rows_in: int
    stats: dict[str, Any] = field(default_factory=dict)
    inputs_kept: int | None = None

    @cached_property
    def rows_rejected(self) -> int:
        return row_count(self.rejected)

    @cached_property
    def rows_out(self) -> int:
        """Rows of ``kept`` (of a scan: counted from the files, without reading the rows)."""
        return row_count(self.kept)

    @property
    def rows_kept(self) -> int:
        return self.rows_out if self.inputs_kept is None else self.inputs_kept

    def drop_counts(self) -> dict[str, int]:
        """Rows dropped per rule, sorted by rule name."""
        if not self.rows_rejected:
            return {}
        counts = self.rejected.lazy().group_by("rule").len().sort("rule").collect()
        return dict(zip(counts["rule"].to_list(), counts["len"].to_list(), strict=True))


def reject(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    stage: str,
    rule: str,
    score: float | pl.Expr | None = None,
    detail: str | pl.Expr | None = None,
):
    """Tag dropped rows with the stage, the rule that dropped them, a score and a detail.

    Rows keep all their columns so nothing is lost; the reject columns come last.
    """
    score_expr = score if isinstance(score, pl.Expr) else pl.lit(score)
    detail_expr = detail if isinstance(detail, pl.Expr) else pl.lit(detail)
    return frame.with_columns(
        pl.lit(stage).alias("stage"),
        pl.lit(rule).alias("rule"),
        score_expr.cast(REJECT_SCHEMA["score"]).alias("score"),
        detail_expr.cast(REJECT_SCHEMA["detail"]).alias("detail"),
    )


def detached(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` in buffers of its own: a copy that holds its rows' bytes and nothing else.

    A filter or slice of a frame shares the frame's string buffers (Polars' string views point
    into them), so keeping a few rows of a batch keeps the whole batch's text alive. A stage
    that keeps a batch's rejects until its end would hold every batch it read: at a million
    records the redacted stage grew by about a kilobyte a record that way. Written through
    Arrow IPC, which writes only the bytes the rows use."""
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="uncompressed")
    buffer.seek(0)
    return pl.read_ipc(buffer)


def concat_rejects(frames: list[pl.DataFrame], template: pl.DataFrame) -> pl.DataFrame:
    """Concatenate reject frames; with none, an empty frame with template's columns + reject cols."""
    frames = [f for f in frames if f.height]
    if not frames:
        return reject(template.clear(), stage="", rule="")
    return pl.concat(frames, how="diagonal_relaxed")
