"""Source kinds: how each kind of raw source (file, SQL query) is read.

Each kind is one module registering a ``SourceKind`` (read, fingerprint, input version, asset
kinds, location) in ``base.KINDS``; the raw stage looks the kind up there instead of
branching on ``cfg.kind``. Mapping rows onto the canonical record is the raw stage's job
(``stages/raw.py``), shared by every kind.
"""

from ftdata_pipeline.sources import files, sql  # noqa: F401 - modules register their kind
from ftdata_pipeline.sources.base import (
    KINDS,
    QUARANTINE_SCHEMA,
    RawRead,
    SourceError,
    SourceKind,
    source_kind,
)

__all__ = ["KINDS", "QUARANTINE_SCHEMA", "RawRead", "SourceError", "SourceKind", "source_kind"]
