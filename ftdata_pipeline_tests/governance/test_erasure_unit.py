"""Erasure matching on small frames: keys, hashed subject ids, and the raw-stage invariant."""

from __future__ import annotations

import json

import polars as pl
import pytest

from ftdata_pipeline.config.models import SourceConfig
from ftdata_pipeline.governance.erasure import (
    ErasureError,
    ErasureRule,
    apply_erasure,
    subject_hash,
)
from ftdata_pipeline.stages.raw import load_source


def _source(tmp_path, subject_field="email"):
    rows = [
        {"id": "A", "body": "hello there", "email": "Ann@Example.com"},
        {"id": "B", "body": "second", "email": "bob@example.com"},
        {"id": "C", "body": "third", "email": "ann@example.com"},
        {"id": "D", "body": "fourth", "email": None},
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = SourceConfig(kind="file", path=str(path), format="jsonl", key="id",
                       mapping={"text": "body"}, owner="o@example.com", licence="x",
                       classification="internal", contains_pii=True,
                       subject_field=subject_field)
    return cfg, load_source("s", cfg, tmp_path)


K1 = "k1-" + "a" * 40
K2 = "k2-" + "b" * 40


def test_subject_hash_normalizes_and_is_keyed(monkeypatch):
    monkeypatch.delenv("FTDATA_SUBJECT_HASH_KEY", raising=False)
    scheme, plain = subject_hash(" Ann@Example.COM ", allow_unkeyed=True)
    assert scheme == "sha256" and plain == subject_hash("ann@example.com", "sha256")[1]
    assert "ann" not in plain
    monkeypatch.setenv("FTDATA_SUBJECT_HASH_KEY", K1)
    scheme, keyed = subject_hash("ann@example.com")
    assert scheme == "hmac-sha256" and keyed != plain
    monkeypatch.setenv("FTDATA_SUBJECT_HASH_KEY", K2)
    assert subject_hash("ann@example.com")[1] != keyed
    monkeypatch.delenv("FTDATA_SUBJECT_HASH_KEY")
    with pytest.raises(ErasureError, match="FTDATA_SUBJECT_HASH_KEY"):
        subject_hash("ann@example.com", "hmac-sha256")


def test_hashing_without_a_key_is_refused_unless_allowed(monkeypatch):
    monkeypatch.delenv("FTDATA_SUBJECT_HASH_KEY", raising=False)
    with pytest.raises(ErasureError, match="FTDATA_SUBJECT_HASH_KEY .*not set.*--allow-unkeyed"):
        subject_hash("ann@example.com")
    assert subject_hash("ann@example.com", allow_unkeyed=True)[0] == "sha256"


def test_a_short_subject_key_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("FTDATA_SUBJECT_HASH_KEY", "x" * 31)
    with pytest.raises(ErasureError, match="FTDATA_SUBJECT_HASH_KEY is 31 bytes; .* at least 32"):
        subject_hash("ann@example.com")


def test_apply_erasure_by_key_and_subject(tmp_path, monkeypatch):
    monkeypatch.setenv("FTDATA_SUBJECT_HASH_KEY", K1)
    cfg, df = _source(tmp_path)
    scheme, digest = subject_hash("ANN@example.com")
    rules = [ErasureRule(1, "key", "B"), ErasureRule(2, "subject", digest, scheme),
             ErasureRule(3, "key", "nope")]
    out = apply_erasure("s", cfg, tmp_path, df, rules)
    assert sorted(out.kept["source_key"].to_list()) == ["D"]
    assert out.rows_read == 4 == out.kept.height + out.rows_erased
    assert out.per_request == {1: 1, 2: 2, 3: 0}
    assert out.metadata() == {"rows_read": 4, "rows_kept": 1, "rows_erased": 3,
                              "erasure_requests_applied": 3}


def test_subject_requests_need_a_subject_field(tmp_path):
    cfg, df = _source(tmp_path, subject_field=None)
    with pytest.raises(ErasureError, match="no subject_field") as err:
        apply_erasure("s", cfg, tmp_path, df, [ErasureRule(1, "subject", "ab", "sha256")])
    assert "example.com" not in str(err.value)


def test_no_rules_keeps_everything(tmp_path):
    cfg, df = _source(tmp_path)
    out = apply_erasure("s", cfg, tmp_path, df, [])
    assert out.kept.equals(df) and out.rows_erased == 0
    assert isinstance(out.kept, pl.DataFrame)
