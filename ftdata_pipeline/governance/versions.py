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

CHUNK = 1 << 20


class _HashingSink(io.RawIOBase):
    """A write-only file that hashes what it is given and keeps none of it."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.digest.update(data)
        return len(data)


def frame_hash(df: pl.DataFrame) -> str:
    """sha256 of the frame's Arrow IPC bytes (schema + values; no timestamps in the format).

    The bytes are hashed as Polars writes them: a buffer of the whole IPC stream (and the
    copy ``getvalue`` makes) cost about 1.6x the frame's size at the peak of every stage.
    """
    sink = _HashingSink()
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
