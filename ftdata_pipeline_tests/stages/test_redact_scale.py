"""The redacted stage at scale: bounded chunks and in-flight work, compact spans, same output.

Large inputs go to the pool in chunks of a bounded number of texts and characters, with a few
chunks per worker in flight; spans travel and are kept as flat columns; the memo keeps digests,
not texts. None of this may change a single output byte: every path is compared with the
plain in-process detector over the same texts.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from ftdata_pipeline.config.loader import project_root
from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.records import MESSAGE, conform
from ftdata_pipeline.stages.pii import engine
from ftdata_pipeline.stages.pii import span_frames as sf
from ftdata_pipeline.stages.pii.engine import Detector, detect_spans, iter_chunks, worker_pools
from ftdata_pipeline.stages.pii.evaluation import generate_examples
from ftdata_pipeline.stages.pii.operators import Operators
from ftdata_pipeline.stages.redact import PiiRedactor, SpanMemo, clear_memos, redact

SERIAL = RedactConfig(workers=1)
POOL = RedactConfig(workers=2, parallel_min_texts=1, batch_size=16)


def _tickets(n: int) -> list[dict]:
    lines = (project_root() / "demo_data" / "support_tickets.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[:n]]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Distinct texts: demo ticket bodies and replies, and generated PII sentences."""
    rows = _tickets(50)
    mixed = [r["body"] for r in rows] + [r["agent_reply"] for r in rows]
    mixed += [ex.text for ex in generate_examples(80, seed=11)]
    return [t for t in dict.fromkeys(mixed) if t]


@pytest.fixture(scope="module")
def expected(texts) -> list[list]:
    return Detector(SERIAL).spans(texts)


def test_chunks_are_bounded_in_texts_and_characters():
    texts = ["a" * 10] * 25 + ["b" * 500] + ["c" * 10] * 5
    chunks = list(iter_chunks(texts, 8, max_chars=100))
    assert [o for o, _ in chunks] == [0, 8, 16, 24, 25, 26]
    assert all(len(c) <= 8 for _, c in chunks)
    # a text longer than the bound is a chunk of its own; no chunk crosses the bound otherwise
    assert [len(c) for _, c in chunks] == [8, 8, 8, 1, 1, 5]
    assert all(sum(map(len, c)) <= 100 or len(c) == 1 for _, c in chunks)
    assert [t for _, c in chunks for t in c] == texts
    # a Polars column is read one chunk at a time, with the same chunks
    assert list(iter_chunks(pl.Series(texts), 8, max_chars=100)) == chunks


@pytest.mark.parametrize("chunk_texts", [1, 7])
def test_in_process_chunks_give_the_same_spans(texts, expected, chunk_texts):
    assert detect_spans(Detector(SERIAL), texts, chunk_texts=chunk_texts) == expected


