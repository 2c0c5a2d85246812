"""Alembic migrations: an empty database upgrades to head with every table; round trips."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ftdata_pipeline.governance import catalog as cat
from ftdata_pipeline.governance.models import Base


def _tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_creates_every_table_and_round_trips(catalog_url):
    engine = cat.make_engine(catalog_url)
    try:
        assert _tables(engine) == set()
        assert cat.current_revision(engine) is None
        cat.upgrade(engine)
        assert _tables(engine) == set(Base.metadata.tables)
        assert cat.current_revision(engine) == cat.head_revision()
        # the migrations build exactly what the models describe
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        cat.downgrade(engine, "base")
        assert _tables(engine) == set()
        assert cat.current_revision(engine) is None
        cat.upgrade(engine)
        assert _tables(engine) == set(Base.metadata.tables)
    finally:
        engine.dispose()


def test_catalog_upgrades_on_first_use_and_cli_upgrade(catalog_url, capsys):
    from ftdata_pipeline.cli import main

    assert main(["catalog", "upgrade", "--catalog-url", catalog_url]) == 0
    assert "-> " + cat.head_revision() in capsys.readouterr().out
    catalog = cat.Catalog(catalog_url)
    try:
        assert cat.current_revision(catalog.engine) == cat.head_revision()
        assert {"lineage", "erasure_requests", "audit_log"} <= _tables(catalog.engine)
    finally:
        catalog.dispose()


def test_pipeline_upgrades_fresh_database(catalog_url):
    # a Catalog on a fresh database (what the pipeline's resource opens) migrates it
    catalog = cat.Catalog(catalog_url)
    try:
        assert _tables(catalog.engine) == set(Base.metadata.tables)
    finally:
        catalog.dispose()
