"""Catalog backends for the governance tests: SQLite, and a throwaway PostgreSQL server.

The PostgreSQL server is the session's ``postgres_server`` (ftdata_pipeline_tests/postgres.py):
skipped without the binaries, unless CI is set, where it fails.
"""

from __future__ import annotations

import pytest

from ftdata_pipeline_tests.postgres import create_database, drop_database

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def catalog_url(request, tmp_path):
    """An empty catalog database on each backend: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = create_database(server, "catalog")
    try:
        yield f"{server}/{name}"
    finally:
        drop_database(server, name)
