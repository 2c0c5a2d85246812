"""Alembic migrations of the catalog database (run in code: see governance.catalog)."""
