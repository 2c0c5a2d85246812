"""PII spans of many texts held in flat Polars columns instead of per-text Python lists.

One row per span: the index of its text in the input, entity type, start, end and score, rows
in text order and, within a text, in the detector's order (by start). A chunk's spans travel
between processes in this form (one Arrow buffer per column, a few bytes per span), and the
redacted stage keeps the spans of all its texts in it; Python lists of tuples exist only for the
texts of one batch at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import polars as pl

INDEX = "text_index"
SCHEMA = {
    INDEX: pl.UInt32,
    "entity": pl.String,
    "start": pl.Int64,
    "end": pl.Int64,
    "score": pl.Float64,
}

Span = tuple[str, int, int, float]  # (entity_type, start, end, score) in the original text


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def span_frame(
    per_text: Sequence[Sequence[Span]], offset: int = 0, index: Sequence[int] | None = None
) -> pl.DataFrame:
    """The spans of ``per_text`` (one list per text) as a frame; text ``k`` gets index
    ``offset + k``, or ``index[k]`` when ``index`` is given."""
    rows: list[int] = []
    entity: list[str] = []
    start: list[int] = []
    end: list[int] = []
    score: list[float] = []
    for k, spans in enumerate(per_text):
        for e, s, t, sc in spans:
            rows.append(offset + k if index is None else index[k])
            entity.append(e)
            start.append(s)
            end.append(t)
            score.append(sc)
    return pl.DataFrame(
        {INDEX: rows, "entity": entity, "start": start, "end": end, "score": score},
        schema=SCHEMA,
    )


def shifted(frame: pl.DataFrame, offset: int) -> pl.DataFrame:
    """``frame`` with every text index moved by ``offset`` (a chunk's place in its input)."""
    if not offset or frame.is_empty():
        return frame
    return frame.with_columns((pl.col(INDEX) + offset).cast(pl.UInt32))


def span_lists(frame: pl.DataFrame, n: int, offset: int = 0) -> list[list[Span]]:
    """Per text ``offset`` .. ``offset + n - 1``, its spans as tuples, in the frame's order."""
    out: list[list[Span]] = [[] for _ in range(n)]
    for i, e, s, t, sc in frame.select(*SCHEMA).iter_rows():
        out[i - offset].append((e, s, t, sc))
    return out


def rows_of(frame: pl.DataFrame, first: int, stop: int) -> pl.DataFrame:
    """The rows of texts ``first`` .. ``stop - 1`` of a frame sorted by text index."""
    index = frame[INDEX]
    lo = int(index.search_sorted(first, side="left"))
    hi = int(index.search_sorted(stop, side="left"))
    return frame.slice(lo, hi - lo)


def submit_ahead(
    pending: deque[list],
    chunks: Iterator[tuple[int, list[str]]],
    submit: Callable[[int, list[str]], Any],
    window: int,
) -> None:
    """Submit chunks until ``window`` are pending; entries are ``[offset, texts, future,
    frame]`` (frame: set by a caller that analyzes the chunk itself). Executors of span
    frames (the process pool, the Dask cluster) keep their memory bounded this way: a chunk
    is submitted only when a result has been taken."""
    while len(pending) < window:
        nxt = next(chunks, None)
        if nxt is None:
            return
        offset, texts = nxt
        pending.append([offset, texts, submit(offset, texts), None])
