"""SQL sources fetch their result in batches (a server-side cursor where the driver has one)
and give the frame a single read gives, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import polars as pl
import pytest
import sqlalchemy as sa

from ftdata_pipeline.sources import sql
from ftdata_pipeline.sources.sql import SqlKind
from ftdata_pipeline_tests.postgres import create_database, drop_database
from ftdata_pipeline_tests.stages.test_raw import source

# ids with the typed columns null throughout the first batches: their types come from later
ROWS = [
    {"id": i, "n": None if i < 4 else i * 3, "x": None if i < 2 else i / 4,
     "t": None if i % 5 == 0 else f"ticket {i}", "never": None}
    for i in range(11)
]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'rows.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = create_database(server, "rows")
    try:
        yield f"{server}/{name}"
    finally:
        drop_database(server, name)


def _fill(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE rows (id INTEGER, n INTEGER, x DOUBLE PRECISION, t TEXT, never TEXT)"))
        conn.execute(sa.text("INSERT INTO rows VALUES (:id, :n, :x, :t, :never)"), ROWS)
    engine.dispose()


def test_result_is_fetched_in_batches_and_equals_one_read(db_url, tmp_path, monkeypatch):
    _fill(db_url)
    query = "SELECT * FROM rows ORDER BY id"
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        whole = pl.read_database(sa.text(query), conn, infer_schema_length=None)
    engine.dispose()

    batches = []
    real = pl.read_database

    def counting(*args, **kwargs):
        out = real(*args, **kwargs)
        if kwargs.get("iter_batches"):
            out = list(out)
            batches.extend(f.height for f in out)
        return out

    monkeypatch.setattr(sql, "SQL_BATCH", 3)
    monkeypatch.setattr(sql.pl, "read_database", counting)
    cfg = source(kind="sql", url=db_url, query=query, key="id", mapping={"text": "t"})
    got = SqlKind().read("rows", cfg, tmp_path).frame
    assert batches == [3, 3, 3, 2]
    assert got.equals(whole) and got.schema == whole.schema
    assert got["n"].dtype.is_integer() and got["x"].dtype == pl.Float64

    # no rows: the columns still come back
    empty = SqlKind().read("rows", cfg.model_copy(update={"query": "SELECT * FROM rows WHERE id < 0"}),
                           tmp_path).frame
    assert empty.columns == whole.columns and empty.is_empty()


def test_a_column_with_different_types_in_different_batches_reads_as_one_read(tmp_path, monkeypatch):
    """SQLite lets one column hold integers, reals and text: batches would infer different
    types, so the whole result is read once and typed over all rows."""
    url = f"sqlite:///{tmp_path / 'mixed.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE m (id INTEGER, v)"))
        conn.execute(sa.text("INSERT INTO m VALUES (:id, :v)"),
                     [{"id": 0, "v": 1}, {"id": 1, "v": "s"}, {"id": 2, "v": 2.0}, {"id": 3, "v": 3}])
        whole = pl.read_database(sa.text("SELECT * FROM m ORDER BY id"), conn,
                                 infer_schema_length=None)
    engine.dispose()
    monkeypatch.setattr(sql, "SQL_BATCH", 2)
    cfg = source(kind="sql", url=url, query="SELECT * FROM m ORDER BY id", key="id",
                 mapping={"text": "v"})
    got = SqlKind().read("m", cfg, tmp_path).frame
    assert got.equals(whole) and got.schema == whole.schema
