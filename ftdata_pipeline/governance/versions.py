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


def frame_hash(df: pl.DataFrame) -> str:
    """sha256 of the frame's Arrow IPC bytes (schema + values; no timestamps in the format)."""
    buffer = io.BytesIO()
    df.write_ipc(buffer, compression="uncompressed")
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def source_input_version(cfg: Any, root: Path | str, df: pl.DataFrame) -> dict[str, Any]:
    """What a raw source read: file sha256/size/mtime, or a SQL result's rows and hash."""
    if cfg.kind == "file" and cfg.path:
        path = Path(cfg.path)
        if not path.is_absolute():
            path = Path(root) / path
        if path.is_file():
            stat = path.stat()
            return {
                "kind": "file",
                "path": str(cfg.path),
                "sha256": file_sha256(path),
                "bytes": stat.st_size,
                "mtime": int(stat.st_mtime),
                "rows_read": df.height,
            }
    # SQL (no file to hash): the mapped result itself identifies what was read.
    return {"kind": cfg.kind, "rows_read": df.height, "content_sha256": frame_hash(df)}
