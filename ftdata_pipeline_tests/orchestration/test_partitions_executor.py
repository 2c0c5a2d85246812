"""Partitioned runs under Dagster's multiprocess executor (a process per step, as the UI's
Materialize button and the landing sensor run them), and the landing sensor's partitions."""

from __future__ import annotations

import os
import shutil

import polars as pl
import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    SensorResult,
    SkipReason,
    build_sensor_context,
    execute_job,
    reconstructable,
)

from ftdata_pipeline.definitions import build_definitions
from ftdata_pipeline.orchestration.storage import PipelineStorage
from ftdata_pipeline_tests.orchestration.partitioned_dataset import (
    DATASET,
    JOB,
    KEYS,
    PARTITIONS_NAME,
    partitioned_job,
    write_configs,
)


def test_landing_sensor_adds_a_partition_per_new_file(tmp_path, monkeypatch):
    parted_cfg, _ = write_configs(tmp_path, per_partition=10)
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(tmp_path / "parted"))
    defs = build_definitions(parted_cfg, home=str(tmp_path / "home"))
    sensor = defs.get_sensor_def("support_tickets_landing_sensor")
    instance = DagsterInstance.ephemeral()

    first = sensor(build_sensor_context(cursor=None, instance=instance))
    assert isinstance(first, SensorResult)
    assert [(r.job_name, r.partition_key) for r in first.run_requests] == [
        (JOB, k) for k in KEYS
    ]
    (added,) = first.dynamic_partitions_requests
    assert added.partitions_def_name == PARTITIONS_NAME
    assert list(added.partition_keys) == list(KEYS)
    instance.add_dynamic_partitions(PARTITIONS_NAME, list(added.partition_keys))

    assert isinstance(sensor(build_sensor_context(cursor=first.cursor, instance=instance)),
                      SkipReason)

    landing = tmp_path / "parted" / "landing"
    shutil.copy(landing / "day1.jsonl", landing / "day3.jsonl")
    (landing / ".day4.jsonl.uploading").write_text("{}\n")  # hidden: not a partition yet
    third = sensor(build_sensor_context(cursor=first.cursor, instance=instance))
    assert [r.partition_key for r in third.run_requests] == ["day3.jsonl"]
    assert list(third.dynamic_partitions_requests[0].partition_keys) == ["day3.jsonl"]


