"""The protocol every source kind implements, its registry, and what a read returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl


class SourceError(ValueError):
    """A source cannot be read or mapped. The message names the source and what is wrong.

    Messages quote file names, config keys, line and row numbers, never cell values (which may
    hold PII).
    """


# A line set aside by on_bad_rows: quarantine. Stored in the restricted zone (it may hold PII).
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String,
    "file": pl.String,
    "line": pl.Int64,  # 1-based line number in the file
    "reason": pl.String,
    "content": pl.String,  # the raw line (bytes that are not UTF-8 as \\x escapes)
}


@dataclass
class RawRead:
    """What reading a source gave: its rows as read, and the lines it could not use."""

    frame: pl.DataFrame
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    # counts for metadata, e.g. {"csv_rows_short": 2}
    counts: dict[str, int] = field(default_factory=dict)

    def quarantine_frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.quarantined, schema=QUARANTINE_SCHEMA)


class SourceKind(Protocol):
    """One kind of source (the ``kind`` key of sources.yaml)."""

    name: str

    def read(self, name: str, cfg: Any, root: Path, *, limit: int | None = None) -> RawRead:
        """Every row of the source (or the first ``limit``), columns as read (no mapping)."""

    def fingerprint(self, cfg: Any, root: Path) -> str | None:
        """A cheap token that changes when the data changes (None: unknown without reading)."""

    def input_version(self, cfg: Any, root: Path, df: pl.DataFrame) -> dict[str, Any]:
        """What was read, for the catalog: file hash and size, or a result's content hash."""

    def asset_kinds(self, cfg: Any) -> set[str]:
        """Dagster kinds tags of the raw asset."""

    def location(self, cfg: Any) -> str:
        """Where the data lives, without secrets."""


KINDS: dict[str, SourceKind] = {}


def register(kind: SourceKind) -> SourceKind:
    KINDS[kind.name] = kind
    return kind


def source_kind(cfg: Any) -> SourceKind:
    return KINDS[cfg.kind]


def resolve(path: str, root: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path(root) / p
