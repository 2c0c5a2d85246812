"""A run whose worker process was killed is marked failed by run monitoring."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from dagster import DagsterInstance, job, op
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from ftdata_pipeline.orchestration.run_launcher import MonitoredRunLauncher

ROOT = Path(__file__).resolve().parents[2]


@op
def noop() -> None:
    return None


@job
def tiny_job():
    noop()


def test_instance_settings_turn_monitoring_on_with_the_health_checking_launcher(tmp_path):
    settings = yaml.safe_load((ROOT / "configs" / "dagster.yaml").read_text())
    assert settings["run_monitoring"]["enabled"] is True
    assert settings["telemetry"] == {"enabled": False} and settings["nux"] == {"enabled": False}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(settings))
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_launcher, MonitoredRunLauncher)
        assert instance.run_monitoring_enabled


def test_killed_run_worker_is_detected_and_the_run_marked_failed(tmp_path):
    settings = yaml.safe_load((ROOT / "configs" / "dagster.yaml").read_text())
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(settings))
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        run = instance.create_run_for_job(tiny_job)
        launcher = instance.run_launcher
        # nothing recorded yet: not a failure (monitoring fails anything but RUNNING/SUCCESS)
        assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING

        # a stand-in worker process records its pid the way Dagster's run worker does
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        try:
            time.sleep(0.5)
            instance.report_engine_event(
                f"Started process for run (pid: {worker.pid}).", run,
                EngineEventData.in_process(worker.pid),
            )
            instance.report_dagster_event(
                DagsterEvent(event_type_value=DagsterEventType.RUN_START.value,
                             job_name=run.job_name),
                run_id=run.run_id,
            )
            run = instance.get_run_by_id(run.run_id)
            assert run.status == DagsterRunStatus.STARTED
            assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        health = launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.FAILED and str(worker.pid) in health.msg

        record = instance.get_run_records(filters=None)[0]
        monitor_started_run(instance, None, record, logging.getLogger("test"))
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
