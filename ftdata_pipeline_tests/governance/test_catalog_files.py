"""The catalog's files are owner-only, and a fresh catalog opened by several processes at once
is migrated once, without a race."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from ftdata_pipeline.governance import catalog as cat

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_catalog_files_are_0600_and_new_directories_0700(tmp_path):
    old = os.umask(0o022)  # the usual umask, which would give 0644 files and 0755 directories
    try:
        db = tmp_path / "home" / "nested" / "catalog.db"
        catalog = cat.Catalog(f"sqlite:///{db}")
        catalog.log("probe")
        with catalog.engine.connect() as conn:  # WAL mode: -wal and -shm exist while open
            conn.execute(sa.text("SELECT 1"))
            for name in ("catalog.db", "catalog.db-wal", "catalog.db-shm"):
                assert _mode(db.parent / name) == 0o600, name
        assert _mode(db.parent) == 0o700 and _mode(db.parent.parent) == 0o700
        catalog.dispose()
    finally:
        os.umask(old)


def test_an_existing_world_readable_catalog_is_tightened(tmp_path):
    db = tmp_path / "catalog.db"
    db.touch()
    db.chmod(0o644)
    cat.make_engine(f"sqlite:///{db}").dispose()
    assert _mode(db) == 0o600


CHILD = r"""
import sys, time
from ftdata_pipeline.governance.catalog import Catalog
url, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
catalog = Catalog(url)
catalog.log("concurrent-open")
catalog.dispose()
print("ok")
"""


def test_concurrent_first_use_of_a_fresh_catalog_does_not_race(catalog_url):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    start = time.time() + 4  # all children start migrating at the same instant
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, catalog_url, str(start)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-800:] for _, err in results]
    engine = cat.make_engine(catalog_url)
    try:
        assert cat.current_revision(engine) == cat.head_revision()
        with engine.connect() as conn:
            n = conn.execute(sa.text(
                "SELECT count(*) FROM audit_log WHERE action = 'concurrent-open'")).scalar()
        assert n == 4
    finally:
        engine.dispose()
