"""The catalog and audit database: what was built from what, by whom, and what was erased.

SQLite at ``$FTDATA_HOME/catalog.db`` by default; any SQLAlchemy URL (PostgreSQL in
production: ``postgresql+psycopg://...``) from ``FTDATA_CATALOG_URL``. The schema is owned by
the Alembic migrations in ``governance/migrations``; :class:`Catalog` upgrades the database to
head the first time a process opens it, so a fresh install needs no manual step
(``ftdata catalog upgrade`` does the same explicitly).

Only facts go in: names, ids, provenance keys, counts, hashes and config hashes. Record
content never does, and data-subject identifiers only as keyed hashes (see ``erasure``).
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session, selectinload

from ftdata_pipeline.governance.models import (
    AuditEntry,
    DatasetVersion,
    ErasureItem,
    ErasureRequest,
    ExportFile,
    LineageRecord,
    Source,
    StageRun,
)

CATALOG_URL_ENV = "FTDATA_CATALOG_URL"
HOME_ENV = "FTDATA_HOME"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LINEAGE_BATCH = 10_000  # rows per executemany batch when replacing a dataset's lineage

_upgraded: set[str] = set()
_upgrade_lock = threading.Lock()


def default_catalog_url(home: str | os.PathLike[str] | None = None) -> str:
    """``FTDATA_CATALOG_URL`` if set, else SQLite in ``home`` (default ``$FTDATA_HOME``)."""
    url = os.environ.get(CATALOG_URL_ENV)
    if url:
        return url
    home = Path(home or os.environ.get(HOME_ENV) or Path.cwd() / "data")
    return f"sqlite:///{home.resolve() / 'catalog.db'}"


def shown_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def now() -> datetime:
    return datetime.now(UTC)


def who() -> tuple[str, str]:
    """(user, host) for audit entries; containers without a passwd entry fall back to $USER."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - getuser raises OSError/KeyError without a passwd entry
        user = os.environ.get("USER", "unknown")
    return user, socket.gethostname()


def _private_sqlite_file(database: str) -> None:
    """Create the SQLite file owner-only (0600; its directory 0700 when created here) before
    SQLite opens it. SQLite gives the ``-wal`` and ``-shm`` files the database file's mode, so
    they are owner-only too. The catalog holds lineage and erasure subjects."""
    path = Path(database)
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        # an existing catalog from an earlier version is tightened too (when we own it)
        if name.exists() and name.stat().st_uid == os.getuid():
            os.chmod(name, 0o600)


def make_engine(url: str) -> sa.Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_sqlite_file(parsed.database)
        # Several Dagster step processes may write at once: wait for the lock instead of
        # failing, and use WAL so readers (the CLI) don't block writers.
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


# --------------------------------------------------------------------------------------------
# migrations
# --------------------------------------------------------------------------------------------


