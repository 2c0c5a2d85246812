"""One step's PII detection fanned out over a Dask cluster (FTDATA_PII_DASK_SCHEDULER).

A real ``distributed.LocalCluster`` with two worker processes is started here; the spans must
be those of the in-process detector, and the workers' own counters show that they did the work.
"""

from __future__ import annotations

import os
import socket

import pytest

from ftdata_pipeline.config.loader import project_root
from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.stages.pii import cluster
from ftdata_pipeline.stages.pii.cluster import SCHEDULER_ENV, PiiClusterError, scheduler_from_env
from ftdata_pipeline.stages.pii.engine import Detector, detect_spans, worker_pools
from ftdata_pipeline.stages.pii.evaluation import generate_examples

CFG = RedactConfig(parallel_min_texts=1, batch_size=16)


@pytest.fixture(scope="module")
def dask_cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None) as local:
        with Client(local, set_as_default=False) as client:
            yield local, client


def _analyzed(client) -> dict[str, dict]:
    return client.run(cluster.worker_stats)


def _texts() -> list[str]:
    lines = (project_root() / "demo_data" / "support_tickets.jsonl").read_text().splitlines()
    import json

    rows = [json.loads(line) for line in lines[:80]]
    mixed = [r["body"] for r in rows] + [r["agent_reply"] for r in rows]
    mixed += [ex.text for ex in generate_examples(120, seed=5)]
    return [t for t in dict.fromkeys(mixed) if t]


