"""Anonymization operators: what replaces a detected span, per entity type.

- ``placeholder`` (default): a typed placeholder such as ``<PERSON>``;
- ``mask``: all but the last N characters replaced by a mask character (``************1111``);
- ``pseudonym``: ``<PERSON_3f9a1c2d>``, the first hex digits of HMAC-SHA256(key, entity type +
  normalized value). The same value gets the same pseudonym everywhere in a dataset (and across
  runs with the same key), so a model can still learn that two turns name the same person,
  while nobody without the key can test a guess. Presidio's own ``hash`` operator is salted at
  random per entity, which gives no consistency.

The HMAC key comes from an environment variable named in the recipe; there is no default key,
since a key in the repository would make every pseudonym reversible by dictionary attack.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata

from ftdata_pipeline.config.models import OperatorSpec, RedactConfig
from ftdata_pipeline.stages.pii.engine import Span


class PseudonymKeyMissing(RuntimeError):
    """A pseudonym operator is configured but its key variable is unset, empty or too weak."""


def require_strong_key(variable: str, value: str) -> bytes:
    from ftdata_pipeline.key_strength import WeakKeyError
    from ftdata_pipeline.key_strength import require_strong_key as check

    try:
        return check(variable, value)
    except WeakKeyError as exc:
        raise PseudonymKeyMissing(str(exc)) from None


def read_pseudonym_key(cfg: RedactConfig) -> bytes | None:
    """The HMAC key if any operator needs one; a clear error naming the variable if unset."""
    if not any(op.type == "pseudonym" for op in cfg.operators.values()):
        return None
    value = os.environ.get(cfg.pseudonym_key_env, "")
    if not value:
        raise PseudonymKeyMissing(
            f"redact.operators uses 'pseudonym' but environment variable "
            f"{cfg.pseudonym_key_env} is not set (it holds the HMAC key; set it to a long random "
            f"secret, the same for every run whose pseudonyms must match)"
        )
    return require_strong_key(cfg.pseudonym_key_env, value)


def key_fingerprint(key: bytes | None) -> str:
    """A non-reversible tag of the key, to tell redactors built with different keys apart."""
    return "" if key is None else hashlib.sha256(b"ftdata-key-id\x1f" + key).hexdigest()[:16]


def _normalize(value: str) -> str:
    # "John  Smith" and "john smith" are the same person: NFKC, casefold, single spaces.
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


class Operators:
    """Applies the configured operator of each entity type to the spans of a text."""

    def __init__(self, cfg: RedactConfig, key: bytes | None):
        self.cfg = cfg
        self._key = key
        self._specs: dict[str, OperatorSpec] = dict(cfg.operators)

    def replacement(self, entity: str, value: str) -> str:
        spec = self._specs.get(entity)
        if spec is None or spec.type == "placeholder":
            template = spec.value if spec is not None and spec.value else self.cfg.placeholder
            return template.format(entity=entity)
        if spec.type == "mask":
            keep = min(spec.chars_to_keep, len(value))
            return spec.masking_char * (len(value) - keep) + value[len(value) - keep :]
        assert self._key is not None  # read_pseudonym_key guarantees it
        digest = hmac.new(
            self._key, f"{entity}\x1f{_normalize(value)}".encode(), hashlib.sha256
        ).hexdigest()
        return f"<{entity}_{digest[: spec.length]}>"

    def describe(self, entity: str) -> str:
        """How spans of ``entity`` are replaced, in words (for metadata and the card)."""
        spec = self._specs.get(entity)
        if spec is None or spec.type == "placeholder":
            template = spec.value if spec is not None and spec.value else self.cfg.placeholder
            return f"placeholder {template.format(entity=entity)}"
        if spec.type == "mask":
            return f"mask with {spec.masking_char!r}, last {spec.chars_to_keep} characters kept"
        return f"pseudonym (keyed HMAC-SHA256, {spec.length} hex digits)"

    def apply(self, text: str, spans: list[Span]) -> str:
        """``text`` with each (non-overlapping, sorted) span replaced."""
        if not spans:
            return text
        parts = []
        pos = 0
        for entity, start, end, _score in spans:
            parts.append(text[pos:start])
            parts.append(self.replacement(entity, text[start:end]))
            pos = end
        parts.append(text[pos:])
        return "".join(parts)