def alembic_config(url: str | None = None, connection: sa.Connection | None = None) -> Config:
    """An Alembic Config built in code (no alembic.ini)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolation: a literal % in a password must be doubled.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


_PG_MIGRATION_LOCK = 0x66746461  # advisory lock id ("ftda")


@contextmanager
def migration_lock(engine: sa.Engine) -> Iterator[None]:
    """Hold a cross-process lock while the schema is checked and migrated."""
    backend = engine.url.get_backend_name()
    database = engine.url.database
    if backend == "sqlite" and database and database != ":memory:":
        import fcntl

        fd = os.open(f"{database}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
    elif backend == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
    else:
        yield


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), revision)


# --------------------------------------------------------------------------------------------
# the catalog
# --------------------------------------------------------------------------------------------


class Catalog:
    """Read and write catalog facts. One instance per process and URL is enough."""

    def __init__(self, url: str | None = None, *, auto_upgrade: bool = True):
        self.url = url or default_catalog_url()
        self.engine = make_engine(self.url)
        if auto_upgrade:
            self.ensure_schema()

    def ensure_schema(self) -> None:
        """Upgrade to head once per process (a no-op when the database is already there).

        Serialized across processes too (several Dagster steps open a fresh catalog at once):
        the revision is checked and the migration run under a lock -- an ``flock`` beside a
        SQLite file, a PostgreSQL advisory lock -- so one process migrates and the others
        then find the schema at head.
        """
        with _upgrade_lock:
            if self.url in _upgraded:
                return
            with migration_lock(self.engine):
                if current_revision(self.engine) != head_revision():
                    upgrade(self.engine)
            _upgraded.add(self.url)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    # ---------------------------------------------------------------- audit
    def audit(self, session: Session, action: str, **fields: Any) -> AuditEntry:
        user, host = who()
        entry = AuditEntry(
            at=now(), action=action, user=user, host=host,
            details=fields.pop("details", None) or {}, **fields,
        )
        session.add(entry)
        return entry

    def log(self, action: str, **fields: Any) -> None:
        """An audit entry on its own (e.g. a refused erasure)."""
        with self.session() as s:
            self.audit(s, action, **fields)

    def audit_log(self, *, limit: int = 50, dataset: str | None = None) -> list[AuditEntry]:
        with self.session() as s:
            q = sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
            if dataset:
                q = q.where(AuditEntry.dataset == dataset)
            return list(s.scalars(q))

    # ---------------------------------------------------------------- sources
    def upsert_source(self, name: str, cfg: Any, config_hash: str) -> None:
        """Store a source's governance facts (``cfg`` is a config.models.SourceConfig)."""
        facts = {
            "owner": cfg.owner,
            "licence": cfg.licence,
            "classification": cfg.classification,
            "contains_pii": cfg.contains_pii,
            "retention_days": cfg.retention_days,
            "subject_field": getattr(cfg, "subject_field", None),
            "config_hash": config_hash,
        }
        with self.session() as s:
            row = s.get(Source, name)
            if row is None:
                s.add(Source(name=name, updated_at=now(), **facts))
            elif any(getattr(row, k) != v for k, v in facts.items()):
                for k, v in facts.items():
                    setattr(row, k, v)
                row.updated_at = now()

    def sources(self) -> list[Source]:
        with self.session() as s:
            return list(s.scalars(sa.select(Source).order_by(Source.name)))

    # ---------------------------------------------------------------- stage runs
    def record_stage(
        self,
        *,
        run_id: str,
        asset_key: str,
        stage: str,
        rows_in: int,
        rows_kept: int,
        rows_out: int,
        rows_rejected: int = 0,
        rows_erased: int = 0,
        drops: dict[str, int] | None = None,
        data_version: str | None = None,
        dataset: str | None = None,
        source: str | None = None,
        input_version: dict[str, Any] | None = None,
    ) -> None:
        with self.session() as s:
            # A retried step records once: replace the row of the same run and asset.
            s.execute(
                sa.delete(StageRun).where(
                    StageRun.run_id == run_id, StageRun.asset_key == asset_key
                )
            )
            s.add(
                StageRun(
                    run_id=run_id, asset_key=asset_key, stage=stage, dataset=dataset,
                    source=source, rows_in=rows_in, rows_kept=rows_kept, rows_out=rows_out,
                    rows_rejected=rows_rejected, rows_erased=rows_erased,
                    drops=dict(sorted((drops or {}).items())), data_version=data_version,
                    input_version=input_version, recorded_at=now(),
                )
            )

    def stage_runs(self, *, dataset: str | None = None, run_id: str | None = None,
                   source: str | None = None) -> list[StageRun]:
        with self.session() as s:
            q = sa.select(StageRun).order_by(StageRun.id)
            if dataset is not None:
                q = q.where(StageRun.dataset == dataset)
            if source is not None:
                q = q.where(StageRun.source == source)
            if run_id is not None:
                q = q.where(StageRun.run_id == run_id)
            return list(s.scalars(q))

    def latest_raw(self, source: str) -> StageRun | None:
        with self.session() as s:
            return s.scalars(
                sa.select(StageRun)
                .where(StageRun.source == source, StageRun.stage == "raw")
                .order_by(StageRun.id.desc())
                .limit(1)
            ).first()

    # ---------------------------------------------------------------- exports + lineage
    def record_export(
        self,
        *,
        run_id: str,
        dataset: str,
        config_hash: str,
        code_version: str,
        manifest: dict[str, Any],
        lineage: Iterable[dict[str, Any]],
        sources: Iterable[str],
        action: str = "materialize",
    ) -> DatasetVersion:
        """Store a dataset version, its export files and its lineage; write the audit entry.

        ``lineage`` rows: record_id, source, source_key, split, line. The dataset's previous
        lineage is replaced: the table describes what the current export files contain.
        """
        inputs = {}
        for src in sorted(set(sources)):
            raw = self.latest_raw(src)
            inputs[src] = None if raw is None else {
                "run_id": raw.run_id, "data_version": raw.data_version,
                "rows": raw.rows_out, "rows_erased": raw.rows_erased,
                **(raw.input_version or {}),
            }
        with self.session() as s:
            previous = s.scalars(
                sa.select(DatasetVersion)
                .where(DatasetVersion.dataset == dataset, DatasetVersion.run_id != run_id)
                .order_by(DatasetVersion.id.desc())
                .limit(1)
            ).first()
            s.execute(
                sa.delete(DatasetVersion).where(
                    DatasetVersion.dataset == dataset, DatasetVersion.run_id == run_id
                )
            )
            version = DatasetVersion(
                dataset=dataset, run_id=run_id, config_hash=config_hash,
                code_version=code_version, inputs=inputs,
                records=sum((manifest.get("splits") or {}).values()), created_at=now(),
            )
            version.exports = [
                ExportFile(
                    path=f["path"], format=f["format"], split=f["split"], records=f["records"],
                    bytes=f["bytes"], sha256=f["sha256"],
                )
                for f in manifest.get("files", [])
            ]
            s.add(version)
            s.flush()
            s.execute(sa.delete(LineageRecord).where(LineageRecord.dataset == dataset))
            batch: list[dict[str, Any]] = []
            for row in lineage:
                batch.append({**row, "dataset": dataset, "version_id": version.id})
                if len(batch) >= LINEAGE_BATCH:
                    s.execute(sa.insert(LineageRecord), batch)
                    batch = []
            if batch:
                s.execute(sa.insert(LineageRecord), batch)
            self.audit(
                s, action, run_id=run_id, dataset=dataset, config_hash=config_hash,
                previous_config_hash=previous.config_hash if previous else None,
                details=self._changes(s, dataset, run_id, version, previous),
            )
        return version

    def _changes(self, s: Session, dataset: str, run_id: str, version: DatasetVersion,
                 previous: DatasetVersion | None) -> dict[str, Any]:
        """What changed against the previous version: config, code, inputs, counts."""
        def kept_per_stage(rid: str) -> dict[str, int]:
            rows = s.scalars(
                sa.select(StageRun).where(StageRun.dataset == dataset, StageRun.run_id == rid)
            )
            return {r.stage: r.rows_out for r in rows}

        now_counts = kept_per_stage(run_id)
        if previous is None:
            return {"first_version": True, "records": version.records, "rows_out": now_counts}
        before = kept_per_stage(previous.run_id)
        return {
            "first_version": False,
            "previous_run_id": previous.run_id,
            "config_changed": previous.config_hash != version.config_hash,
            "code_changed": previous.code_version != version.code_version,
            "inputs_changed": sorted(
                src for src, facts in version.inputs.items()
                if (facts or {}).get("data_version")
                != ((previous.inputs or {}).get(src) or {}).get("data_version")
            ),
            "records": version.records,
            "records_delta": version.records - previous.records,
            "rows_out_delta": {
                st: now_counts.get(st, 0) - before.get(st, 0)
                for st in sorted(set(now_counts) | set(before))
            },
        }

    def versions(self, dataset: str | None = None, *, limit: int = 20) -> list[DatasetVersion]:
        with self.session() as s:
            q = (
                sa.select(DatasetVersion)
                .options(selectinload(DatasetVersion.exports))
                .order_by(DatasetVersion.id.desc())
                .limit(limit)
            )
            if dataset:
                q = q.where(DatasetVersion.dataset == dataset)
            return list(s.scalars(q))

    def lineage_of_record(self, record_id: str) -> list[dict[str, Any]]:
        """Where an exported record is: per dataset, its provenance and export file lines."""
        with self.session() as s:
            rows = s.scalars(
                sa.select(LineageRecord)
                .where(LineageRecord.record_id == record_id)
                .order_by(LineageRecord.dataset)
            ).all()
            return [self._with_files(s, r) for r in rows]

    def lineage_of_source(self, source: str, key: str | None = None) -> list[dict[str, Any]]:
        """Exported records of a source (optionally one key); pairs match either of their keys."""
        with self.session() as s:
            q = sa.select(LineageRecord).where(LineageRecord.source == source)
            if key is not None:
                esc = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                # preference pairs carry "<chosen key>><rejected key>" as their source_key
                q = q.where(
                    sa.or_(
                        LineageRecord.source_key == key,
                        LineageRecord.source_key.like(f"{esc}>%", escape="\\"),
                        LineageRecord.source_key.like(f"%>{esc}", escape="\\"),
                    )
                )
            rows = s.scalars(
                q.order_by(LineageRecord.dataset, LineageRecord.split, LineageRecord.line)
            ).all()
            return [self._with_files(s, r) for r in rows]

    def source_summary(self, source: str) -> list[dict[str, Any]]:
        """Per dataset: how many exported records come from a source, and the files."""
        with self.session() as s:
            rows = s.execute(
                sa.select(LineageRecord.dataset, LineageRecord.version_id,
                          LineageRecord.split, sa.func.count())
                .where(LineageRecord.source == source)
                .group_by(LineageRecord.dataset, LineageRecord.version_id, LineageRecord.split)
                .order_by(LineageRecord.dataset, LineageRecord.split)
            ).all()
            out = []
            for dataset, version_id, split, n in rows:
                files = s.scalars(
                    sa.select(ExportFile.path).where(
                        ExportFile.version_id == version_id, ExportFile.split == split
                    ).order_by(ExportFile.path)
                ).all()
                out.append({"dataset": dataset, "split": split, "records": n,
                            "files": list(files)})
            return out

    @staticmethod
    def _with_files(s: Session, r: LineageRecord) -> dict[str, Any]:
        files = s.scalars(
            sa.select(ExportFile.path)
            .where(ExportFile.version_id == r.version_id, ExportFile.split == r.split)
            .order_by(ExportFile.path)
        ).all()
        version = s.get(DatasetVersion, r.version_id)
        return {
            "dataset": r.dataset, "record_id": r.record_id, "source": r.source,
            "source_key": r.source_key, "split": r.split, "line": r.line,
            "run_id": version.run_id if version else None,
            "files": [f"{p}:{r.line}" for p in files],
        }

    # ---------------------------------------------------------------- erasure
    def request_erasure(
        self,
        source: str,
        *,
        keys: Iterable[str] = (),
        subject_hashes: Iterable[tuple[str, str]] = (),
        requester: str | None = None,
        reason: str = "",
        key_fingerprint: str | None = None,
    ) -> int:
        """Record an erasure request; ``subject_hashes`` are (scheme, digest), never values,
        and ``key_fingerprint`` identifies the key keyed digests were made with."""
        items = [ErasureItem(match="key", value=str(k)) for k in keys]
        items += [
            ErasureItem(match="subject", value=d, scheme=sc,
                        key_fingerprint=key_fingerprint if sc == "hmac-sha256" else None)
            for sc, d in subject_hashes
        ]
        if not items:
            raise ValueError("an erasure request needs at least one key or subject id")
        user, _ = who()
        with self.session() as s:
            req = ErasureRequest(
                source=source, requested_at=now(), requester=requester or user,
                reason=reason, status="pending", items=items,
            )
            s.add(req)
            s.flush()
            self.audit(
                s, "erasure_request", source=source,
                details={"request_id": req.id, "keys": sum(i.match == "key" for i in items),
                         "subjects": sum(i.match == "subject" for i in items)},
            )
            return req.id

    def erasure_requests(self, source: str | None = None) -> list[ErasureRequest]:
        with self.session() as s:
            q = (
                sa.select(ErasureRequest)
                .options(selectinload(ErasureRequest.items))
                .order_by(ErasureRequest.id)
            )
            if source:
                q = q.where(ErasureRequest.source == source)
            return list(s.scalars(q))

    def fulfil_erasures(
        self, source: str, run_id: str, erased: dict[int, int],
        held_elsewhere: Iterable[int] = (),
    ) -> list[int]:
        """Mark the pending requests applied by ``run_id`` fulfilled; returns their ids.

        Fulfilled requests keep being applied on every later run: the row is still in the
        source system until its owner deletes it there. ``held_elsewhere``: requests whose rows
        are still in another stored partition of a partitioned source stay pending.
        """
        done = []
        waiting = set(held_elsewhere)
        with self.session() as s:
            for req in s.scalars(
                sa.select(ErasureRequest).where(
                    ErasureRequest.source == source, ErasureRequest.status == "pending"
                )
            ):
                if req.id in waiting:
                    continue
                req.status = "fulfilled"
                req.fulfilled_run_id = run_id
                req.fulfilled_at = now()
                req.rows_erased = erased.get(req.id, 0)
                done.append(req.id)
            if done:
                self.audit(
                    s, "erasure_fulfilled", run_id=run_id, source=source,
                    details={"request_ids": done,
                             "rows_erased": {str(i): erased.get(i, 0) for i in done}},
                )
        return done

    def erasure_rules(self, source: str) -> list[Any]:
        """Every request's match items for ``source`` (pending and fulfilled alike)."""
        from ftdata_pipeline.governance.erasure import ErasureRule

        with self.session() as s:
            rows = s.execute(
                sa.select(ErasureItem.request_id, ErasureItem.match, ErasureItem.value,
                          ErasureItem.scheme, ErasureItem.key_fingerprint)
                .join(ErasureRequest)
                .where(ErasureRequest.source == source)
                .order_by(ErasureItem.id)
            ).all()
        return [ErasureRule(request_id=r, match=m, value=v, scheme=sc, fingerprint=fp)
                for r, m, v, sc, fp in rows]