def test_detection_on_the_cluster_equals_in_process(dask_cluster, monkeypatch):
    local, client = dask_cluster
    texts = _texts()
    assert len(texts) > 250
    expected = Detector(CFG.model_copy(update={"workers": 1})).spans(texts)
    before = _analyzed(client)
    here = dict(cluster._ANALYZED)

    monkeypatch.setenv(SCHEDULER_ENV, local.scheduler_address)
    with worker_pools():
        spans = detect_spans(Detector(CFG), texts, chunk_texts=40)
    assert spans == expected
    assert any(spans)

    after = _analyzed(client)
    done = {w: after[w]["texts"] - before[w]["texts"] for w in after}
    chunks = {w: after[w]["chunks"] - before[w]["chunks"] for w in after}
    # every text was analyzed once, by the cluster's worker processes, in chunks of <= 40
    assert sum(done.values()) == len(texts)
    assert sum(chunks.values()) >= -(-len(texts) // 40)
    assert all(after[w]["pid"] != os.getpid() for w in after)
    assert len(after) == 2 and all(n > 0 for n in done.values()), done
    assert cluster._ANALYZED == here  # nothing was analyzed in this process


def test_small_inputs_stay_in_process(dask_cluster, monkeypatch):
    local, client = dask_cluster
    before = _analyzed(client)
    monkeypatch.setenv(SCHEDULER_ENV, local.scheduler_address)
    detector = Detector(RedactConfig(parallel_min_texts=100))
    spans = detect_spans(detector, ["Mail ann@example.com"])
    assert spans == detector.spans(["Mail ann@example.com"]) and spans[0]
    assert _analyzed(client) == before


@pytest.mark.parametrize("value, problem", [
    ("dask.internal:8786", "scheme"),
    ("http://dask.internal:8786", "scheme"),
    ("tcp://dask.internal", "no port"),
    ("tcp://dask.internal:port", "port"),
    ("tcp://:8786", "no host"),
    ("tcp://dask.internal:8786/x", "only scheme://host:port"),
])
def test_malformed_address_names_the_variable(value, problem):
    with pytest.raises(PiiClusterError, match=SCHEDULER_ENV) as err:
        scheduler_from_env({SCHEDULER_ENV: value})
    assert problem in str(err.value)


def test_address_forms():
    assert scheduler_from_env({}) is None
    assert scheduler_from_env({SCHEDULER_ENV: "  "}) is None
    assert scheduler_from_env({SCHEDULER_ENV: "tcp://10.0.0.5:8786"}) == "tcp://10.0.0.5:8786"
    assert scheduler_from_env({SCHEDULER_ENV: "tls://[::1]:8786 "}) == "tls://[::1]:8786"


def test_unreachable_scheduler_names_the_variable(monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2)
    monkeypatch.setenv(SCHEDULER_ENV, f"tcp://127.0.0.1:{port}")
    with pytest.raises(PiiClusterError, match=f"{SCHEDULER_ENV}=.*cannot connect"):
        detect_spans(Detector(CFG), [f"text {i}" for i in range(40)])


def test_malformed_value_fails_detection_with_its_name(monkeypatch):
    monkeypatch.setenv(SCHEDULER_ENV, "dask-scheduler")
    with pytest.raises(PiiClusterError, match=SCHEDULER_ENV):
        detect_spans(Detector(CFG), [f"text {i}" for i in range(40)])


@pytest.mark.integration
def test_dataset_run_with_the_cluster_writes_the_same_exports(dask_cluster, tmp_path,
                                                               monkeypatch):
    import yaml
    from dagster import DagsterInstance

    from ftdata_pipeline.definitions import build_definitions
    from ftdata_pipeline_tests.orchestration.small_dataset import (
        DATASET,
        JOB,
        export_files,
        write_small_config,
    )

    local, client = dask_cluster
    cfg_dir = write_small_config(tmp_path / "project", n=200)
    recipe_path = cfg_dir / "datasets" / f"{DATASET}.yaml"
    recipe = yaml.safe_load(recipe_path.read_text())
    # small enough for a test, large enough that the step fans its detection out
    recipe.setdefault("redact", {})["parallel_min_texts"] = 50
    recipe_path.write_text(yaml.safe_dump(recipe))
    monkeypatch.setenv("FTDATA_CONFIG_DIR", str(cfg_dir))
    for var in ("FTDATA_CATALOG_URL", "FTDATA_EXECUTOR", SCHEDULER_ENV):
        monkeypatch.delenv(var, raising=False)

    def run(home):
        defs = build_definitions(home=str(home))
        result = defs.resolve_job_def(JOB).execute_in_process(
            instance=DagsterInstance.ephemeral(), raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        return export_files(home)

    expected = run(tmp_path / "local")
    assert any(name.endswith(".jsonl") for name in expected), expected.keys()

    from ftdata_pipeline.stages.redact import clear_memos

    clear_memos()  # the first run's detections are memoized in this process
    before = _analyzed(client)
    monkeypatch.setenv(SCHEDULER_ENV, local.scheduler_address)
    on_cluster = run(tmp_path / "cluster")
    after = _analyzed(client)
    assert sum(after[w]["texts"] - before[w]["texts"] for w in after) >= 50
    assert on_cluster == expected


def test_malformed_value_fails_the_code_location_load(monkeypatch, tmp_path):
    from ftdata_pipeline.definitions import build_definitions

    monkeypatch.setenv(SCHEDULER_ENV, "tcp://dask.internal")
    with pytest.raises(PiiClusterError, match=f"{SCHEDULER_ENV}='tcp://dask.internal'"):
        build_definitions(home=str(tmp_path))


def test_a_worker_with_many_threads_analyzes_one_chunk_at_a_time():
    """Dask runs tasks on a worker's threads; chunks analyzed from several threads at once
    give what one thread gives, and never overlap."""
    from concurrent.futures import ThreadPoolExecutor

    cfg_json = RedactConfig(workers=1).model_dump_json()
    texts = [ex.text for ex in generate_examples(48, seed=5)]
    chunks = [texts[i : i + 6] for i in range(0, len(texts), 6)]
    serial = [cluster.analyze_chunk(cfg_json, c) for c in chunks]
    inside, most = [0], [0]
    real = cluster._detector(cfg_json).spans

    def spans(batch):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        try:
            return real(batch)
        finally:
            inside[0] -= 1

    detector = cluster._detector(cfg_json)
    detector.spans = spans
    try:
        with ThreadPoolExecutor(4) as pool:
            threaded = list(pool.map(lambda c: cluster.analyze_chunk(cfg_json, c), chunks))
    finally:
        del detector.spans
    assert most[0] == 1
    assert [f.to_dicts() for f in threaded] == [f.to_dicts() for f in serial]
