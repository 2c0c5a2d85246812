"""Frames written as a stage goes: parts, rows sorted bucket by bucket, Parquet a batch at a time."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from ftdata_pipeline import parquet
from ftdata_pipeline.stages.spill import BUCKET, SEQ, Matrix, Parts, SortedRows


def _rows(n: int, seed: int = 0) -> pl.DataFrame:
    rng = random.Random(seed)
    keys = [f"k{rng.randrange(n // 2):04d}" for _ in range(n)]  # ties on the key
    return pl.DataFrame({
        "key": keys,
        "value": [rng.random() for _ in range(n)],
        "extra": [None if i % 3 else "x" for i in range(n)],
        SEQ: list(range(n)),
    })


def test_sorted_rows_equal_one_sort_in_memory_and_on_disk(tmp_path) -> None:
    df = _rows(200)
    ranked = df.sort("key", SEQ).with_row_index("_rank")
    df = df.join(ranked.select(SEQ, (pl.col("_rank") // 17).cast(pl.Int64).alias(BUCKET)), on=SEQ)
    expected = df.sort("key", SEQ).drop(SEQ, BUCKET)
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=1)
    results = []
    for folder in (None, tmp_path / "rows"):
        rows = SortedRows(folder, ["key"])
        for part in shuffled.iter_slices(23):  # parts of any order, several buckets each
            rows.add(part.drop("extra") if part[SEQ][0] % 2 else part)  # columns may differ
        out = rows.sorted(df.clear())
        results.append(out if folder is None else out.collect())
    assert results[0].equals(results[1])
    assert results[0].select("key", "value").equals(expected.select("key", "value"))
    assert results[0].columns == ["key", "value", "extra"]
    # on disk: one sorted file per bucket, nothing else left
    assert sorted(p.name for p in (tmp_path / "rows").iterdir()) == [
        f"sorted-{b:06d}.parquet" for b in range(-(-200 // 17))
    ]
    assert SortedRows(None, ["key"]).sorted(df.clear().drop(SEQ, BUCKET)).is_empty()


def test_parts_come_back_in_order_and_their_files_go(tmp_path) -> None:
    frames = [_rows(5, seed) for seed in range(3)]
    for folder in (None, tmp_path / "parts"):
        parts = Parts(folder)
        for f in frames:
            parts.add(f)
        assert all(a.equals(b) for a, b in zip(parts.drain(), frames, strict=True))
    assert not list((tmp_path / "parts").iterdir())


def test_a_scan_is_written_a_slice_at_a_time(tmp_path, monkeypatch) -> None:
    """One row group per slice of WRITE_ROWS rows (Polars' sink reads ahead without bound);
    the file holds the same rows and types; no rows still writes the schema."""
    df = _rows(100).with_columns(pl.col("key").cast(pl.Categorical).cast(pl.String))
    source = tmp_path / "source.parquet"
    df.write_parquet(source)
    monkeypatch.setattr(parquet, "WRITE_ROWS", 30)
    seen: list[int] = []
    real = parquet.scan_slices
    monkeypatch.setattr(parquet, "scan_slices",
                        lambda lf: (seen.append(b.height) or b for b in real(lf)))
    out = tmp_path / "out.parquet"
    assert parquet.write_scan(pl.scan_parquet(source), out) == 100
    assert seen == [30, 30, 30, 10]
    assert pq.ParquetFile(out).metadata.num_row_groups == 4
    assert pl.read_parquet(out).equals(df)
    empty = tmp_path / "empty.parquet"
    assert parquet.write_scan(pl.scan_parquet(source).clear(), empty) == 0
    assert pl.read_parquet(empty).schema == df.schema


def resident_bytes(path: Path) -> int:
    """Bytes of ``path``'s mapping resident in this process (Linux ``/proc/self/smaps``)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and ":" in head[3]:  # a mapping's header
            inside = line.endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(head[1]) * 1024
    return total


def test_a_matrix_in_a_file_keeps_its_rows_and_gives_its_pages_back(tmp_path) -> None:
    """Written rows stay (in the file) after release; the process then holds none of its
    pages until rows are touched again; in memory the tail is given back in place."""
    m = Matrix(tmp_path / "m", "sig", (40_000, 128), np.uint32)
    path = tmp_path / "m" / "sig.bin"
    assert m.mapped and path.stat().st_size == 40_000 * 128 * 4
    want = np.arange(40_000 * 128, dtype=np.uint32).reshape(40_000, 128)
    m.array[:] = want
    assert resident_bytes(path) > 0.9 * want.nbytes
    m.release()
    assert resident_bytes(path) < 0.02 * want.nbytes
    assert (m.array == want).all()  # faulted back from the file
    m.release()
    first = m.first_rows(10)
    assert first.shape == (10, 128) and (first == want[:10]).all()
    m.discard()
    assert not path.exists()

    held = Matrix(None, "sig", (100, 4), np.uint32)
    assert not held.mapped and not (tmp_path / "sig.bin").exists()
    held.array[:] = 7
    held.release()  # nothing to do in memory
    assert held.first_rows(3).shape == (3, 4) and held.array.shape == (3, 4)
    assert not Matrix(tmp_path / "e", "sig", (0, 4), np.uint32).mapped  # nothing to map
