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
