"""Catalog backends for the governance tests: SQLite, and a throwaway PostgreSQL server.

The PostgreSQL server is the session's ``postgres_server`` (ftdata_pipeline_tests/postgres.py):
skipped without the binaries, unless CI is set, where it fails.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def catalog_url(request, tmp_path):
    """An empty catalog database on each backend: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"catalog_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
