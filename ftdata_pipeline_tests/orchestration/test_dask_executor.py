"""A dataset job on a local Dask cluster (dagster-dask) writes the same exports as in-process."""

from __future__ import annotations

import os

import pytest
from dagster import DagsterEventType, DagsterInstance, execute_job, reconstructable

from ftdata_pipeline.orchestration import executors
from ftdata_pipeline_tests.orchestration.small_dataset import (
    dataset_job,
    export_files,
    in_process_baseline,
)


def test_executor_from_env_choices():
    assert executors.executor_from_env({}) is None
    assert executors.executor_from_env({"FTDATA_EXECUTOR": "in_process"}).name == "in_process"
    dask = executors.executor_from_env({"FTDATA_EXECUTOR": "dask",
                                        "FTDATA_DASK_SCHEDULER": "tcp://10.0.0.5:8786"})
    assert dask.name == "dask"


@pytest.mark.parametrize("env, named", [
    ({"FTDATA_EXECUTOR": "ray"}, "FTDATA_EXECUTOR"),
    ({"FTDATA_EXECUTOR": "dask", "FTDATA_DASK_WORKERS": "zero"}, "FTDATA_DASK_WORKERS"),
])
def test_bad_executor_env_names_the_variable(env, named):
    with pytest.raises(executors.ExecutorConfigError, match=named):
        executors.executor_from_env(env)


@pytest.mark.integration
def test_dask_run_exports_byte_identical_to_in_process(tmp_path, monkeypatch):
    _, expected, dagster_home = in_process_baseline(tmp_path, monkeypatch)

    dask_home = tmp_path / "dask"
    monkeypatch.setenv("FTDATA_HOME", str(dask_home))
    monkeypatch.setenv("FTDATA_EXECUTOR", "dask")
    monkeypatch.setenv("FTDATA_DASK_WORKERS", "2")
    monkeypatch.setenv("DASK_DISTRIBUTED__WORKER__DAEMON", "False")
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        with execute_job(reconstructable(dataset_job), instance=instance) as run:
            assert run.success, [e.message for e in run.all_events if e.is_failure]
            starts = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
    step_pids = {rec.dagster_event.pid for rec in starts}
    # The steps ran in the Dask cluster's two worker processes: not in this process, and not
    # one process per step as Dagster's own multiprocess executor would do.
    assert len(starts) > 2
    assert os.getpid() not in step_pids
    assert 1 <= len(step_pids) <= 2, step_pids

    assert export_files(dask_home) == expected
