"""Mutated JSONL and CSV files: the readers give rows or a SourceError, nothing else, and in
quarantine mode every non-blank line is either a row or a quarantined line."""

from __future__ import annotations

import json
import random

import pytest

from ftdata_pipeline.config.models import SourceConfig
from ftdata_pipeline.stages.raw import SourceError, read_source

GOV = {"owner": "o@example.com", "licence": "internal", "classification": "internal",
       "contains_pii": False}
GOOD_JSONL = "".join(
    json.dumps({"id": f"r{i}", "text": f"row {i} says \"hi\", ok", "meta": {"n": i}}) + "\n"
    for i in range(12)
).encode()
GOOD_CSV = ("id,text,label\n" + "".join(f'r{i},"row {i}, quoted",l{i % 3}\n' for i in range(12))).encode()
NOISE = [b"\x00", b"\xff", b"\xe9", b'"', b"{", b"}", b",", b"\n", b"\r\n", b"\xef\xbb\xbf", b"\\", b"\x1b[31m"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        pos = rng.randrange(len(data) + 1)
        if op == 0:  # truncate
            data = data[:pos]
        elif op == 1:  # insert noise
            data = data[:pos] + rng.choice(NOISE) + data[pos:]
        elif op == 2 and data:  # flip a byte
            data = data[:pos] + bytes([rng.randrange(256)]) + data[pos + 1:]
        else:  # drop a span
            data = data[:pos] + data[pos + rng.randint(1, 20):]
    return data


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("mode", ["fail", "quarantine"])
def test_mutated_files_give_rows_or_a_source_error(tmp_path, fmt, mode):
    rng = random.Random(f"{fmt}-{mode}")
    good = GOOD_JSONL if fmt == "jsonl" else GOOD_CSV
    cfg = SourceConfig(kind="file", path=f"f.{fmt}", format=fmt, mapping={"text": "text"},
                       on_bad_rows=mode, **GOV)
    outcomes = {"rows": 0, "error": 0}
    for _ in range(150):
        data = mutate(good, rng)
        (tmp_path / f"f.{fmt}").write_bytes(data)
        try:
            loaded = read_source("s", cfg, tmp_path)
        except SourceError:
            outcomes["error"] += 1
            continue
        outcomes["rows"] += 1
        if fmt == "jsonl" and mode == "quarantine" and loaded.frame.height:
            lines = [ln for ln in data.split(b"\n") if ln.strip(b" \t\r\n\xef\xbb\xbf")]
            assert loaded.frame.height + loaded.quarantined.height == len(lines)
    assert outcomes["rows"] > 0  # most mutations still read


def _whole_file_csv(data: bytes, limit: int | None = None):
    """The CSV reader's rules applied to the whole file at once (every row a Python list):
    (header, rows, quarantined (line, reason, content), short rows), or the first error."""
    import csv
    import io

    text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(io.StringIO(text, newline=""))
    header, rows, bad, short, start = None, [], [], 0, 1
    for row in reader:
        line, start = start, reader.line_num + 1
        if not row:
            continue
        odd = any("\udc80" <= ch <= "\udcff" for v in row for ch in v)
        if header is None:
            if odd or len(set(row)) != len(row):
                return "header"
            header = row
            continue
        reason = ("not UTF-8 text" if odd else
                  f"too few fields ({len(row)} of {len(header)})" if len(row) < len(header) else
                  f"too many fields ({len(row)} of {len(header)})" if len(row) > len(header)
                  else None)
        short += reason is not None and reason.startswith("too few")
        if limit is not None and len(rows) + len(bad) >= limit:
            break
        if reason:
            raw = "".join(lines[line - 1 : reader.line_num]).removesuffix("\n")
            bad.append((line, reason, raw.encode("utf-8", errors="surrogateescape")
                        .decode("utf-8", errors="backslashreplace")))
        else:
            rows.append(row)
    return header, rows, bad, short


@pytest.mark.parametrize("batch", [2, 50_000])
def test_csv_is_read_as_a_stream_in_batches_with_the_whole_file_result(
    tmp_path, monkeypatch, batch
):
    """The CSV reader streams the file and makes columns CSV_BATCH rows at a time; on mutated
    files it gives what the same rules give over the whole file at once."""
    from ftdata_pipeline.sources import files

    made = []
    real_frame = files._csv_frame
    monkeypatch.setattr(files, "CSV_BATCH", batch)
    monkeypatch.setattr(files, "_csv_frame", lambda h, r: made.append(len(r)) or real_frame(h, r))
    rng = random.Random(f"stream-{batch}")
    path = tmp_path / "f.csv"
    compared = 0
    for k in range(150):
        data = GOOD_CSV if k == 0 else mutate(GOOD_CSV, rng)
        path.write_bytes(data)
        limit = 5 if k % 4 == 3 else None
        expected = _whole_file_csv(data, limit)
        try:
            got = files.read_csv("s", path, "quarantine", limit)
        except SourceError:
            assert expected == "header"
            continue
        assert expected != "header"
        header, rows, bad, short = expected
        frame = got.frame
        if header is None:
            assert frame.width == 0
            continue
        assert frame.columns == header
        want = [tuple(v or None for v in r) for r in rows]
        assert frame.rows() == want
        assert [(q["line"], q["reason"], q["content"]) for q in got.quarantined] == bad
        assert got.counts == ({"rows_quarantined": len(bad), "csv_rows_short": short}
                              if bad else {})
        compared += 1
    assert compared > 100
    assert made and max(made) <= batch
    if batch == 2:  # 12 good rows: six batches of two
        assert made[:6] == [2] * 6
