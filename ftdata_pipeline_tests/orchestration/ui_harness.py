"""Real Dagster webserver + daemon on loopback over a small copy of the demo project.

Used by the end-to-end UI tests: a temporary DAGSTER_HOME (telemetry and the first-run popup
off, run monitoring on, the instance settings of ``configs/dagster.yaml``), a project folder
with one recipe over a slice of the demo tickets, and a GraphQL client.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from dagster import DagsterInstance

ROOT = Path(__file__).resolve().parents[2]
LOCATION = "ftdata_pipeline"
REPOSITORY = "__repository__"
DATASET = "ticket_intents"
TICKETS = 400  # slice of the demo tickets: enough for every stage, a short run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_project(root: Path, tickets: int = TICKETS) -> Path:
    """A project with the ``ticket_intents`` recipe over the first ``tickets`` demo tickets.

    The recipe's redaction runs on the worker pool (two workers, no in-process threshold), the
    path that must not outlive its step."""
    configs = root / "configs"
    (configs / "datasets").mkdir(parents=True)
    shutil.copy(ROOT / "configs" / "sources.yaml", configs / "sources.yaml")
    recipe = yaml.safe_load((ROOT / "configs" / "datasets" / f"{DATASET}.yaml").read_text())
    recipe["redact"].update({"workers": 2, "parallel_min_texts": 50})
    (configs / "datasets" / f"{DATASET}.yaml").write_text(yaml.safe_dump(recipe))
    shutil.copytree(ROOT / "demo_data", root / "demo_data")
    write_tickets(root, tickets)
    return configs


def write_tickets(root: Path, n: int, offset: int = 0) -> Path:
    """Replace the tickets landing file with ``n`` demo tickets from ``offset`` (atomically)."""
    lines = (ROOT / "demo_data" / "support_tickets.jsonl").read_text("utf-8").splitlines()
    path = root / "demo_data" / "support_tickets.jsonl"
    tmp = path.with_suffix(".landing")
    tmp.write_text("\n".join(lines[offset : offset + n]) + "\n", "utf-8")
    tmp.replace(path)
    return path


def write_instance(home: Path) -> Path:
    """DAGSTER_HOME with the project's instance settings (run monitoring on)."""
    home.mkdir(parents=True)
    settings = yaml.safe_load((ROOT / "configs" / "dagster.yaml").read_text())
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    # Create and migrate the instance's storage once, here: the webserver, its code server and
    # the daemon start at the same moment and would otherwise race to migrate fresh SQLite
    # files (alembic "table already exists" / revision errors).
    with DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)
        instance.all_instigator_state()
    return home


@dataclass
class UiServer:
    """A running webserver + daemon; ``close()`` stops both process groups."""

    port: int
    env: dict
    procs: list = field(default_factory=list)
    logs: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        req = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read())
        if data.get("errors"):
            raise AssertionError(f"GraphQL errors: {data['errors']}")
        return data["data"]

    def log_tail(self, n: int = 3000) -> str:
        return "\n".join(
            f"--- {p.name}:\n{p.read_text(errors='replace')[-n:]}" for p in self.logs if p.exists()
        )

    def close(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)


def start_ui(tmp: Path, configs: Path, home: Path, *, daemon: bool = True) -> UiServer:
    """Start dagster-webserver (and dagster-daemon) in their own sessions on loopback."""
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FTDATA_HOME": str(tmp / "data"),
        "FTDATA_CONFIG_DIR": str(configs),
        "FTDATA_PROJECT_ROOT": str(configs.parent),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    server = UiServer(port=free_port(), env=env)
    commands = [("webserver", [str(bin_dir / "dagster-webserver"), "-w", "workspace.yaml",
                               "-h", "127.0.0.1", "-p", str(server.port)])]
    if daemon:
        commands.append(("daemon", [str(bin_dir / "dagster-daemon"), "run", "-w",
                                    "workspace.yaml"]))
    for name, cmd in commands:
        log = tmp / f"{name}.log"
        server.logs.append(log)
        # own session: `dagster-*` ignore a lone SIGTERM; the whole group is killed on close
        server.procs.append(subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        ))
    deadline = time.monotonic() + 180
    while True:
        if any(p.poll() is not None for p in server.procs):
            server.close()
            raise AssertionError(f"a Dagster process exited early:\n{server.log_tail()}")
        try:
            nodes = server.graphql("{ assetNodes { id } }", timeout=10)["assetNodes"]
            if nodes:
                return server
        except (OSError, AssertionError):
            pass
        if time.monotonic() > deadline:
            server.close()
            raise AssertionError(f"webserver not ready within 180 s:\n{server.log_tail()}")
        time.sleep(1)


LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""

RUN = """
query($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status jobName tags { key value } }
  }
}"""

