"""Data versions: the frame hash is the sha256 of the IPC bytes, without holding them."""

import hashlib
import io
import tracemalloc

import polars as pl

from ftdata_pipeline.governance.versions import frame_hash


def _frame(n: int) -> pl.DataFrame:
    return pl.DataFrame({
        "record_id": [f"r{i:07d}" for i in range(n)],
        "text": [f"ticket {i} " + "words " * 40 for i in range(n)],
        "messages": [[{"role": "user", "content": f"hello {i}"}] for i in range(n)],
        "score": [i / 7 for i in range(n)],
    })


def test_frame_hash_is_the_sha256_of_the_ipc_stream():
    df = _frame(2_000)
    buffer = io.BytesIO()
    df.write_ipc(buffer, compression="uncompressed")
    assert frame_hash(df) == hashlib.sha256(buffer.getvalue()).hexdigest()
    changed = df.with_columns(pl.col("score").shift(1))
    assert frame_hash(changed) != frame_hash(df)


def test_frame_hash_does_not_buffer_the_stream():
    # The IPC bytes reach Python a column buffer at a time and are hashed as they come:
    # Python never holds the stream (a BytesIO held it whole, and getvalue copied it again:
    # twice its size).
    df = _frame(40_000)
    buffer = io.BytesIO()
    df.write_ipc(buffer, compression="uncompressed")
    stream = len(buffer.getvalue())
    del buffer
    tracemalloc.start()
    try:
        frame_hash(df)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < stream * 0.75, (peak, stream)


def test_a_lazy_frame_is_hashed_in_batches_whatever_its_files(tmp_path):
    """A stage output spilled to disk is hashed from its files a batch of rows at a time:
    the same rows give the same hash however they were cut into files."""
    df = _frame(1_000)
    for k, (start, length) in enumerate([(0, 300), (300, 450), (750, 250)]):
        df.slice(start, length).write_parquet(tmp_path / f"a-{k}.parquet")
    for k, start in enumerate(range(0, 1_000, 100)):
        df.slice(start, 100).write_parquet(tmp_path / f"b-{k:02d}.parquet")
    three = pl.scan_parquet(sorted(tmp_path.glob("a-*.parquet")))
    ten = pl.scan_parquet(sorted(tmp_path.glob("b-*.parquet")))
    assert frame_hash(three, batch_rows=128) == frame_hash(ten, batch_rows=128)
    assert frame_hash(three, batch_rows=128) == frame_hash(df.lazy(), batch_rows=128)
    changed = df.with_columns(pl.when(pl.int_range(pl.len()) == 999).then(0.5)
                              .otherwise(pl.col("score")).alias("score"))
    assert frame_hash(changed.lazy(), batch_rows=128) != frame_hash(three, batch_rows=128)