def test_pool_with_small_chunks_gives_the_same_spans_and_bounds_what_is_in_flight(
    texts, expected, monkeypatch
):
    in_flight = []
    submitted = []
    real_pool_frames = engine._pool_frames

    def counting(detector, pool, chunks, window):
        real_submit = pool.submit
        live = set()

        def submit(fn, chunk):
            future = real_submit(fn, chunk)
            submitted.append(len(chunk))
            live.add(future)
            future.add_done_callback(live.discard)
            in_flight.append(len(live))
            return future

        monkeypatch.setattr(pool, "submit", submit)
        assert window == 2 * engine.IN_FLIGHT_PER_WORKER + 2
        yield from real_pool_frames(detector, pool, chunks, window)

    monkeypatch.setattr(engine, "_pool_frames", counting)
    with worker_pools():
        spans = detect_spans(Detector(POOL), texts, chunk_texts=9)
    assert spans == expected
    assert len(submitted) == -(-len(texts) // 9)  # every chunk was submitted...
    assert max(submitted) <= 9
    # ...but never more than the window at once
    assert max(in_flight) <= 2 * engine.IN_FLIGHT_PER_WORKER + 2


def _records(n: int) -> pl.DataFrame:
    rows = _tickets(n)
    messages = [
        [{"role": "user", "content": r["body"]}, {"role": "assistant", "content": r["agent_reply"]}]
        if i % 3 == 0 else None
        for i, r in enumerate(rows)
    ]
    return conform(pl.DataFrame(
        {
            "record_id": [r["ticket_id"] for r in rows],
            "source": ["tickets" if i % 5 else "docs" for i in range(len(rows))],
            "source_key": [r["ticket_id"] for r in rows],
            # repeated texts on purpose: duplicates are analyzed once and redacted everywhere
            "text": [r["body"] if i % 4 else rows[0]["body"] for i, r in enumerate(rows)],
            "response": [r["agent_reply"] for r in rows],
            "messages": messages,
        },
        schema_overrides={"messages": pl.List(MESSAGE)},
    ))


def _reference(df: pl.DataFrame, cfg: RedactConfig, scan_only: set[str]) -> pl.DataFrame:
    """The stage's texts computed the plain way: each text through the in-process detector
    and the operators, one record at a time."""
    detector, ops = Detector(cfg), Operators(cfg, None)

    def red(text, source):
        if not text or source in scan_only:
            return text
        return ops.apply(text, detector.spans([text])[0])

    rows = []
    for row in df.iter_rows(named=True):
        rows.append({
            "text": red(row["text"], row["source"]),
            "response": red(row["response"], row["source"]),
            "messages": None if row["messages"] is None else [
                {"role": m["role"], "content": red(m["content"], row["source"])}
                for m in row["messages"]
            ],
        })
    return pl.DataFrame(rows, schema={"text": pl.String, "response": pl.String,
                                      "messages": pl.List(MESSAGE)})


def test_stage_output_is_byte_identical_across_paths_and_chunk_sizes(monkeypatch):
    df = _records(45)
    scan_only = frozenset({"docs"})
    expected = _reference(df, SERIAL, set(scan_only))

    results = []
    for cfg, chunk, batch in ((SERIAL, 1024, 8192), (SERIAL, 5, 7), (POOL, 11, 50)):
        monkeypatch.setattr(engine, "CHUNK_TEXTS", chunk)
        monkeypatch.setattr("ftdata_pipeline.stages.redact.APPLY_BATCH", batch)
        clear_memos()  # every path analyzes (the memo would answer the later ones)
        with worker_pools():
            results.append(redact(df.lazy(), cfg, PiiRedactor(cfg), scan_only))
    first = results[0]
    assert first.kept.select("text", "response", "messages").equals(expected)
    assert first.stats["entities"] and first.stats["undeclared_pii"]["docs"]
    for other in results[1:]:
        assert other.kept.write_ipc(None).getvalue() == first.kept.write_ipc(None).getvalue()
        assert other.stats == first.stats
    # a second run is answered from the memo, with the same bytes
    again = redact(df.lazy(), SERIAL, PiiRedactor(SERIAL), scan_only)
    assert again.kept.write_ipc(None).getvalue() == first.kept.write_ipc(None).getvalue()


def test_entity_counts_count_every_occurrence():
    text = "Write to ann@example.com or bob@example.com"
    df = conform(pl.DataFrame({
        "record_id": ["a", "b", "c"], "source": ["s", "s", "quiet"], "source_key": ["1", "2", "3"],
        "text": [text, text, text], "response": [text, None, None],
    }))
    result = redact(df.lazy(), SERIAL, PiiRedactor(SERIAL), frozenset({"quiet"}))
    assert result.stats["entities"] == {"EMAIL_ADDRESS": 6}  # 3 redacted texts x 2
    assert result.stats["undeclared_pii"] == {"quiet": {"EMAIL_ADDRESS": 2}}
    assert result.kept["pii_entities"].to_list() == [4, 2, 0]
    assert result.kept["text"][2] == text


def test_memo_holds_digests_and_packed_spans_not_texts():
    clear_memos()
    red = PiiRedactor(SERIAL)
    texts = [f"Mail ann{i}@example.com, call Tom Baker" for i in range(30)] + ["nothing here"]
    spans = red.spans(texts)
    memo = red._memo
    assert len(memo) == len(texts) and texts[0] in memo
    assert all(isinstance(k, bytes) and len(k) == 16 for k in memo._found)
    assert not any(t.encode() in k or t.encode() in v
                   for t in texts for k, v in memo._found.items())
    assert memo.get(SpanMemo.digest(texts[0])) == spans[0]
    assert memo.get(SpanMemo.digest("nothing here")) == []
    # bounded: the memo starts over when full
    small = SpanMemo(max_texts=3)
    for i in range(5):
        small.put(SpanMemo.digest(str(i)), [("PERSON", 0, 1, 0.85)])
    assert len(small) == 2 and small.get(SpanMemo.digest("4")) == [("PERSON", 0, 1, 0.85)]


def test_span_frames_round_trip():
    per_text = [[("PERSON", 0, 3, 0.85)], [], [("EMAIL_ADDRESS", 2, 9, 1.0), ("URL", 10, 12, 0.5)]]
    frame = sf.span_frame(per_text, offset=5)
    assert frame[sf.INDEX].to_list() == [5, 7, 7]
    assert sf.span_lists(frame, 3, 5) == per_text
    assert sf.span_lists(sf.rows_of(frame, 7, 8), 1, 7) == [per_text[2]]
    assert sf.span_lists(sf.shifted(sf.span_frame(per_text), 5), 3, 5) == per_text


_SEED_PROBE = """
import json, sys
from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.stages.pii.engine import Detector
texts = json.loads(sys.stdin.read())
print(json.dumps(Detector(RedactConfig(workers=1)).spans(texts)))
"""


def test_detections_do_not_depend_on_the_process_hash_seed():
    """Two recognizers reporting the same span and score (spaCy and the sign-off rule on
    "Cheers,\\nFrank") once left the survivor to Presidio's ``set``, i.e. to the string hash
    seed of the process: the pool's forkserver and the step's own process (which analyzes
    chunks while the pool starts) each have one, so the same ticket was redacted in one run or
    chunk and not in another. Every seed must give the same spans, and the name."""
    import subprocess
    import sys

    body = ("Bug in Acme Backup 3.2.4\n\nThe app crashes on Windows 11 when I upload a folder "
            "with more than 47 files.")
    names = ["Frank", "Rick", "Randy", "Mark", "Grant", "Bill"]
    texts = [f"{body}\n\n{close},\n{name}"
             for name in names for close in ("Cheers", "Best", "Regards")]
    texts += [ex.text for ex in generate_examples(40, seed=3)]
    outputs = set()
    for seed in ("0", "3", "7"):
        done = subprocess.run(
            [sys.executable, "-c", _SEED_PROBE], input=json.dumps(texts), capture_output=True,
            text=True, check=True, env={**__import__("os").environ, "PYTHONHASHSEED": seed},
        )
        outputs.add(done.stdout.strip().splitlines()[-1])
    assert len(outputs) == 1
    spans = json.loads(outputs.pop())
    for text, found in zip(texts[: 3 * len(names)], spans, strict=False):
        name = text.rsplit("\n", 1)[1]
        assert ["PERSON", len(text) - len(name), len(text)] in [s[:3] for s in found], text


def _stored(frame: pl.DataFrame, path) -> bytes:
    """The bytes of ``frame`` as the asset stores it."""
    from ftdata_pipeline.orchestration.storage import atomic_write_parquet

    atomic_write_parquet(frame, path)
    return path.read_bytes()


def _bytes_held(frame: pl.DataFrame) -> int:
    """Bytes of every buffer a frame's columns point into (shared buffers counted whole)."""
    table = frame.to_arrow(compat_level=pl.CompatLevel.newest())
    return sum(b.size for col in table.columns for chunk in col.chunks
               for b in chunk.buffers() if b is not None)


def test_records_are_read_and_redacted_in_batches_with_the_same_output(tmp_path, monkeypatch):
    """The stage takes its input a batch of rows at a time (bounded working set); batch
    boundaries change no byte of the kept or rejected records nor any figure."""
    from ftdata_pipeline.stages import redact as stage

    path = tmp_path / "curated.parquet"
    _records(45).write_parquet(path)
    scan_only = frozenset({"docs"})
    cfg = SERIAL.model_copy(update={"max_pii_density": 4.0})
    clear_memos()
    whole = redact(pl.scan_parquet(path), cfg, PiiRedactor(cfg), scan_only, batch_rows=1000)
    assert 0 < whole.rejected.height < 45 and whole.stats["undeclared_pii"]["docs"]

    heights, seen = [], []
    real_batch = stage._redact_batch

    def batch(df, *args):
        heights.append(df.height)
        return real_batch(df, *args)

    monkeypatch.setattr(stage, "_redact_batch", batch)
    clear_memos()  # a text repeated across batches is analyzed in the first, then remembered
    batched = redact(pl.scan_parquet(path), cfg, PiiRedactor(cfg), scan_only, batch_rows=7,
                     progress=lambda done, total: seen.append((done, total)))
    assert heights == [7] * 6 + [3]
    assert seen == [(min(k, 45), 45) for k in range(7, 50, 7)]
    for a, b in ((batched.kept, whole.kept), (batched.rejected, whole.rejected)):
        assert _stored(a, tmp_path / "a.parquet") == _stored(b, tmp_path / "b.parquet")
    assert batched.stats == whole.stats and batched.rows_in == whole.rows_in == 45
    # The rejects kept from each batch hold their own rows' bytes, not the batch's buffers
    # (a filtered frame's strings point into its batch's: every batch would stay in memory).
    own = _bytes_held(pl.read_ipc(batched.rejected.write_ipc(None).getvalue()))
    assert _bytes_held(batched.rejected) <= 1.2 * own, (_bytes_held(batched.rejected), own)

    # no rows: one empty batch, the stage's columns all the same
    empty = redact(pl.scan_parquet(path).head(0), cfg, PiiRedactor(cfg), batch_rows=7)
    assert empty.kept.schema == whole.kept.schema and empty.kept.is_empty()


def test_residual_pii_is_counted_a_batch_of_records_at_a_time(monkeypatch):
    """The no-residual-PII check counts per batch of records and sums: every regex pass
    copies the texts, so the whole frame at once held several copies of all of them."""
    from ftdata_pipeline.stages import redact as stage

    leaks = [
        "write to jane.doe@example.com today", "card 4111 1111 1111 1111 on file",
        "IBAN GB82 WEST 1234 5698 7654 32", "from 192.168.10.20 and 2001:db8::8a2e:370:7334",
        "SSN 219-09-9999 given", "call (415) 555-0132 back", "lives at 42 Main Street",
        "nothing to see here",
    ]
    rows = [{"record_id": f"r{i}", "prompt": leaks[i % len(leaks)],
             "messages": [{"role": "user", "content": leaks[(i * 3) % len(leaks)]}]}
            for i in range(23)]
    df = pl.DataFrame(rows)
    whole = stage.residual_pii_counts(df, batch_rows=10_000)
    assert all(whole[t] > 0 for t in stage.RESIDUAL_TYPES)

    seen: list[int] = []
    real = stage._residual_in
    monkeypatch.setattr(stage, "_residual_in", lambda frame: seen.append(frame.height)
                        or real(frame))
    assert stage.residual_pii_counts(df, batch_rows=5) == whole
    assert seen == [5, 5, 5, 5, 3]
    assert stage.residual_pii_counts(df.lazy(), batch_rows=7) == whole
    empty = stage.residual_pii_counts(df.clear(), batch_rows=5)
    assert empty == dict.fromkeys(stage.RESIDUAL_TYPES, 0)


def test_the_model_vocabulary_does_not_grow_with_the_texts_scanned(monkeypatch):
    """Every e-mail address, order number and name a text holds would stay in the spaCy
    model's vocabulary for the rest of the run (a worker's memory grew about one entry a text);
    past the first ``WARM_TEXTS`` texts of a process (which fill the tokenizer cache),
    detection runs in a memory zone, so after any number of calls the vocabulary is what it
    was, and the spans are the same as outside one."""
    monkeypatch.setattr(engine, "WARM_TEXTS", 40)
    monkeypatch.setattr(engine, "_warmed", 0)
    detector = Detector(SERIAL)
    strings = detector.analyzer.nlp_engine.nlp[SERIAL.language].vocab.strings

    def texts(batch: int) -> list[str]:
        return [f"Order Q{batch}x{i}Z for Kal{batch}vo{i}rnen, mail z{batch}q{i}@ex{i}.org, "
                f"ref {batch}-{i}-77{i}" for i in range(40)]

    start = len(strings)
    detector.spans(texts(0))  # the process's first 40 texts: outside the zone
    before = len(strings)
    assert before > start and engine._warmed == 40
    found = [detector.spans(texts(b)) for b in range(1, 6)]
    assert len(strings) == before
    assert all(any(e == "EMAIL_ADDRESS" for e, *_ in spans) for batch in found for spans in batch)
    # the zone changes nothing found
    import contextlib
    plain = Detector(SERIAL)
    plain._memory_zone = contextlib.nullcontext
    assert [plain.spans(texts(b)) for b in range(1, 6)] == found
    assert len(strings) > before  # outside the zone the same texts do grow it
