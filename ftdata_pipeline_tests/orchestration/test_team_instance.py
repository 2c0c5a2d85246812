"""The team instance (configs/dagster-team.yaml) on a real PostgreSQL server, end to end.

A run submitted with ``dagster job launch`` waits in the queue (QueuedRunCoordinator) with its
dataset tag, stored in PostgreSQL; ``dagster-daemon run`` then dequeues and launches it, and
the run writes the dataset's exports.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.run_coordinator import QueuedRunCoordinator

from ftdata_pipeline.config.loader import project_root
from ftdata_pipeline.orchestration.automation import DATASET_TAG
from ftdata_pipeline_tests.orchestration.small_dataset import (
    DATASET,
    JOB,
    export_files,
    write_small_config,
)
from ftdata_pipeline_tests.postgres import create_database, drop_database

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
DONE = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


@pytest.fixture
def team_home(postgres_server, tmp_path, monkeypatch):
    """DAGSTER_HOME holding configs/dagster-team.yaml as is, and its PostgreSQL database."""
    db = create_database(postgres_server, "dagster")
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3, whose server-side binding breaks
    # dagster-postgres' "NOTIFY run_events, %(id)s": name the psycopg2 driver explicitly.
    url = postgres_server.replace("postgresql+psycopg://", "postgresql+psycopg2://") + f"/{db}"
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(project_root() / "configs" / "dagster-team.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", url)
    try:
        yield home, url
    finally:
        drop_database(postgres_server, db)


def test_team_instance_queues_runs_in_postgres_and_the_daemon_runs_them(team_home, tmp_path):
    home, url = team_home
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)

    cfg = write_small_config(tmp_path / "project", n=150)
    ftdata_home = tmp_path / "ftdata_home"
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": url,
           "FTDATA_CONFIG_DIR": str(cfg), "FTDATA_HOME": str(ftdata_home),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(project_root()),
                                                       os.environ.get("PYTHONPATH")]))}
    for var in ("FTDATA_EXECUTOR", "FTDATA_CATALOG_URL"):
        env.pop(var, None)
    code = ["-m", "ftdata_pipeline.definitions"]
    launched = subprocess.run([str(BIN / "dagster"), "job", "launch", *code, "-j", JOB],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert launched.returncode == 0, launched.stderr[-3000:]

    # Queued, not started: nothing dequeues without the daemon. The row is in PostgreSQL.
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT run_id, status FROM runs")).all()
    engine.dispose()
    assert [status for _, status in rows] == ["QUEUED"]
    run_id = rows[0][0]
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_run_by_id(run_id).tags[DATASET_TAG] == DATASET

    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", *code], env=env,
                              cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 900
            status = instance.get_run_by_id(run_id).status
            while status not in DONE and time.monotonic() < deadline:
                time.sleep(2)
                status = instance.get_run_by_id(run_id).status
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
    assert status == DagsterRunStatus.SUCCESS
    assert any(name.endswith(".jsonl") for name in export_files(ftdata_home))
