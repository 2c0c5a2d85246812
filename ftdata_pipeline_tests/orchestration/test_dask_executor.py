"""A dataset job on a local Dask cluster (dagster-dask) writes the same exports as in-process."""

from __future__ import annotations

import os

import pytest
from dagster import DagsterEventType, DagsterInstance, execute_job, reconstructable

from ftdata_pipeline.definitions import build_definitions
from ftdata_pipeline.orchestration import executors
from ftdata_pipeline_tests.orchestration.small_dataset import (
    JOB,
    dataset_job,
    export_files,
    write_small_config,
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
    cfg = write_small_config(tmp_path / "project")
    monkeypatch.setenv("FTDATA_CONFIG_DIR", str(cfg))
    monkeypatch.delenv("FTDATA_CATALOG_URL", raising=False)
    monkeypatch.delenv("FTDATA_EXECUTOR", raising=False)

    local_home = tmp_path / "in_process"
    result = build_definitions(home=str(local_home)).resolve_job_def(JOB).execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    expected = export_files(local_home)
    assert any(name.endswith(".jsonl") for name in expected), expected.keys()

    dask_home = tmp_path / "dask"
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
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
