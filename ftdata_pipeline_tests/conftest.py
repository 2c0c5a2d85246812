"""Shared fixtures: the whole demo graph materialized once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dagster import DagsterInstance

from ftdata_pipeline.config.loader import load_project
from ftdata_pipeline.definitions import build_definitions
from ftdata_pipeline.orchestration.automation import ALL_JOB
from ftdata_pipeline_tests.postgres import throwaway_postgres


def run_demo(home: Path, instance: DagsterInstance):
    defs = build_definitions(home=str(home))
    return defs.resolve_job_def(ALL_JOB).execute_in_process(
        instance=instance, raise_on_error=False
    )


@pytest.fixture(autouse=True)
def _restore_environment():
    """The CLI sets process environment on purpose (``--config-dir`` must reach the processes a
    run starts); a test that calls it in-process must not leak that into the tests after it."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def demo_instance_dir(tmp_path_factory) -> Path:
    """DAGSTER_HOME of a persistent (SQLite) instance that the demo run below writes to."""
    path = tmp_path_factory.mktemp("dagster_home")
    (path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return path


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, demo_instance_dir):
    """(FTDATA_HOME, run result) of materializing every demo asset into temporary folders."""
    home = tmp_path_factory.mktemp("ftdata_home")
    with DagsterInstance.from_config(str(demo_instance_dir)) as instance:
        result = run_demo(home, instance)
    return home, result


@pytest.fixture(scope="session")
def project():
    return load_project()


@pytest.fixture(scope="session")
def postgres_server():
    """Base URL (no database) of a throwaway PostgreSQL server that lives for the session."""
    yield from throwaway_postgres()
