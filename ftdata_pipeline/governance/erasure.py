"""Erasure requests applied at the raw stage: rows matching a request never go further.

A request names a source and either source keys (ticket ids: not personal data by themselves,
stored in clear) or data-subject identifiers (a customer e-mail or id, matched against the
source's ``subject_field`` column). Subject identifiers are stored and compared only as
HMAC-SHA256 with the key in ``FTDATA_SUBJECT_HASH_KEY`` (scheme ``hmac-sha256``; at least 256
bits of entropy, see ``ftdata_pipeline.key_strength``). Values are normalized (trimmed, case-folded) before hashing so ``Ann@Example.com`` and
``ann@example.com `` match.

A request cannot be void silently: it stores a fingerprint of the key it was hashed with (an
HMAC of a fixed label under the key: it identifies the key without revealing it), and a run
whose key has another fingerprint, or no key, refuses to apply the request -- the raw asset
fails naming the request and both fingerprints, and the request stays pending -- instead of
matching nothing and marking it fulfilled. Hashing without a key (scheme ``sha256``, a
domain-separated SHA-256 that anyone with a list of e-mails can confirm) is refused unless
explicitly allowed (``ftdata erasure request --allow-unkeyed``); such requests are reported as
unkeyed by ``ftdata erasure list`` and the dataset card.

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

from ftdata_pipeline.key_strength import WeakKeyError, require_strong_key
from ftdata_pipeline.records import SOURCE_KEY

SUBJECT_KEY_ENV = "FTDATA_SUBJECT_HASH_KEY"
HMAC_SCHEME = "hmac-sha256"
PLAIN_SCHEME = "sha256"
_DOMAIN = b"ftdata-subject\x1f"
_FINGERPRINT_LABEL = b"ftdata-subject-key-fingerprint"


class ErasureError(ValueError):
    """An erasure request cannot be applied. Messages name sources and columns, never values."""


def _normalize(value: str) -> str:
    return str(value).strip().casefold()


def _key() -> bytes | None:
    key = os.environ.get(SUBJECT_KEY_ENV)
    if not key:
        return None
    try:
        return require_strong_key(SUBJECT_KEY_ENV, key)
    except WeakKeyError as exc:
        raise ErasureError(str(exc)) from None


def key_fingerprint(key: bytes) -> str:
    """Identifies a key without revealing it (HMAC of a fixed label, 64 bits shown)."""
    return hmac.new(key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]


def current_fingerprint() -> str | None:
    key = _key()
    return None if key is None else key_fingerprint(key)


def subject_hash(
    value: str, scheme: str | None = None, *, allow_unkeyed: bool = False
) -> tuple[str, str]:
    """(scheme, hex digest) of a subject identifier.

    Without ``scheme``: HMAC with the configured key; with no key, an error unless
    ``allow_unkeyed`` (then the weaker unkeyed scheme).
    """
    key = _key()
    if scheme is None:
        if key is not None:
            scheme = HMAC_SCHEME
        elif allow_unkeyed:
            scheme = PLAIN_SCHEME
        else:
            raise ErasureError(
                f"subject ids are hashed with HMAC-SHA256 keyed by {SUBJECT_KEY_ENV} (at least "
                "256 bits of entropy), which is not set. Set it, or allow an unkeyed SHA-256 "
                "explicitly (--allow-unkeyed): anyone with a list of e-mails can confirm an "
                "unkeyed hash, and the request is reported as unkeyed"
            )
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
    fingerprint: str | None = None  # of the key a subject digest was made with


def key_problems(rules: list[ErasureRule]) -> list[str]:
    """Why keyed subject requests cannot be applied with the key configured now (if so)."""
    keyed = [r for r in rules if r.match == "subject" and r.scheme == HMAC_SCHEME]
    if not keyed:
        return []
    current = current_fingerprint()
    problems = []
    for rid in sorted({r.request_id for r in keyed}):
        wanted = sorted({r.fingerprint for r in keyed if r.request_id == rid and r.fingerprint})
        if current is None:
            problems.append(f"erasure request #{rid} was hashed with a key "
                            f"(fingerprint {', '.join(wanted) or 'unknown'}) but "
                            f"{SUBJECT_KEY_ENV} is not set")
        elif wanted and current not in wanted:
            problems.append(f"erasure request #{rid} was hashed with the key of fingerprint "
                            f"{', '.join(wanted)}; {SUBJECT_KEY_ENV} has fingerprint {current}")
    return problems


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
    problems = key_problems(rules)
    if problems:
        # Matching with another key finds nothing: the subject's rows would stay and the
        # request would look fulfilled. Refuse instead; the request stays pending.
        raise ErasureError(
            f"source {name!r}: " + "; ".join(problems) + ". Set the key the requests were "
            "made with; the requests stay pending and this source is not materialized"
        )
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


def locate_subjects(
    name: str, cfg: Any, root: Path | str, rules: list[ErasureRule]
) -> tuple[dict[int, set[str]], dict[int, str]]:
    """Source keys of the rows each subject request matches in the source as it is now.

    Returns (request id -> keys, request id -> why it cannot be located). Reads the source, so
    it is for the erasure report, not the pipeline.
    """
    subject_rules = [r for r in rules if r.match == "subject"]
    found: dict[int, set[str]] = {}
    errors: dict[int, str] = {}
    if not subject_rules:
        return found, errors
    for problem in key_problems(subject_rules):
        rid = int(problem.split("#", 1)[1].split(" ", 1)[0])
        errors[rid] = problem
    usable = [r for r in subject_rules if r.request_id not in errors]
    if not usable:
        return found, errors
    if not cfg.subject_field:
        return found, {**errors, **{r.request_id: "the source has no subject_field" for r in usable}}
    keys = _subject_key_frame(name, cfg, Path(root), {r.scheme for r in usable})
    for rule in usable:
        hits = keys.filter(pl.col(rule.scheme) == rule.value)[SOURCE_KEY].to_list()
        found.setdefault(rule.request_id, set()).update(hits)
    return found, errors


def erasure_summary(catalog: Any, sources: list[str]) -> dict[str, int]:
    """Counts of the erasure requests on ``sources``, for the dataset card."""
    requests = [r for s in sorted(set(sources)) for r in catalog.erasure_requests(s)]
    return {
        "requests": len(requests),
        "pending": sum(r.status == "pending" for r in requests),
        "fulfilled": sum(r.status == "fulfilled" for r in requests),
        "unkeyed": sum(
            any(i.match == "subject" and i.scheme != HMAC_SCHEME for i in r.items)
            for r in requests
        ),
    }
