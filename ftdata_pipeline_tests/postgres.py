"""A throwaway PostgreSQL server for tests: the catalog backends and the team Dagster instance.

A fresh cluster (initdb into a temp dir, pg_ctl on a free localhost port, trust auth, fsync
off). PostgreSQL refuses to run as root, so as root the cluster is created and started as the
``postgres`` OS user (Debian's package creates it) via runuser. Without the binaries the tests
that need it are skipped -- unless CI is set, where they fail. The ``postgres_server`` fixture
(in the package's conftest.py) yields the base URL of one server per test session.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(
        p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def throwaway_postgres():
    """Base URL (no database) of a PostgreSQL server that lives for the test session."""
    bindir = _pg_bindir()
    if bindir is None or not (bindir / "pg_ctl").exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI is set but the PostgreSQL server binaries (initdb, pg_ctl) are "
                        "missing: install Debian's postgresql package (.ci/run does)")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed; "
                    "`apt-get install postgresql` to run the PostgreSQL catalog tests")
    base = Path(tempfile.mkdtemp(prefix="ftdata-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        pg = pwd.getpwnam("postgres")
        os.chown(base, pg.pw_uid, pg.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
        "-E", "UTF8", "--no-sync")
    try:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w",
            "-t", "60", "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off", "start")
    except subprocess.CalledProcessError:
        log = base / "server.log"
        raise RuntimeError("PostgreSQL did not start: "
                           + (log.read_text()[-2000:] if log.exists() else "no log")) from None
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "-w", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)




def create_database(server: str, prefix: str) -> str:
    """A new empty database on ``server``; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name


def drop_database(server: str, name: str) -> None:
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
