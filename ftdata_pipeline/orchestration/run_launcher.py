"""Dagster's default run launcher, plus a health check so run monitoring can fail dead runs.

``DefaultRunLauncher`` starts each run worker as a local process but cannot tell the daemon's
run monitoring whether that process still lives: a run whose worker was killed (out of
memory, ``kill -9``, a reboot) would stay STARTED for ever. The run worker records its pid in
the run's first engine event; this launcher checks that the process is still there (and is the
same process: started before that event), and monitoring marks the run failed when it is not.
Configured in ``configs/dagster.yaml`` (``run_launcher``); needs ``run_monitoring.enabled``.
"""

from __future__ import annotations

import os
import re

from dagster import DagsterEventType
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._core.storage.dagster_run import DagsterRun

_STARTED = re.compile(r"^Started process for run \(pid: (\d+)\)")


def _proc_start_time(pid: int) -> float | None:
    """Wall-clock start time of a live (not zombie) process, from /proc; None if gone."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime")
        )
    except (FileNotFoundError, ProcessLookupError, StopIteration, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


class MonitoredRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose run workers' health run monitoring can check."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def _worker(self, run: DagsterRun) -> tuple[int, float] | None:
        """(pid, time of the event recording it) of the run's worker process."""
        records = self._instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
        for record in records:
            message = record.dagster_event.message if record.dagster_event else None
            match = _STARTED.match(message or record.user_message or "")
            if match:
                return int(match.group(1)), record.timestamp
        return None

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        worker = self._worker(run)
        if worker is None:
            # No pid recorded: nothing to check (monitoring would fail an UNKNOWN run).
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker pid recorded")
        pid, recorded_at = worker
        started = _proc_start_time(pid)
        # a pid taken by a newer process after the worker died is not the worker
        if started is None or started > recorded_at + 2:
            return CheckRunHealthResult(
                WorkerStatus.FAILED, f"run worker process {pid} is no longer running"
            )
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker process {pid} is running")
