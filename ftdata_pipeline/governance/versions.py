"""Content hashes for data versions: of a frame, and of what a raw source read.

A data version changes exactly when the data does, so Dagster (and the catalog) can tell a
rematerialization that produced the same output from one that changed it.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import polars as pl

from ftdata_pipeline.records import row_count

CHUNK = 1 << 20
HASH_ROWS = 50_000  # rows of a LazyFrame read and hashed at a time


class _HashingSink(io.RawIOBase):
    """A write-only file that hashes what it is given and keeps none of it."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.digest.update(data)
        return len(data)


def frame_hash(df: pl.DataFrame | pl.LazyFrame, batch_rows: int = HASH_ROWS) -> str:
    """sha256 of the frame's Arrow IPC bytes (schema + values; no timestamps in the format).

    The bytes are hashed as Polars writes them: a buffer of the whole IPC stream (and the
    copy ``getvalue`` makes) cost about 1.6x the frame's size at the peak of every stage.
    A LazyFrame (a stage's output spilled to disk) is read and hashed ``batch_rows`` rows at a
    time, one IPC stream per batch into the same digest: the same rows give the same hash
    whatever the files' layout (not the eager frame's hash: a different byte layout).
    """
    sink = _HashingSink()
    if isinstance(df, pl.LazyFrame):
        total = row_count(df)
        for start in range(0, max(total, 1), batch_rows):
            # One record batch per slice, however the files cut it, in the oldest IPC layout:
            # its strings are offsets + bytes, where string views keep the reader's buffers.
            batch = df.slice(start, batch_rows).collect().rechunk()
            batch.write_ipc(sink, compression="uncompressed", compat_level=pl.CompatLevel.oldest())
    else:
        df.write_ipc(sink, compression="uncompressed")
    return sink.digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def source_input_version(cfg: Any, root: Path | str, df: pl.DataFrame) -> dict[str, Any]:
    """What a raw source read, as its source kind describes it (file sha256/size/mtime, or a
    SQL result's rows and hash)."""
    # Imported here: the source kinds use this module's hashes.
    from ftdata_pipeline.sources import source_kind

    return source_kind(cfg).input_version(cfg, Path(root), df)
