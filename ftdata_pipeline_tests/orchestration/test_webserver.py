"""Start the real Dagster webserver on the workspace and ask it for the asset graph."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.webserver

ROOT = Path(__file__).resolve().parents[2]
QUERY = "{ assetNodes { assetKey { path } groupName dependencyKeys { path } } }"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture()
def webserver(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "FTDATA_HOME": str(tmp_path / "data")}
    bin_dir = Path(sys.executable).parent
    # its own session, so the whole process group can be stopped (it ignores a lone SIGTERM)
    proc = subprocess.Popen(
        [str(bin_dir / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace")
                pytest.fail(f"webserver exited early:\n{out[-3000:]}")
            try:
                data = _graphql(port, QUERY)
                if data.get("data", {}).get("assetNodes"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("webserver did not serve the asset graph within 180 s")
            time.sleep(1)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_webserver_loads_workspace_and_serves_the_graph(webserver):
    data = _graphql(webserver, QUERY)
    assert "errors" not in data
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["data"]["assetNodes"]}
    assert "raw/support_tickets" in nodes
    assert nodes["support_assistant/redacted"]["groupName"] == "support_assistant"
    deps = {"/".join(d["path"]) for d in nodes["support_assistant/curated"]["dependencyKeys"]}
    assert deps == {"raw/chat_transcripts", "raw/support_tickets"}
    locations = _graphql(
        webserver,
        "{ workspaceOrError { ... on Workspace { locationEntries { name "
        "locationOrLoadError { __typename } } } } }",
    )
    entries = locations["data"]["workspaceOrError"]["locationEntries"]
    assert [e["locationOrLoadError"]["__typename"] for e in entries] == ["RepositoryLocation"]
