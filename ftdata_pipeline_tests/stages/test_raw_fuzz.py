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
