"""SQL sources: a query run through SQLAlchemy, the URL from the config or the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl

from ftdata_pipeline.governance.versions import frame_hash
from ftdata_pipeline.sources.base import RawRead, SourceError, register

SQL_BATCH = 50_000  # result rows fetched, and held as Python values, at one time


def _fetch(conn: Any, query: Any) -> pl.DataFrame:
    """The query's result, fetched ``SQL_BATCH`` rows at a time through a server-side cursor
    where the driver has one: only one batch of rows is Python values at once (a whole
    result as Python rows takes several times its size). It is the frame one read gives:
    batches are joined with the types inferred over all rows (a column null throughout one
    batch takes the others' type)."""
    streamed = conn.execution_options(stream_results=True)
    frames = list(pl.read_database(query, streamed, iter_batches=True, batch_size=SQL_BATCH,
                                   infer_schema_length=None))
    if len(frames) == 1:
        return frames[0]
    if frames and all(len({f.schema[c] for f in frames} - {pl.Null}) <= 1
                      for c in frames[0].columns):
        return pl.concat(frames, how="vertical_relaxed")
    # No row (no batch tells the columns), or one column with different types in different
    # batches (SQLite lets a column mix them): one read infers them over every row.
    return pl.read_database(query, conn, infer_schema_length=None)


class SqlKind:
    name = "sql"

    def url(self, name: str, cfg: Any, root: Path):
        import sqlalchemy as sa
        from sqlalchemy.exc import ArgumentError

        env_value = os.environ.get(cfg.url_env) if cfg.url_env else None
        raw_url = env_value or cfg.url
        origin = f"environment variable {cfg.url_env}" if env_value else "url"
        if not raw_url:
            raise SourceError(
                f"source {name!r}: environment variable {cfg.url_env} is not set and no url is given"
            )
        try:
            url = sa.engine.make_url(raw_url)
        except ArgumentError:
            raise SourceError(f"source {name!r}: {origin} is not a valid SQLAlchemy URL") from None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            db = Path(url.database)
            if not db.is_absolute():
                db = Path(root) / db
                url = url.set(database=str(db))
            # SQLite would silently create an empty database for a missing file.
            if not db.is_file():
                raise SourceError(f"source {name!r}: SQLite database not found: {db}")
        return url

    def read(self, name: str, cfg: Any, root: Path, *, limit: int | None = None) -> RawRead:
        import sqlalchemy as sa
        from sqlalchemy.exc import SQLAlchemyError

        url = self.url(name, cfg, root)
        shown = url.render_as_string(hide_password=True)
        query = cfg.query
        if limit is not None:
            # validate reads a sample: the user's query as a subquery, so ORDER BY etc. still hold
            query = f"SELECT * FROM ({cfg.query}) AS ftdata_sample LIMIT {int(limit)}"
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                return RawRead(_fetch(conn, sa.text(query)))
        except SQLAlchemyError as exc:
            # The driver's own message ("no such table: x") is about the query, not the data.
            reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
            raise SourceError(f"source {name!r}: query failed on {shown}: {reason}") from None
        finally:
            engine.dispose()

    def fingerprint(self, cfg: Any, root: Path) -> str | None:
        return None  # only the result tells

    def input_version(self, cfg: Any, root: Path, df: pl.DataFrame) -> dict[str, Any]:
        # No file to hash: the mapped result itself identifies what was read.
        return {"kind": "sql", "rows_read": df.height, "content_sha256": frame_hash(df)}

    def asset_kinds(self, cfg: Any) -> set[str]:
        return {"sql"}

    def location(self, cfg: Any) -> str:
        return f"${cfg.url_env}" if cfg.url_env else (cfg.url or "")


register(SqlKind())
