"""``ftdata materialize``: runs with the code location's origin, one progress line per stage."""

from __future__ import annotations

import subprocess
import sys

import pytest
from dagster import DagsterInstance

from ftdata_pipeline.orchestration.headless import SOURCE_TAG, workspace_location
from ftdata_pipeline_tests.orchestration import ui_harness as ui

pytestmark = pytest.mark.integration


def test_workspace_location_is_read_from_workspace_yaml():
    location = workspace_location()
    assert (location.name, location.module) == (ui.LOCATION, "ftdata_pipeline.definitions")


def test_materialize_prints_progress_and_makes_a_run_of_the_code_location(tmp_path):
    configs = ui.write_project(tmp_path / "project", tickets=200)
    home = ui.write_instance(tmp_path / "dagster_home")
    env = {
        **ui.os.environ,
        "DAGSTER_HOME": str(home),
        "FTDATA_HOME": str(tmp_path / "data"),
        "FTDATA_PROJECT_ROOT": str(configs.parent),
        "PYTHONPATH": str(ui.ROOT),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "ftdata_pipeline.cli", "--config-dir", str(configs),
         "materialize", "--dataset", ui.DATASET],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-2000:] + proc.stderr[-3000:]
    lines = out.splitlines()
    # one line per stage with its counts, no Dagster DEBUG stream
    for stage in ("curated", "redacted", "labeled", "split"):
        (line,) = [x for x in lines if x.strip().startswith(f"{ui.DATASET}/{stage} ")]
        assert " in " in line and " kept " in line and " rejected " in line
    assert any(x.strip().startswith("raw/support_tickets ") and "rows" in x for x in lines)
    assert any(x.strip().startswith(f"{ui.DATASET}/exports ") and "files in" in x for x in lines)
    assert "DEBUG" not in out + proc.stderr and len(lines) < 40
    assert lines[-3].startswith("exports: ") and lines[-2].startswith("cards: ")
    assert lines[-1].startswith("UI:") and "make ui" in lines[-1]

    with DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        origin = run.remote_job_origin
        assert origin is not None and origin.job_name == f"{ui.DATASET}_job"
        assert origin.repository_origin.code_location_origin.location_name == ui.LOCATION
        assert origin.repository_origin.repository_name == ui.REPOSITORY
        assert SOURCE_TAG in run.tags and run.is_success
        # the CLI process is the run worker, recorded for run monitoring
        assert any(
            (r.dagster_event.message or "").startswith("Started process for run (pid: ")
            for r in instance.all_logs(run.run_id) if r.dagster_event is not None
        )

    # the instance (run and event databases, compute logs) is owner-only
    modes = {p: p.stat().st_mode & 0o777 for p in [home, *home.rglob("*")]}
    assert any(p.suffix == ".db" for p in modes)
    loose = {str(p): oct(m) for p, m in modes.items() if m != (0o700 if p.is_dir() else 0o600)}
    assert not loose


def _materialize(tmp_path, configs, name: str, *extra: str) -> tuple[subprocess.CompletedProcess,
                                                                     object, object]:
    home = ui.write_instance(tmp_path / f"dagster_home_{name}")
    data = tmp_path / f"data_{name}"
    env = {**ui.os.environ, "DAGSTER_HOME": str(home), "FTDATA_HOME": str(data),
           "FTDATA_PROJECT_ROOT": str(configs.parent), "PYTHONPATH": str(ui.ROOT)}
    env.pop("FTDATA_EXECUTOR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "ftdata_pipeline.cli", "--config-dir", str(configs),
         "materialize", "--dataset", ui.DATASET, *extra],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc, home, data


def _step_pids(home) -> set[int]:
    with DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        return {r.dagster_event.pid for r in instance.all_logs(run.run_id)
                if r.dagster_event is not None and r.dagster_event.event_type_value == "STEP_START"}


def test_step_processes_run_each_step_in_its_own_process_with_the_same_exports(tmp_path):
    """``--step-processes``: every step in a process of its own (Dagster's multiprocess
    executor, as runs launched from the UI), so what a step allocated goes back to the
    system when it ends; the exports are byte for byte those of the in-process run."""
    configs = ui.write_project(tmp_path / "project", tickets=120)
    _, one_home, one_data = _materialize(tmp_path, configs, "one")
    proc, many_home, many_data = _materialize(tmp_path, configs, "many", "--step-processes")
    assert any(x.strip().startswith(f"{ui.DATASET}/split ") for x in proc.stdout.splitlines())

    one_pids, many_pids = _step_pids(one_home), _step_pids(many_home)
    assert len(one_pids) == 1  # every step in the run worker
    assert len(many_pids) >= 6  # a process per step (raw, curated, ..., exports)

    def exports(data) -> dict[str, bytes]:
        files = sorted(p for p in data.rglob("exports/**/*") if p.is_file())
        assert files
        return {str(p.relative_to(data)): p.read_bytes() for p in files}

    assert exports(one_data) == exports(many_data)


def test_step_processes_need_a_persistent_instance(tmp_path, monkeypatch, capsys):
    from ftdata_pipeline.cli import main

    configs = ui.write_project(tmp_path / "project", tickets=20)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(configs.parent))
    monkeypatch.setenv("FTDATA_HOME", str(tmp_path / "data"))
    code = main(["--config-dir", str(configs), "materialize", "--dataset", ui.DATASET,
                 "--step-processes"])
    assert code == 2
    assert "--step-processes needs DAGSTER_HOME" in capsys.readouterr().err


def test_a_deployment_executor_gets_no_headless_executor_config():
    from ftdata_pipeline.orchestration.headless import headless_run_config

    assert headless_run_config(False, {})["execution"] == {"config": {"in_process": {}}}
    assert headless_run_config(True, {})["execution"] == {"config": {"multiprocess": {}}}
    assert "execution" not in headless_run_config(False, {"FTDATA_EXECUTOR": "dask"})
    assert "execution" not in headless_run_config(True, {"FTDATA_EXECUTOR": "multiprocess"})
