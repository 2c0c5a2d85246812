"""PII worker pools belong to the step that opens them and stop when it ends.

A pool left running after a step hangs the step's process under Dagster's multiprocess
executor (a multiprocessing child does not run exit handlers and waits on its pool workers),
so a run launched from the UI, a schedule or a sensor would never finish.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.stages.pii import engine
from ftdata_pipeline.stages.pii.engine import Detector, detect_spans, worker_pools
from ftdata_pipeline_tests.orchestration.pool_job import FAIL_AFTER_POOL

ROOT = Path(__file__).resolve().parents[2]
CFG = RedactConfig(workers=2, parallel_min_texts=1, batch_size=8)
TEXTS = [f"Mail {i}: write to ann{i}@example.com or call Tom Baker" for i in range(48)]


def _pool_workers() -> list[multiprocessing.Process]:
    pools = engine._SCOPE.get() or {}
    return [p for pool in pools.values() for p in (pool._processes or {}).values()]


def test_pools_live_only_inside_the_block():
    with worker_pools():
        spans = detect_spans(Detector(CFG), TEXTS)
        workers = _pool_workers()
        assert len(workers) == 2 and all(p.is_alive() for p in workers)
        # reused inside the block: no second pool for the same settings
        detect_spans(Detector(CFG), TEXTS[:20])
        assert _pool_workers() == workers
    assert engine._SCOPE.get() is None
    assert not any(p.is_alive() for p in workers)
    assert all(any(t == "EMAIL_ADDRESS" for t, *_ in s) for s in spans)


def test_a_failing_block_kills_its_workers():
    with pytest.raises(RuntimeError, match="boom"), worker_pools():
        detect_spans(Detector(CFG), TEXTS)
        workers = _pool_workers()
        raise RuntimeError("boom")
    assert workers and not any(p.is_alive() for p in workers)


def test_a_call_outside_any_block_leaves_no_worker():
    before = set(multiprocessing.active_children())
    detect_spans(Detector(CFG), TEXTS)
    assert set(multiprocessing.active_children()) <= before


def _run_pool_job(tmp_path: Path, **env: str) -> dict:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    proc = subprocess.run(
        [sys.executable, "-m", "ftdata_pipeline_tests.orchestration.pool_job"],
        cwd=ROOT, env={**os.environ, "DAGSTER_HOME": str(home), **env},
        capture_output=True, text=True,
        timeout=300,  # the bug this guards against is a step process that never exits
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _exit_gap(events: list[dict], step: str) -> float:
    """Seconds between the step's last event and the end of the run (the run waits for the
    step's process to exit before it finishes)."""
    last_step = max(e["t"] for e in events if e["step"] == step)
    run_end = max(
        e["t"] for e in events if e["type"] in ("PIPELINE_SUCCESS", "PIPELINE_FAILURE")
    )
    return run_end - last_step


def test_step_with_a_pool_exits_promptly_under_the_multiprocess_executor(tmp_path):
    started = time.monotonic()
    out = _run_pool_job(tmp_path)
    assert out["success"], out["events"]
    types = {(e["step"], e["type"]) for e in out["events"]}
    assert ("after_redaction", "STEP_SUCCESS") in types
    assert _exit_gap(out["events"], "after_redaction") < 15
    # the redacting step's process exited before the next step could finish the run
    assert time.monotonic() - started < 300


def test_failing_step_with_a_pool_exits_promptly(tmp_path):
    out = _run_pool_job(tmp_path, **{FAIL_AFTER_POOL: "1"})
    assert not out["success"]
    assert ("redact_with_pool", "STEP_FAILURE") in {(e["step"], e["type"]) for e in out["events"]}
    assert _exit_gap(out["events"], "redact_with_pool") < 15


_UNGUARDED = """
import json
from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.stages.pii.engine import Detector, detect_spans
texts = [f"Ticket {i}: write to ann{i}@example.com. " + "The sync client stops at 99%. " * 20
         for i in range(1200)]
spans = detect_spans(Detector(RedactConfig(workers=2, parallel_min_texts=1)), texts)
print(json.dumps(sum(any(t == "EMAIL_ADDRESS" for t, *_ in s) for s in spans)))
"""


def test_a_script_without_a_main_guard_falls_back_and_exits(tmp_path):
    """Without ``if __name__ == "__main__":`` every worker re-runs the script and dies, so the
    pool breaks. The calling process analyzes the rest itself, as documented, and must then
    exit: chunks queued for the dead workers once blocked the queue's feeder thread, which
    the interpreter joins at exit, so the script printed its result and never ended."""
    script = tmp_path / "unguarded.py"
    script.write_text(_UNGUARDED)
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == 1200
    assert "PII worker pool broke; analyzing in-process" in proc.stderr