def test_materialize_asks_for_partitions_of_a_partitioned_dataset(tmp_path, monkeypatch, capsys):
    from ftdata_pipeline.cli import main

    parted_cfg, _ = write_configs(tmp_path, per_partition=10)
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(tmp_path / "parted"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    base = ["--config-dir", str(parted_cfg), "materialize", "--dataset", DATASET]
    assert main(base) == 2
    assert "give --partition KEY or --all-partitions" in capsys.readouterr().err
    assert main([*base, "--partition", "day9.jsonl"]) == 2
    assert "no partition 'day9.jsonl' of source 'support_tickets'" in capsys.readouterr().err


@pytest.mark.integration
def test_materialize_all_partitions_runs_them_in_key_order(tmp_path):
    import subprocess
    import sys

    from ftdata_pipeline_tests.orchestration import ui_harness as ui

    parted_cfg, _ = write_configs(tmp_path, per_partition=20)
    home = ui.write_instance(tmp_path / "dagster_home")
    env = {**os.environ, "DAGSTER_HOME": str(home), "FTDATA_HOME": str(tmp_path / "data"),
           "FTDATA_PROJECT_ROOT": str(tmp_path / "parted"), "PYTHONPATH": str(ui.ROOT)}
    env.pop("FTDATA_CATALOG_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "ftdata_pipeline.cli", "--config-dir", str(parted_cfg),
         "materialize", "--dataset", DATASET, "--all-partitions"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert [line for line in proc.stdout.splitlines() if line.startswith("materializing")] == [
        f"materializing {JOB} partition {k} ..." for k in KEYS
    ]
    with DagsterInstance.from_config(str(home)) as instance:
        runs = list(reversed(instance.get_runs()))  # newest first: oldest first
        assert [r.tags.get("dagster/partition") for r in runs] == list(KEYS)
        assert all(r.is_success for r in runs)
        assert sorted(instance.get_dynamic_partitions(PARTITIONS_NAME)) == list(KEYS)


def test_day_partitions_read_their_day_and_the_schedule_runs_the_previous_day(
    tmp_path, monkeypatch
):
    from datetime import datetime, timezone

    from dagster import build_schedule_context

    from ftdata_pipeline_tests.orchestration.partitioned_dataset import write_day_config

    cfg = write_day_config(tmp_path)
    monkeypatch.delenv("FTDATA_CATALOG_URL", raising=False)
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(tmp_path))
    home = tmp_path / "home"
    defs = build_definitions(cfg, home=str(home))

    schedule = defs.get_schedule_def(f"{DATASET}_schedule")
    tick = datetime(2026, 4, 10, 3, 0, tzinfo=timezone.utc)
    (request,) = schedule.evaluate_tick(
        build_schedule_context(scheduled_execution_time=tick,
                               repository_def=defs.get_repository_def())).run_requests
    assert request.partition_key == "2026-04-09"

    result = defs.resolve_job_def(JOB).execute_in_process(
        instance=DagsterInstance.ephemeral(), partition_key="2026-04-05", raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    storage = PipelineStorage(home=str(home))
    raw = pl.read_parquet(storage.asset_path(["raw", "support_tickets"], restricted=True,
                                             partition="2026-04-05"))
    assert raw.height == 11  # the demo's tickets of that day among the first 60
    assert raw["created_at"].dt.date().cast(pl.String).unique().to_list() == ["2026-04-05"]
    assert list(storage.partition_paths([DATASET, "curated"], restricted=True)) == ["2026-04-05"]


@pytest.mark.integration
def test_partitioned_dataset_on_processes_and_a_dask_cluster_exports_what_one_process_does(
        tmp_path, monkeypatch):
    """Every partition run with a process per step, each redacted step fanning its PII
    detection out over a local Dask cluster: the training files equal, byte for byte, those
    of one unpartitioned run in one process."""
    import json

    import yaml
    from distributed import Client, LocalCluster

    from ftdata_pipeline.stages.pii import cluster
    from ftdata_pipeline.stages.redact import clear_memos
    from ftdata_pipeline_tests.orchestration.small_dataset import export_files

    parted_cfg, plain_cfg = write_configs(tmp_path, per_partition=40)
    recipe_path = parted_cfg / "datasets" / f"{DATASET}.yaml"
    recipe = yaml.safe_load(recipe_path.read_text())
    recipe.setdefault("redact", {})["parallel_min_texts"] = 10  # each partition fans out
    recipe_path.write_text(yaml.safe_dump(recipe))
    for var in ("FTDATA_CATALOG_URL", "FTDATA_EXECUTOR", cluster.SCHEDULER_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(tmp_path / "plain"))
    plain_home = tmp_path / "plain_home"
    result = build_definitions(plain_cfg, home=str(plain_home)).resolve_job_def(JOB) \
        .execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    clear_memos()

    home, dagster_home = tmp_path / "parted_home", tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(tmp_path / "parted"))
    monkeypatch.setenv("FTDATA_CONFIG_DIR", str(parted_cfg))
    monkeypatch.setenv("FTDATA_HOME", str(home))
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None) as local, \
            Client(local, set_as_default=False) as client:
        monkeypatch.setenv(cluster.SCHEDULER_ENV, local.scheduler_address)
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            instance.add_dynamic_partitions(PARTITIONS_NAME, list(KEYS))
            pids = set()
            for key in KEYS:  # in key order, a process per step; the index is in storage
                with execute_job(reconstructable(partitioned_job), instance=instance,
                                 tags={"dagster/partition": key}) as run:
                    assert run.success, [e.message for e in run.all_events if e.is_failure]
                    starts = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
                    pids |= {rec.dagster_event.pid for rec in starts}
            mats = instance.fetch_materializations(AssetKey([DATASET, "curated"]), limit=1)
            assert mats.records[0].partition_key == KEYS[-1]
        analyzed = client.run(cluster.worker_stats)
    assert os.getpid() not in pids and len(pids) > 2  # a process per step
    assert sum(w["texts"] for w in analyzed.values()) >= 40  # the cluster did the detection
    assert all(w["texts"] > 0 for w in analyzed.values())

    parts = PipelineStorage(home=str(home)).partition_paths([DATASET, "redacted"],
                                                             restricted=False)
    assert list(parts) == list(KEYS)
    parted_rows = pl.concat([pl.read_parquet(p) for p in parts.values()]).sort("record_id")
    plain_rows = pl.read_parquet(PipelineStorage(home=str(plain_home)).asset_path(
        [DATASET, "redacted"], restricted=False)).sort("record_id")
    assert parted_rows.equals(plain_rows)
    parted, plain = export_files(home), export_files(plain_home)
    assert any(name.endswith(".jsonl") for name in parted)
    manifests = [json.loads(files.pop("manifest.json")) for files in (parted, plain)]
    assert parted == plain
    for m in manifests:  # the source and redact configs differ: only the config hash may
        m.pop("config_hash")
    assert manifests[0] == manifests[1]