EVENTS = """
query($runId: ID!, $after: String) {
  logsForRun(runId: $runId, afterCursor: $after, limit: 1000) {
    __typename
    ... on EventConnection {
      cursor hasMore
      events { __typename ... on MessageEvent { timestamp stepKey message } }
    }
  }
}"""

FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def launch_job(server: UiServer, job: str, tags: dict | None = None) -> str:
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY,
                     "jobName": job},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
    }
    out = server.graphql(LAUNCH, {"params": params})["launchRun"]
    assert out["__typename"] == "LaunchRunSuccess", out
    return out["run"]["runId"]


def run_status(server: UiServer, run_id: str) -> str:
    return server.graphql(RUN, {"runId": run_id})["runOrError"]["status"]


def wait_for_run(server: UiServer, run_id: str, timeout: float, states=FINISHED) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = run_status(server, run_id)
        if status in states:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(
                f"run {run_id} still {status} after {timeout:.0f} s; events:\n"
                + "\n".join(f"{e['__typename']} {e.get('stepKey')}: {e.get('message', '')[:200]}"
                            for e in run_events(server, run_id)[-40:])
                + "\n" + server.log_tail()
            )
        time.sleep(2)


def run_events(server: UiServer, run_id: str) -> list[dict]:
    events, cursor = [], None
    while True:
        page = server.graphql(EVENTS, {"runId": run_id, "after": cursor})["logsForRun"]
        events.extend(page["events"])
        cursor = page["cursor"]
        if not page["hasMore"]:
            return events


TERMINATE = """
mutation($runId: String!) {
  terminateRun(runId: $runId) { __typename ... on PythonError { message } }
}"""

SENSOR_FIELDS = "__typename ... on Sensor { sensorState { status } } ... on PythonError { message }"
START_SENSOR = f"""
mutation($s: SensorSelector!) {{ startSensor(sensorSelector: $s) {{ {SENSOR_FIELDS} }} }}"""
SET_CURSOR = f"""
mutation($s: SensorSelector!, $cursor: String) {{
  setSensorCursor(sensorSelector: $s, cursor: $cursor) {{ {SENSOR_FIELDS} }}
}}"""

RUNS_WITH_TAG = """
query($key: String!, $value: String!) {
  runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
    ... on Runs { results { runId status jobName } }
  }
}"""


def sensor_selector(name: str) -> dict:
    return {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": name}


def _alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def descendants(pid: int) -> list[int]:
    """Live processes below ``pid`` (Linux /proc), e.g. a step's PII pool and forkserver."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError):
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@dataclass
class StepWatch:
    """Per step: the pid of its process, the time of its last event, the time its process
    (and every process it started) was seen gone."""

    pids: dict = field(default_factory=dict)
    last_event: dict = field(default_factory=dict)
    exited: dict = field(default_factory=dict)
    tree: dict = field(default_factory=dict)

    def exit_delays(self) -> dict[str, float]:
        return {s: self.exited[s] - self.last_event[s] for s in self.exited}


def watch_run(instance, run_id: str, timeout: float, watch: StepWatch | None = None,
              stop_when=None) -> tuple[str, StepWatch]:
    """Poll the run's event log (the instance's own storage) until it finishes, recording when
    each step's process exits. ``stop_when(records)``: return early when it is true."""
    from dagster import DagsterEventType

    watch = watch or StepWatch()
    deadline = time.monotonic() + timeout
    while True:
        records = instance.all_logs(run_id)
        for r in records:
            ev = r.dagster_event
            if ev is None or not r.step_key:
                continue
            if ev.event_type in (DagsterEventType.STEP_START, DagsterEventType.STEP_OUTPUT):
                watch.pids.setdefault(r.step_key, ev.pid)
            watch.last_event[r.step_key] = max(watch.last_event.get(r.step_key, 0), r.timestamp)
        now = time.time()
        for step, pid in watch.pids.items():
            if step in watch.exited:
                continue
            if _alive(pid):
                watch.tree.setdefault(step, set()).update(descendants(pid))
            elif not any(_alive(p) for p in watch.tree.get(step, ())):
                watch.exited[step] = now
        if stop_when is not None and stop_when(records):
            return "", watch
        run = instance.get_run_by_id(run_id)
        if run.status.value in FINISHED and set(watch.exited) >= set(watch.pids):
            return run.status.value, watch
        if time.monotonic() > deadline:
            steps = {s: _alive(p) for s, p in watch.pids.items()}
            raise AssertionError(
                f"run {run_id} {run.status.value} after {timeout:.0f} s; step process alive: "
                f"{steps}"
            )
        time.sleep(0.5)


RUN_ORIGIN = """
query($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      status jobName hasReExecutePermission tags { key value }
      repositoryOrigin { repositoryLocationName repositoryName }
    }
  }
}"""

REEXECUTE = """
mutation($parent: String!) {
  launchRunReexecution(reexecutionParams: {parentRunId: $parent, strategy: ALL_STEPS}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
