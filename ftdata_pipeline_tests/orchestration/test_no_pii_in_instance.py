"""No planted PII value reaches the Dagster instance or the open zone after a demo run.

Planted values are collected from the raw demo data (the restricted sources) independently of
Presidio: e-mail addresses, phone numbers, card numbers (Luhn), SSNs, IBANs (mod 97), IPv4
and IPv6 addresses by regex, and full names rebuilt from the customers' e-mail addresses
("laura.wheeler73@..." -> "Laura Wheeler") where the ticket texts contain them. They are then
searched in every file of the Dagster instance (event log and run SQLite databases as bytes and
every event's JSON, compute logs), in every Parquet file of the open zone (content and file
metadata), and in exports, cards and stats. Only the restricted zone may hold them.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from ftdata_pipeline.stages.pii.engine import luhn_ok, mod97_ok

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[2] / "demo_data"
PII_SOURCES = ("support_tickets.jsonl",)
PUBLIC_SOURCES = ("kb_articles.parquet", "eval_set.jsonl", "response_rankings.jsonl",
                  "production_queries.jsonl")

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(
    r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}|(?:\(\d{3}\) ?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b"
)
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"\b(?:{_OCTET}\.){{3}}{_OCTET}\b")
_IPV6 = re.compile(r"\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b")
_EMAIL_NAME = re.compile(r"^([a-z]{3,})\.([a-z]{3,})\d*@")


def _raw_texts() -> list[str]:
    texts = []
    for name in PII_SOURCES:
        for line in (DEMO / name).read_text().splitlines():
            row = json.loads(line)
            texts += [str(v) for v in row.values() if isinstance(v, str)]
    con = sqlite3.connect(DEMO / "chat_transcripts.sqlite")
    texts += [c for (c,) in con.execute("SELECT content FROM chat_turns") if c]
    con.close()
    return texts


def _public_text() -> str:
    parts = [(DEMO / n).read_text() for n in PUBLIC_SOURCES if n.endswith(".jsonl")]
    parts.append(str(pl.read_parquet(DEMO / "kb_articles.parquet").to_dicts()))
    return "\n".join(parts)


def planted_values() -> dict[str, set[str]]:
    texts = _raw_texts()
    joined = "\n".join(texts)
    public = _public_text()
    found: dict[str, set[str]] = {
        "email": set(_EMAIL.findall(joined)),
        "phone": {p for p in _PHONE.findall(joined) if sum(c.isdigit() for c in p) >= 10},
        "card": {c for c in _CARD.findall(joined) if luhn_ok(c)},
        "ssn": set(_SSN.findall(joined)),
        "iban": {i for i in _IBAN.findall(joined) if mod97_ok(i)},
        "ip": set(_IPV4.findall(joined)) | set(_IPV6.findall(joined)),
    }
    names = set()
    for email in found["email"]:
        m = _EMAIL_NAME.match(email)
        if m:
            names.add(f"{m.group(1).title()} {m.group(2).title()}")
    found["name"] = {n for n in names if n in joined}
    # Values that also occur in public content are not secrets (and not planted PII).
    return {kind: {v for v in values if v not in public} for kind, values in found.items()}


def _search(blob: str, values: dict[str, set[str]]) -> dict[str, int]:
    """Number of distinct planted values of each kind found in blob (counts only)."""
    return {kind: sum(1 for v in vals if v in blob) for kind, vals in values.items()}


def _sqlite_text(path: Path) -> str:
    """Every text cell of every table (events are JSON strings in event_logs.event)."""
    out = []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in con.execute(f'SELECT * FROM "{table}"'):
                for cell in row:
                    if isinstance(cell, bytes):
                        out.append(cell.decode("utf-8", "replace"))
                    elif isinstance(cell, str):
                        out.append(cell)
                        if cell.startswith("{"):
                            try:  # event JSON escapes non-ASCII; search the decoded form too
                                out.append(json.dumps(json.loads(cell), ensure_ascii=False))
                            except ValueError:
                                pass
    finally:
        con.close()
    return "\n".join(out)


def _parquet_text(path: Path) -> str:
    meta = pq.read_metadata(path)
    kv = meta.metadata or {}
    parts = [k.decode("utf-8", "replace") + v.decode("utf-8", "replace") for k, v in kv.items()]
    parts.append(str(pl.read_parquet(path).to_dicts()))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def planted():
    return planted_values()


def test_planted_values_exist_in_restricted_raw_data(planted, demo_run):
    """The search can fail: the restricted zone does hold the planted values."""
    for kind in ("email", "phone", "card", "ssn", "iban", "ip", "name"):
        assert len(planted[kind]) >= 5, kind
    home, _ = demo_run
    restricted = list((home / "restricted").rglob("*.parquet"))
    assert restricted
    blob = "\n".join(_parquet_text(p) for p in restricted)
    hits = _search(blob, planted)
    for kind in ("email", "phone", "card", "ssn", "iban", "ip", "name"):
        assert hits[kind] > 0, kind


def test_no_planted_pii_in_dagster_instance(planted, demo_run, demo_instance_dir):
    _, result = demo_run
    assert result.success
    files = [p for p in Path(demo_instance_dir).rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files)  # the SQLite run and event log storages
    leaks: dict[str, dict[str, int]] = {}
    for path in files:
        data = path.read_bytes()
        blob = data.decode("utf-8", "replace")
        if data.startswith(b"SQLite format 3"):
            blob += "\n" + _sqlite_text(path)
        hits = {k: n for k, n in _search(blob, planted).items() if n}
        if hits:
            leaks[str(path.relative_to(demo_instance_dir))] = hits
    assert leaks == {}


def test_no_planted_pii_in_open_zone_exports_cards_stats(planted, demo_run):
    home, _ = demo_run
    leaks: dict[str, dict[str, int]] = {}
    parquet = list((home / "storage").rglob("*.parquet"))
    assert parquet  # redacted-and-later assets live here
    for path in parquet:
        hits = {k: n for k, n in _search(_parquet_text(path), planted).items() if n}
        if hits:
            leaks[str(path.relative_to(home))] = hits
    others = [
        p
        for folder in ("exports", "cards", "stats")
        for p in (home / folder).rglob("*")
        if p.is_file() and p.suffix in {".jsonl", ".json", ".md", ".txt", ".csv"}
    ]
    assert any(p.suffix == ".jsonl" for p in others)
    for path in others:
        hits = {k: n for k, n in _search(path.read_text(errors="replace"), planted).items() if n}
        if hits:
            leaks[str(path.relative_to(home))] = hits
    assert leaks == {}
