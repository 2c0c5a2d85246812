"""Erasure requests applied at the raw stage: rows matching a request never go further.

A request names a source and either source keys (ticket ids: not personal data by themselves,
stored in clear) or data-subject identifiers (a customer e-mail or id, matched against the
source's ``subject_field`` column). Subject identifiers are stored and compared only as keyed
hashes: HMAC-SHA256 with the key in ``FTDATA_SUBJECT_HASH_KEY`` (scheme ``hmac-sha256``), or,
without a key, a domain-separated SHA-256 (scheme ``sha256``, weaker: guessable identifiers can
be confirmed by hashing candidates). Values are normalized (trimmed, case-folded) before hashing
so ``Ann@Example.com`` and ``ann@example.com `` match.

Every request, pending or fulfilled, is applied on every run: the row is still in the source
system until its owner deletes it there, and must not come back with the next refresh.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ftdata_pipeline.records import SOURCE_KEY

SUBJECT_KEY_ENV = "FTDATA_SUBJECT_HASH_KEY"
HMAC_SCHEME = "hmac-sha256"
PLAIN_SCHEME = "sha256"
_DOMAIN = b"ftdata-subject\x1f"


class ErasureError(ValueError):
    """An erasure request cannot be applied. Messages name sources and columns, never values."""


def _normalize(value: str) -> str:
    return str(value).strip().casefold()


def _key() -> bytes | None:
    key = os.environ.get(SUBJECT_KEY_ENV)
    return key.encode("utf-8") if key else None


def subject_hash(value: str, scheme: str | None = None) -> tuple[str, str]:
    """(scheme, hex digest) of a subject identifier; the scheme defaults to what's configured."""
    key = _key()
    scheme = scheme or (HMAC_SCHEME if key else PLAIN_SCHEME)
    data = _normalize(value).encode("utf-8")
    if scheme == HMAC_SCHEME:
        if key is None:
            raise ErasureError(
                f"a subject erasure request was hashed with {HMAC_SCHEME}; set "
                f"{SUBJECT_KEY_ENV} to the same key to apply it"
            )
        return scheme, hmac.new(key, data, hashlib.sha256).hexdigest()
    if scheme == PLAIN_SCHEME:
        return scheme, hashlib.sha256(_DOMAIN + data).hexdigest()
    raise ErasureError(f"unknown subject hashing scheme {scheme!r}")


@dataclass
class ErasureRule:
    request_id: int
    match: str  # key | subject
    value: str  # source key, or subject digest
    scheme: str | None = None


@dataclass
class ErasureOutcome:
    kept: pl.DataFrame
    rows_read: int
    rows_erased: int
    per_request: dict[int, int] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_kept": self.kept.height,
            "rows_erased": self.rows_erased,
            "erasure_requests_applied": len(self.per_request),
        }


def _subject_key_frame(name: str, cfg: Any, root: Path, schemes: set[str]) -> pl.DataFrame:
    """source_key and subject digests (one column per scheme) of every raw row of a source.

    Reads the source again, but only for sources with subject requests. The subject column
    is a raw column that no mapping needs to carry, so it is not in the mapped frame.
    """
    # raw._read: the same reading rules (paths, SQL URLs, error messages without values).
    from ftdata_pipeline.stages.raw import ROW, _read

    field_name = cfg.subject_field
    df = _read(name, cfg, Path(root)).with_row_index(ROW)
    if field_name not in df.columns:
        raise ErasureError(
            f"source {name!r}: subject_field {field_name!r} is not a column of the source"
        )
    if cfg.turns is not None:
        key = pl.col(cfg.turns.group).cast(pl.String)
    elif cfg.key:
        key = pl.col(cfg.key).cast(pl.String)
    else:
        key = pl.col(ROW).cast(pl.String)
    out = df.select(key.alias(SOURCE_KEY), pl.col(field_name).cast(pl.String).alias("__subject"))
    for scheme in sorted(schemes):
        out = out.with_columns(
            pl.col("__subject")
            .map_batches(
                lambda s, sc=scheme: pl.Series(
                    [None if v is None else subject_hash(v, sc)[1] for v in s.to_list()],
                    dtype=pl.String,
                ),
                return_dtype=pl.String,
            )
            .alias(scheme)
        )
    return out.drop("__subject")


def apply_erasure(
    name: str, cfg: Any, root: Path | str, df: pl.DataFrame, rules: list[ErasureRule]
) -> ErasureOutcome:
    """Drop the rows of ``df`` (a raw asset's frame) that any rule matches."""
    rows_read = df.height
    if not rules or df.is_empty():
        return ErasureOutcome(kept=df, rows_read=rows_read, rows_erased=0,
                              per_request={r.request_id: 0 for r in rules})
    matched: dict[int, set[str]] = {}
    for rule in rules:
        if rule.match == "key":
            matched.setdefault(rule.request_id, set()).add(rule.value)
    subject_rules = [r for r in rules if r.match == "subject"]
    if subject_rules:
        if not cfg.subject_field:
            raise ErasureError(
                f"source {name!r}: subject erasure requests exist but the source has no "
                "subject_field in sources.yaml"
            )
        keys = _subject_key_frame(name, cfg, Path(root), {r.scheme for r in subject_rules})
        for rule in subject_rules:
            hits = keys.filter(pl.col(rule.scheme) == rule.value)[SOURCE_KEY].to_list()
            matched.setdefault(rule.request_id, set()).update(hits)
    present = set(df[SOURCE_KEY].to_list())
    per_request = {rid: len(ks & present) for rid, ks in matched.items()}
    erase = set().union(*matched.values()) if matched else set()
    kept = df.filter(~pl.col(SOURCE_KEY).is_in(sorted(erase)))
    return ErasureOutcome(
        kept=kept, rows_read=rows_read, rows_erased=rows_read - kept.height,
        per_request=per_request,
    )
