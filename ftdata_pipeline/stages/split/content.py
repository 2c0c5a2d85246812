"""Columns of the split's records that are not held in memory while the split is decided.

- ``Carried``: the columns no rule of the stage reads (other kinds' content fields, earlier
  stages' scores) stay in the input and are read back by row as the output is written.
- ``Content``: the kind's content (text, messages, prompts) is read by a few rules only: the
  completeness rule and the token limit before anything else, the similarity searches
  (grouping, leak report) and a few reports. Those searches hold their own working sets
  (shingle matrices, pairs in the millions) and were the stage's peak with every text beside
  them. So once the token limit is applied the content goes to a file; a search is given the
  texts it needs and drops them before it searches, and the frame is filled again after.

Both use the column ``POS``: a record's row in the split's input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from ftdata_pipeline.parquet import WRITE_ROWS, write_batches

POS = "_input_row"  # a record's row in the input: what is not in memory is read back by it


class Carried:
    """Puts columns' values (read by row from ``source``) into a frame's placeholders.

    ``rows``: the ``POS`` of each row of ``source`` in order (default: a row's position is
    its ``POS``, as in the split's input). Rows are read a slice of the source at a time,
    only the slices holding wanted rows: the rows of one output batch are a run of the input
    when both are in id order.
    """

    def __init__(self, source: pl.LazyFrame, columns: list[str], rows: np.ndarray | None = None):
        self.columns = columns
        self.source = source.select(columns) if columns else None
        self.rows = rows

    def __call__(self, frame: pl.DataFrame, *, keep_pos: bool = False) -> pl.DataFrame:
        if self.source is None:
            return frame if keep_pos else frame.drop(POS, strict=False)
        positions = np.sort(frame[POS].to_numpy())
        at_rows = positions
        if self.rows is not None:
            at_rows = np.minimum(np.searchsorted(self.rows, positions), self.rows.size - 1)
            if not np.array_equal(self.rows[at_rows], positions):
                raise ValueError(f"rows not in the file read back: {positions.size} asked")
        starts = at_rows - at_rows % WRITE_ROWS
        parts = []
        for start in np.unique(starts):
            rows = self.source.slice(int(start), WRITE_ROWS).collect()
            mine = starts == start
            parts.append(rows[at_rows[mine] - start].with_columns(pl.Series(POS, positions[mine])))
        values = (pl.concat(parts) if parts
                  else self.source.clear().collect().with_columns(pl.lit(0, dtype=pl.Int64).alias(POS)))
        filled = (
            frame.drop(self.columns, strict=False)
            .join(values, on=POS, how="left", maintain_order="left")
            .select(frame.columns)
        )
        return filled if keep_pos else filled.drop(POS)


class Content:
    """The kind's content columns of a frame, on disk (``folder``) or, without one, in it.

    ``aside(frame)`` replaces them with placeholders (null literals: no memory);
    ``restore(frame)`` fills them again; ``texts(frame, *exprs)`` evaluates expressions over
    them for the frame's rows (a new frame the caller owns alone, so it can free it).
    Without a folder nothing is put aside and all three read the frame itself.
    """

    def __init__(self, frame: pl.DataFrame, columns: list[str], folder: Path | None):
        self.columns = [c for c in columns if c in frame.columns]
        self.schema = frame.select(self.columns).schema
        self.path = None if folder is None or not self.columns else folder / "_content.parquet"
        self._fill: Carried | None = None
        if self.path is not None:
            folder.mkdir(parents=True, exist_ok=True)
            by_pos = frame.select(POS, *self.columns).sort(POS)
            write_batches(by_pos.iter_slices(WRITE_ROWS), self.path, by_pos.schema)
            self._fill = Carried(pl.scan_parquet(self.path), self.columns,
                                 rows=by_pos[POS].to_numpy())

    def aside(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` without its content's values (placeholders keep every column in place)."""
        if self.path is None:
            return frame
        return frame.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in self.schema.items())

    def restore(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with its content's values (read back by ``POS``)."""
        if self._fill is None:
            return frame
        return self._fill(frame, keep_pos=True)

    def discard(self) -> None:
        """Remove the file (once the output is written, nothing reads it)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path, self._fill = None, None

    def texts(self, frame: pl.DataFrame, *exprs: pl.Expr) -> pl.DataFrame:
        """``exprs`` over ``frame``'s rows with their content, in its order (the columns the
        expressions read, the content among them read back)."""
        if self.path is None:
            return frame.select(*exprs)
        read = {name for expr in exprs for name in expr.meta.root_names()}
        return self.restore(frame.select(POS, *[c for c in frame.columns if c in read])).select(
            *exprs
        )
