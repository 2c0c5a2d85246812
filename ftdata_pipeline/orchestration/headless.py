"""Headless runs that belong to the code location, as if launched from the UI.

``ftdata materialize`` (and so ``make demo``) creates each run with the same origin as a run
launched from the webserver: the workspace's code location (``workspace.yaml``), repository and
job. Such runs appear in the UI's Overview and Runs with their job and tags and can be
re-executed from there. ``execute_in_process`` would make runs without any origin.

The run itself executes in this process, from the reconstructable job of
``ftdata_pipeline.definitions``. Its steps run in this process too (the in-process executor:
no process start per step), or each in a process of its own as in a run launched from the UI
(``step_processes``, Dagster's multiprocess executor). On large datasets the latter keeps the
peak down: what a step allocated goes back to the system when its process ends, where one
process running every step keeps its heap at the high-water mark of the steps before.
A deployment executor (``FTDATA_EXECUTOR``: Dask, Celery, ...) always runs the steps itself.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from dagster import DagsterInstance
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.events import EngineEventData
from dagster._core.execution.api import execute_run_iterator
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from ftdata_pipeline.config.loader import project_root

# Definitions(...) objects load as a repository with this name.
REPOSITORY_NAME = "__repository__"
DEFS_ATTRIBUTE = "defs"
# Headless runs print progress lines instead of Dagster's DEBUG event stream (the events are all
# in the instance, for the UI). A re-execution from the UI keeps the run's config.
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SOURCE_TAG = "ftdata/launched_by"


@dataclass(frozen=True)
class CodeLocation:
    """The code location entry of ``workspace.yaml`` (a ``python_module`` entry)."""

    name: str
    module: str
    working_directory: str

    def loadable_target(self) -> LoadableTargetOrigin:
        return LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name=self.module,
            working_directory=self.working_directory,
        )

    def job_origin(self, job_name: str) -> RemoteJobOrigin:
        repo = RemoteRepositoryOrigin(
            code_location_origin=ManagedGrpcPythonEnvCodeLocationOrigin(
                loadable_target_origin=self.loadable_target(), location_name=self.name
            ),
            repository_name=REPOSITORY_NAME,
        )
        return RemoteJobOrigin(repository_origin=repo, job_name=job_name)


def workspace_location(workspace: Path | None = None) -> CodeLocation:
    """The code location that ``workspace.yaml`` (default: the project's) loads."""
    workspace = workspace or project_root() / "workspace.yaml"
    entries = (yaml.safe_load(workspace.read_text("utf-8")) or {}).get("load_from") or []
    for entry in entries:
        target = entry.get("python_module") if isinstance(entry, dict) else None
        if isinstance(target, dict) and target.get("module_name"):
            return CodeLocation(
                name=target.get("location_name") or target["module_name"],
                module=target["module_name"],
                working_directory=str(
                    Path(target.get("working_directory") or workspace.parent).resolve()
                ),
            )
        if isinstance(target, str):
            return CodeLocation(target, target, str(workspace.parent.resolve()))
    raise ValueError(f"{workspace}: load_from: no python_module entry")


def headless_run_config(step_processes: bool = False, environ=None) -> dict:
    """Run config of a headless run: its steps in this process, or each in its own process
    (``step_processes``); none for a deployment executor, which takes no such choice."""
    from ftdata_pipeline.orchestration.executors import executor_from_env

    if executor_from_env(environ) is not None:  # FTDATA_EXECUTOR names the executor
        return dict(_QUIET)
    mode = "multiprocess" if step_processes else "in_process"
    return {"execution": {"config": {mode: {}}}, **_QUIET}


def _fresh_definitions(module: str) -> None:
    """Rebuild the definitions module when it was imported under other settings (another
    ``--config-dir`` or FTDATA_HOME in the same process), so the run uses the current ones."""
    loaded = sys.modules.get(module)
    current = getattr(loaded, "current_settings", None)
    if loaded is not None and current is not None and loaded.BUILT_FROM != current():
        importlib.reload(loaded)


@dataclass
class HeadlessRun:
    run_id: str
    success: bool
    all_events: list  # DagsterEvent, in order


def run_job(
    instance: DagsterInstance,
    job_name: str,
    *,
    tags: dict[str, str] | None = None,
    location: CodeLocation | None = None,
    on_event: Callable | None = None,
    step_processes: bool = False,
) -> HeadlessRun:
    """Create a run of ``job_name`` with the code location's origin and execute it here.

    ``on_event(dagster_event)`` sees every event as it happens (progress lines);
    ``step_processes``: each step in a process of its own (see the module docstring)."""
    location = location or workspace_location()
    _fresh_definitions(location.module)
    recon_repo = ReconstructableRepository.for_module(
        location.module, DEFS_ATTRIBUTE, working_directory=location.working_directory
    )
    recon_job = recon_repo.get_reconstructable_job(job_name)
    job_def = recon_job.get_definition()
    run = instance.create_run_for_job(
        job_def,
        run_config=headless_run_config(step_processes),
        tags={**job_def.tags, SOURCE_TAG: f"ftdata materialize ({os.environ.get('USER', '?')})",
              **(tags or {})},
        remote_job_origin=location.job_origin(job_name),
        job_code_origin=recon_job.get_python_origin(),
    )
    # the run worker is this process: recorded as Dagster's run workers record theirs, so run
    # monitoring can tell a killed `ftdata materialize` from a running one
    instance.report_engine_event(
        f"Started process for run (pid: {os.getpid()}).", run,
        EngineEventData.in_process(os.getpid()),
    )
    events = []
    for event in execute_run_iterator(recon_job, run, instance):
        events.append(event)
        if on_event is not None:
            on_event(event)
    final = instance.get_run_by_id(run.run_id)
    return HeadlessRun(run.run_id, final is not None and final.is_success, events)


def secure_instance_dir(home: Path) -> None:
    """DAGSTER_HOME owner-only: the directory tree 0700, its files 0600.

    The instance's SQLite databases, event logs and compute logs describe every run (and a
    stage's log could quote data): no other local user may read them. The top directory is
    made 0700 before the instance opens, so nothing inside is reachable by others even before
    the files' own modes are tightened after the run."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    for path in home.rglob("*"):
        if path.is_symlink():
            continue
        path.chmod(0o700 if path.is_dir() else 0o600)
