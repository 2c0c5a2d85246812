"""SQLAlchemy 2 models of the catalog and audit database.

The catalog holds facts about data, never the data: source governance facts, dataset versions,
per-stage counts, export files with their sha256, one lineage row per exported record
(ids and provenance keys only), erasure requests (subject identifiers only as keyed hashes)
and an audit log. The schema is created and evolved by the Alembic migrations in
``governance/migrations``; ``Base.metadata`` is their reference (a test checks they agree).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Portable JSON: native json on PostgreSQL, text on SQLite.
JSONType = sa.JSON()

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


def _ts() -> Mapped[datetime]:
    return mapped_column(sa.DateTime(timezone=True), nullable=False)


class Source(Base):
    """A raw source and its governance facts, as last seen in sources.yaml."""

    __tablename__ = "sources"

    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(300))
    licence: Mapped[str] = mapped_column(sa.String(200))
    classification: Mapped[str] = mapped_column(sa.String(20))
    contains_pii: Mapped[bool] = mapped_column(sa.Boolean)
    retention_days: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    subject_field: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    config_hash: Mapped[str] = mapped_column(sa.String(64))
    updated_at: Mapped[datetime] = _ts()


class StageRun(Base):
    """One materialization of one stage asset: counts in/kept/rejected/erased and drops."""

    __tablename__ = "stage_runs"
    __table_args__ = (
        sa.Index(None, "dataset", "stage", "run_id"),
        sa.Index(None, "source", "stage"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    asset_key: Mapped[str] = mapped_column(sa.String(300))
    dataset: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    source: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    stage: Mapped[str] = mapped_column(sa.String(40))
    rows_in: Mapped[int] = mapped_column(sa.Integer)
    rows_kept: Mapped[int] = mapped_column(sa.Integer)
    rows_rejected: Mapped[int] = mapped_column(sa.Integer, default=0)
    rows_erased: Mapped[int] = mapped_column(sa.Integer, default=0)
    rows_out: Mapped[int] = mapped_column(sa.Integer)
    drops: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    data_version: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    # raw stage: what was read (file sha256/size/mtime or query row count + content hash)
    input_version: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    recorded_at: Mapped[datetime] = _ts()


class DatasetVersion(Base):
    """A dataset as exported by one run: its config, code and input data versions."""

    __tablename__ = "dataset_versions"
    __table_args__ = (sa.UniqueConstraint("dataset", "run_id"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    dataset: Mapped[str] = mapped_column(sa.String(200), index=True)
    run_id: Mapped[str] = mapped_column(sa.String(64))
    config_hash: Mapped[str] = mapped_column(sa.String(64))
    code_version: Mapped[str] = mapped_column(sa.String(64))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    records: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = _ts()

    exports: Mapped[list[ExportFile]] = relationship(
        back_populates="version", cascade="all, delete-orphan", order_by="ExportFile.path"
    )


class ExportFile(Base):
    """One exported file of a dataset version, from the manifest."""

    __tablename__ = "export_files"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(sa.String(500))
    format: Mapped[str] = mapped_column(sa.String(60))
    split: Mapped[str] = mapped_column(sa.String(20))
    records: Mapped[int] = mapped_column(sa.Integer)
    bytes: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))

    version: Mapped[DatasetVersion] = relationship(back_populates="exports")


class LineageRecord(Base):
    """One exported record of a dataset's current export, with its provenance.

    Every export format writes a split's records in the same order, so ``line`` (1-based) is
    the record's line in each of that split's files; the files come from ``export_files``.
    """

    __tablename__ = "lineage"
    __table_args__ = (sa.Index(None, "source", "source_key"), sa.Index(None, "record_id"))

    dataset: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    record_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("dataset_versions.id", ondelete="CASCADE")
    )
    source: Mapped[str] = mapped_column(sa.String(200))
    source_key: Mapped[str] = mapped_column(sa.String(300))
    split: Mapped[str] = mapped_column(sa.String(20))
    line: Mapped[int] = mapped_column(sa.Integer)


class ErasureRequest(Base):
    """A request to erase rows of one source, by key or by data-subject identifier."""

    __tablename__ = "erasure_requests"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(sa.String(200), index=True)
    requested_at: Mapped[datetime] = _ts()
    requester: Mapped[str] = mapped_column(sa.String(200))
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")  # pending|fulfilled
    fulfilled_run_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    fulfilled_at: Mapped[datetime | None] = mapped_column(
        sa.DateTime(timezone=True), nullable=True
    )
    rows_erased: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)

    items: Mapped[list[ErasureItem]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="ErasureItem.id"
    )


class ErasureItem(Base):
    """What a request matches: a source key in clear, or a keyed hash of a subject id."""

    __tablename__ = "erasure_items"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        sa.ForeignKey("erasure_requests.id", ondelete="CASCADE"), index=True
    )
    match: Mapped[str] = mapped_column(sa.String(10))  # key | subject
    value: Mapped[str] = mapped_column(sa.String(300))  # source key, or subject hash
    scheme: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)  # subject hashing
    # identifies the key a keyed subject hash was made with (never the key itself)
    key_fingerprint: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)

    request: Mapped[ErasureRequest] = relationship(back_populates="items")


class AuditEntry(Base):
    """Who did what, when: materializations, erasure requests and their fulfilment."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = _ts()
    action: Mapped[str] = mapped_column(sa.String(40), index=True)
    run_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, index=True)
    dataset: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    source: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    user: Mapped[str] = mapped_column(sa.String(200))
    host: Mapped[str] = mapped_column(sa.String(200))
    config_hash: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    previous_config_hash: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
