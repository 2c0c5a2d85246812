"""Which Dagster executor runs a job's steps, chosen per deployment from the environment.

The code location is the same on a laptop and for a team; only the deployment differs. With
``FTDATA_EXECUTOR`` unset, Dagster's default applies (steps in subprocesses of the run worker,
in-process for ``execute_in_process``). ``FTDATA_EXECUTOR=dask`` hands every step to a Dask
cluster through ``dagster-dask``: the scheduler at ``FTDATA_DASK_SCHEDULER``
(``tcp://host:8786``) when set, else a local cluster of ``FTDATA_DASK_WORKERS`` worker processes
(default 2) started for the run. ``FTDATA_EXECUTOR=celery`` queues every step as a task on the
Celery broker at ``FTDATA_CELERY_BROKER`` (``redis://host:6379/0``) through ``dagster-celery``;
workers started on any machine that shares the Dagster instance and ``FTDATA_HOME`` run them
(``celery -A dagster_celery.app -b <broker> --result-backend <backend> worker -Q dagster``),
with results on ``FTDATA_CELERY_BACKEND`` (default: the broker). Nothing here distributes work
itself: Dask or Celery does.

Dask runs its worker processes as daemons by default, and a daemon may not start the
redaction pool's processes; workers that redact large inputs need
``DASK_DISTRIBUTED__WORKER__DAEMON=False`` (or ``distributed.worker.daemon: false`` in the
cluster's Dask config). Without it the redactor falls back to analysis in the worker itself.

Not an executor, and independent of it: ``FTDATA_PII_DASK_SCHEDULER`` (``tcp://host:8786``)
fans the PII detection of ONE redacted step out over a Dask cluster (the chunks of its texts
become Dask tasks; ``stages/pii/cluster.py``), whichever executor runs the step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

EXECUTOR_ENV = "FTDATA_EXECUTOR"
DASK_SCHEDULER_ENV = "FTDATA_DASK_SCHEDULER"
DASK_WORKERS_ENV = "FTDATA_DASK_WORKERS"
CELERY_BROKER_ENV = "FTDATA_CELERY_BROKER"
CELERY_BACKEND_ENV = "FTDATA_CELERY_BACKEND"
EXECUTORS = ("default", "in_process", "multiprocess", "dask", "celery")


class ExecutorConfigError(ValueError):
    """An executor environment variable has a value that cannot be used; names the variable."""


def _dask_workers(environ: Mapping[str, str]) -> int:
    raw = environ.get(DASK_WORKERS_ENV, "2")
    try:
        workers = int(raw)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ExecutorConfigError(f"{DASK_WORKERS_ENV}={raw!r}: expected a positive integer")
    return workers


def executor_from_env(environ: Mapping[str, str] | None = None):
    """The ExecutorDefinition that ``FTDATA_EXECUTOR`` names, or None for Dagster's default."""
    env = os.environ if environ is None else environ
    name = (env.get(EXECUTOR_ENV) or "default").strip().lower()
    if name not in EXECUTORS:
        raise ExecutorConfigError(
            f"{EXECUTOR_ENV}={env.get(EXECUTOR_ENV)!r}: expected one of {', '.join(EXECUTORS)}"
        )
    if name == "default":
        return None
    if name == "in_process":
        from dagster import in_process_executor

        return in_process_executor
    if name == "multiprocess":
        from dagster import multiprocess_executor

        return multiprocess_executor
    if name == "celery":
        return _celery(env)
    from dagster_dask import dask_executor

    address = env.get(DASK_SCHEDULER_ENV)
    if address:
        cluster = {"existing": {"address": address}}
    else:
        cluster = {"local": {"n_workers": _dask_workers(env), "threads_per_worker": 1,
                             "processes": True}}
    return dask_executor.configured({"cluster": cluster}, name="dask")


def _celery(env: Mapping[str, str]):
    broker = (env.get(CELERY_BROKER_ENV) or "").strip()
    if not broker:
        raise ExecutorConfigError(
            f"{EXECUTOR_ENV}=celery needs {CELERY_BROKER_ENV}: the broker the Celery workers "
            "listen to, e.g. redis://host:6379/0"
        )
    from dagster_celery import celery_executor

    backend = (env.get(CELERY_BACKEND_ENV) or "").strip() or broker
    return celery_executor.configured({"broker": broker, "backend": backend}, name="celery")
