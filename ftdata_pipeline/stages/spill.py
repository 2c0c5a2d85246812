"""Frames a stage writes as it goes, so that it never holds its whole input or output.

Two containers, each either on disk (a folder of Parquet files, for large data) or in memory
(no folder: tests, partitions, library calls). Both give the same frames back, so a stage has
one code path and its output does not depend on where the parts lived.

- ``Parts``: frames stored one after another and read back in the same order, one at a time
  (a stage's intermediate result between two passes over its records).
- ``SortedRows``: rows added in any order and read back sorted. Every row carries ``BUCKET``,
  the bucket of its rank in the final order (ranks come from the stage's thin key frame), so
  each bucket is sorted on its own and the buckets are concatenated in order: an external sort
  whose memory is one bucket, without merging. Rows of one bucket sort by the order columns,
  then by ``SEQ`` (the row's input position), so ties are deterministic too.

Written by hand: Polars' streaming engine sorts in memory, and the rank of every row is known
before any row is written, which makes bucketing exact (no sampling of split points).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl

SEQ = "_seq"  # the row's position in the stage's input
BUCKET = "_bucket"  # the bucket of the row's rank in the stage's output order

# Scratch files are read once, soon: fast compression beats small files.
_SCRATCH = {"compression": "lz4", "statistics": False}


class Parts:
    """Frames stored one after another; ``drain()`` yields them in order and forgets them."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._frames: list[pl.DataFrame] = []
        self._files: list[Path] = []
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def add(self, frame: pl.DataFrame) -> None:
        if self.folder is None:
            self._frames.append(frame)
            return
        path = self.folder / f"part-{len(self._files):06d}.parquet"
        frame.write_parquet(path, **_SCRATCH)
        self._files.append(path)

    def drain(self) -> Iterator[pl.DataFrame]:
        if self.folder is None:
            frames, self._frames = self._frames, []
            while frames:
                yield frames.pop(0)
            return
        files, self._files = self._files, []
        for path in files:
            frame = pl.read_parquet(path)
            path.unlink()
            yield frame


class SortedRows:
    """Rows added in any order (each with ``SEQ`` and ``BUCKET``), read back sorted by ``order``."""

    def __init__(self, folder: Path | None, order: list[str]) -> None:
        self.folder = folder
        self.order = order
        self._buckets: dict[int, list[pl.DataFrame]] = {}
        self._schemas: list[pl.Schema] = []
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def add(self, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        self._schemas.append(frame.schema)
        for (bucket,), rows in frame.partition_by(BUCKET, as_dict=True).items():
            if self.folder is None:
                self._buckets.setdefault(bucket, []).append(rows)
                continue
            folder = self.folder / f"bucket-{bucket:06d}"
            folder.mkdir(exist_ok=True)
            rows.write_parquet(folder / f"{len(self._schemas):06d}.parquet", **_SCRATCH)
            self._buckets.setdefault(bucket, [])

    def _bucket_frames(self, bucket: int) -> list[pl.DataFrame]:
        if self.folder is None:
            return self._buckets[bucket]
        folder = self.folder / f"bucket-{bucket:06d}"
        return [pl.read_parquet(p) for p in sorted(folder.glob("*.parquet"))]

    def _schema(self, empty: pl.DataFrame) -> pl.DataFrame:
        """An empty frame with every column the added rows had (in the order first added), at
        the supertype of its types: one schema for every bucket (``empty`` if none was added)."""
        if not self._schemas:
            return empty.clear()
        frames = [pl.DataFrame(schema=s) for s in self._schemas]
        return pl.concat(frames, how="diagonal_relaxed").drop(SEQ, BUCKET, strict=False)

    def sorted(self, empty: pl.DataFrame) -> pl.DataFrame | pl.LazyFrame:
        """Everything added, sorted (``empty``: the columns when nothing was added).

        In memory a frame; on disk a scan of one sorted file per bucket."""
        schema = self._schema(empty)
        if not self._buckets:
            return schema if self.folder is None else schema.lazy()
        out: list[pl.DataFrame] = []
        files: list[Path] = []
        for bucket in sorted(self._buckets):
            rows = pl.concat([schema, *self._bucket_frames(bucket)], how="diagonal_relaxed")
            rows = rows.sort([*self.order, SEQ], nulls_last=True).select(schema.columns)
            if self.folder is None:
                out.append(rows)
                continue
            shutil.rmtree(self.folder / f"bucket-{bucket:06d}")
            files.append(self.folder / f"sorted-{bucket:06d}.parquet")
            rows.write_parquet(files[-1], **_SCRATCH)
        self._buckets = {}
        return pl.concat(out) if self.folder is None else pl.scan_parquet(files)
