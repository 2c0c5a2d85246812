"""Frames written as a stage goes: parts, rows sorted bucket by bucket, Parquet a batch at a time."""

from __future__ import annotations

import random

import polars as pl
import pyarrow.parquet as pq

from ftdata_pipeline import parquet
from ftdata_pipeline.stages.spill import BUCKET, SEQ, Parts, SortedRows


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
