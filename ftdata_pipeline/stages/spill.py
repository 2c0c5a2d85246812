"""Frames a stage writes as it goes, so that it never holds its whole input or output.

Two containers, each either on disk (a folder of Parquet files, for large data) or in memory
(no folder: tests, partitions, library calls). Both give the same frames back, so a stage has
one code path and its output does not depend on where the parts lived.

- ``Parts``: frames stored one after another and read back in the same order, one at a time
  (a stage's intermediate result between two passes over its records).
- ``Matrix``: one fixed-shape numpy array filled and read in place (per-record state that is
  too large to hold, such as MinHash signatures), in a mapped file.
- ``own_pages``: an array in memory pages of its own, given back to the system when freed.
- ``SortedRows``: rows added in any order and read back sorted. Every row carries ``BUCKET``,
  the bucket of its rank in the final order (ranks come from the stage's thin key frame), so
  each bucket is sorted on its own and the buckets are concatenated in order: an external sort
  whose memory is one bucket, without merging. Rows of one bucket sort by the order columns,
  then by ``SEQ`` (the row's input position), so ties are deterministic too.

Written by hand: Polars' streaming engine sorts in memory, and the rank of every row is known
before any row is written, which makes bucketing exact (no sampling of split points).
"""

from __future__ import annotations

import mmap
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
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


def own_pages(size: int, dtype) -> np.ndarray:
    """An empty 1-d array in an anonymous mapping of its own (unless under one page).

    For many mid-sized arrays that are replaced and freed as a stage goes: glibc serves
    arrays below its mmap threshold (which rises to 32 MB as mapped blocks are freed) from
    its heap, and a freed block in the middle of the heap stays resident; the stage's later
    phases then sat ~90 MB higher. A mapping is unmapped when the array is freed.
    """
    dtype = np.dtype(dtype)
    nbytes = size * dtype.itemsize
    if nbytes < mmap.PAGESIZE:
        return np.empty(size, dtype=dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype)


class Matrix:
    """A numpy array of a fixed shape, in a file of ``folder`` mapped into the process (in
    memory without a folder, or when empty).

    ``array`` is read and written like any array; ``release()`` drops the pages touched since
    the last release from the process (``MADV_DONTNEED``: written pages stay in the file, the
    kernel keeps them in its page cache and faults them back on the next touch). A caller that
    works a run of rows at a time and releases after each holds one run's pages, not the
    array: on two million tickets the signatures of near dedup are ~0.8 GB. Rows wanted at
    random are read with ``take`` instead: a fault maps the pages around the one touched too
    (64 KB a row of 448 bytes), so a few thousand random rows would map the whole file.
    Written by hand: ``np.memmap`` gives no handle on its mapping to advise.
    """

    def __init__(self, folder: Path | None, name: str, shape: tuple[int, ...], dtype) -> None:
        dtype = np.dtype(dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        self._map: mmap.mmap | None = None
        self._path: Path | None = None
        self._file = None
        if folder is None or size == 0:
            self.array = np.empty(shape, dtype=dtype)
            return
        folder.mkdir(parents=True, exist_ok=True)
        self._path = folder / f"{name}.bin"
        self._file = open(self._path, "w+b")  # noqa: SIM115 (open while the matrix lives)
        self._file.truncate(size)
        self._map = mmap.mmap(self._file.fileno(), size)  # shared: pages write back to the file
        self.array = np.frombuffer(self._map, dtype=dtype).reshape(shape)

    @property
    def mapped(self) -> bool:
        return self._map is not None

    def release(self) -> None:
        """Unmap the touched pages from the process (a no-op in memory)."""
        if self._map is not None and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (ascending, distinct) as an array in memory; from a file, each run of
        consecutive rows is one read (the mapping's pages are not touched)."""
        if self._file is None:
            return self.array[rows]
        out = np.empty((rows.size, *self.array.shape[1:]), dtype=self.array.dtype)
        if rows.size == 0:
            return out
        width = self.array.strides[0]
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = np.concatenate([[0], breaks]).tolist()
        ends = np.concatenate([breaks, [rows.size]]).tolist()
        flat = out.reshape(rows.size, -1).view(np.uint8)
        fd = self._file.fileno()
        for a, b in zip(starts, ends, strict=True):
            got = os.preadv(fd, [flat[a:b]], int(rows[a]) * width)
            if got != (b - a) * width:
                raise OSError(f"{self._path}: short read of rows {rows[a]}..{rows[b - 1]}")
        return out

    def first_rows(self, n: int) -> np.ndarray:
        """The first ``n`` rows; in memory the rest of the allocation is given back (in place:
        no view of the array may be alive)."""
        if self._map is None:
            self.array.resize((n, *self.array.shape[1:]), refcheck=False)
            return self.array
        return self.array[:n]

    def discard(self) -> None:
        """Delete the file (its pages go with the last view of the array)."""
        if self._path is not None:
            self._path.unlink(missing_ok=True)
        if self._file is not None:
            self._file.close()
            self._file = None


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
