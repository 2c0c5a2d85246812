"""A dataset job whose steps are Celery tasks (dagster-celery, a real Redis broker, a real
Celery worker in its own process tree) writes the same exports as in-process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from dagster import DagsterEventType, DagsterInstance

from ftdata_pipeline.config.loader import project_root
from ftdata_pipeline.orchestration import executors
from ftdata_pipeline_tests.orchestration.small_dataset import (
    export_files,
    in_process_baseline,
)


def test_celery_needs_a_broker_and_names_the_variable():
    with pytest.raises(executors.ExecutorConfigError, match="FTDATA_CELERY_BROKER"):
        executors.executor_from_env({"FTDATA_EXECUTOR": "celery"})
    celery = executors.executor_from_env({"FTDATA_EXECUTOR": "celery",
                                          "FTDATA_CELERY_BROKER": "redis://10.0.0.5:6379/0"})
    assert celery.name == "celery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(what: str, ready, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if ready():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def redis_url(tmp_path):
    """A throwaway Redis server on a free localhost port (Debian's redis-server package)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI is set but redis-server is missing: install Debian's redis-server "
                        "package (.ci/run does)")
        pytest.skip("redis-server not installed; `apt-get install redis-server` to run the "
                    "Celery executor test")
    import redis

    port = _free_port()
    log = tmp_path / "redis.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=out, stderr=subprocess.STDOUT)
    client = redis.Redis(host="127.0.0.1", port=port)

    def pong() -> bool:
        try:
            return bool(client.ping())
        except redis.exceptions.ConnectionError:
            return False

    try:
        _wait_for("redis-server", pong, proc, log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


_RUN = """
from dagster import DagsterInstance, execute_job, reconstructable
from ftdata_pipeline_tests.orchestration.small_dataset import dataset_job
with DagsterInstance.get() as instance:
    with execute_job(reconstructable(dataset_job), instance=instance) as result:
        raise SystemExit(0 if result.success else 1)
"""


@pytest.mark.integration
def test_celery_run_exports_byte_identical_to_in_process(tmp_path, monkeypatch, redis_url):
    cfg, expected, dagster_home = in_process_baseline(tmp_path, monkeypatch)

    celery_home = tmp_path / "celery"
    env = {**os.environ, "FTDATA_CONFIG_DIR": str(cfg), "FTDATA_HOME": str(celery_home),
           "DAGSTER_HOME": str(dagster_home), "FTDATA_EXECUTOR": "celery",
           "FTDATA_CELERY_BROKER": redis_url,
           "PYTHONPATH": os.pathsep.join([str(project_root()), os.environ.get("PYTHONPATH", "")])}
    for key in ("FTDATA_HOME", "DAGSTER_HOME", "FTDATA_EXECUTOR", "FTDATA_CELERY_BROKER"):
        monkeypatch.setenv(key, env[key])
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "-b", redis_url,
             "--result-backend", redis_url, "worker", "-Q", "dagster", "--concurrency", "2",
             "--prefetch-multiplier", "1", "--loglevel", "INFO", "-n", f"ftdata-{os.getpid()}@%h"],
            env=env, cwd=project_root(), stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for("celery worker", lambda: " ready." in log.read_text(), worker, log)
        # The run (and with it the Celery client: its result consumer keeps reconnecting to the
        # broker after the test stops it) lives in its own process, as a launched run would.
        run = subprocess.run([sys.executable, "-c", _RUN], env=env, cwd=project_root(),
                             capture_output=True, text=True, timeout=900)
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            records = instance.get_run_records()
            assert run.returncode == 0 and len(records) == 1, run.stderr[-3000:]
            assert records[0].dagster_run.is_success, (run.stderr[-3000:],
                                                       log.read_text()[-3000:])
            starts = instance.all_logs(records[0].dagster_run.run_id,
                                       of_type=DagsterEventType.STEP_START)
        pool = {p.pid for p in psutil.Process(worker.pid).children(recursive=True)}
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    step_pids = {rec.dagster_event.pid for rec in starts}
    # Every step ran in the Celery worker's pool processes, none in the run's own process.
    assert len(starts) > 2
    assert step_pids and step_pids <= pool, (step_pids, pool)

    assert export_files(celery_home) == expected
