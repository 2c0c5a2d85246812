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


K1 = "5d0f3c8b1e9a4726c0b8e31f7a2d9645b1c7e80f3a6d2b9c4e1f8a7d3b6c0e92"  # openssl rand -hex 32
K2 = "a39e6c1f0b7d2e845f3c9a0d6b1e7f24c8a5d3e9f0b2c6a1d7e4f8b3c9a0e5d1"


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


@pytest.mark.parametrize("key", ["x" * 31, "test-subject-key-" + "7" * 32, "password1234" * 4])
def test_a_weak_subject_key_is_refused_naming_the_variable(monkeypatch, key):
    """Length alone is not strength: a long key of few distinct characters is guessable."""
    monkeypatch.setenv("FTDATA_SUBJECT_HASH_KEY", key)
    with pytest.raises(ErasureError, match="FTDATA_SUBJECT_HASH_KEY holds a key of about .* 256"):
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
