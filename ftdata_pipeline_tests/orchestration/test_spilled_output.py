"""Stages that write their output as they go, and the IO manager that streams it into place.

The curated stage writes its records between passes and its output bucket by bucket, the
redacted stage each batch of records, the split stage each split; each hands Dagster a scan
of those files, never the whole output: the stored asset, its metadata and checks are those
of the same records in memory, and the spill directory is gone after the step, however it
ends. The curated stage's spill (raw records) stays inside the restricted zone.
"""

from __future__ import annotations

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance

from ftdata_pipeline.config.loader import load_project
from ftdata_pipeline.definitions import build_definitions
from ftdata_pipeline.orchestration.io_manager import PolarsParquetIOManager
from ftdata_pipeline.orchestration.storage import PipelineStorage
from ftdata_pipeline.stages import curate as curate_stage
from ftdata_pipeline.stages import redact as redact_stage
from ftdata_pipeline.stages.pii.engine import worker_pools
from ftdata_pipeline_tests.orchestration.small_dataset import DATASET, JOB, write_small_config

pytestmark = pytest.mark.integration


def _run(tmp_path, monkeypatch, n: int = 90):
    cfg = write_small_config(tmp_path / "project", n=n)
    monkeypatch.setenv("FTDATA_CONFIG_DIR", str(cfg))
    monkeypatch.delenv("FTDATA_CATALOG_URL", raising=False)
    monkeypatch.delenv("FTDATA_EXECUTOR", raising=False)
    home = tmp_path / "home"
    defs = build_definitions(home=str(home))
    instance = DagsterInstance.ephemeral()
    result = defs.resolve_job_def(JOB).execute_in_process(instance=instance, raise_on_error=False)
    return defs, home, instance, result


def test_redacted_output_is_spilled_in_batches_and_streamed_to_the_stored_asset(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(redact_stage, "REDACT_ROWS", 20)
    monkeypatch.setattr(curate_stage, "CURATE_ROWS", 20)
    handed: dict[str, str] = {}
    parts_seen: list[int] = []
    curated_files: list[str] = []
    real_handle = PolarsParquetIOManager.handle_output
    real_spill = PipelineStorage.spill_dir

    def handle_output(self, context, obj):
        handed["/".join(context.asset_key.path)] = type(obj).__name__
        if context.asset_key == AssetKey([DATASET, "redacted"]):
            parts_seen.append(len(list(spills[-1].glob("*.parquet"))))
        if context.asset_key == AssetKey([DATASET, "curated"]):
            curated_files.extend(str(p.relative_to(spills[-1])) for p in spills[-1].rglob("*.*"))
        return real_handle(self, context, obj)

    spills = []

    def spill_dir(self, dataset, stage, **kwargs):
        cm = real_spill(self, dataset, stage, **kwargs)

        class Track:
            def __enter__(self_inner):
                path = cm.__enter__()
                spills.append(path)
                return path

            def __exit__(self_inner, *exc):
                return cm.__exit__(*exc)

        return Track()

    monkeypatch.setattr(PolarsParquetIOManager, "handle_output", handle_output)
    monkeypatch.setattr(PipelineStorage, "spill_dir", spill_dir)
    defs, home, instance, result = _run(tmp_path, monkeypatch)
    assert result.success

    # the stage handed Dagster a scan of its batches; the other stages, frames
    assert handed[f"{DATASET}/redacted"] == "LazyFrame"
    assert handed[f"{DATASET}/split"] == "LazyFrame"
    assert handed[f"{DATASET}/curated"] == "LazyFrame"
    curated = pl.read_parquet(home / "restricted" / DATASET / "curated.parquet")
    assert curated.height > 40
    assert parts_seen == [-(-curated.height // 20)]  # one file per batch of 20
    assert len(spills) == 3 and not any(p.exists() for p in spills)  # removed after each step
    assert not any((home / ".spill" / DATASET).iterdir())
    # curated: raw records spill inside the restricted zone, sorted bucket by bucket
    assert spills[0].parent == home / "restricted" / ".spill" / DATASET
    assert not any(spills[0].parent.iterdir())
    assert sum(f.startswith("kept/sorted-") for f in curated_files) > 1, curated_files
    project = load_project(tmp_path / "project" / "configs")
    recipe = project.recipes[DATASET]
    raw = pl.concat([pl.scan_parquet(home / "restricted" / "raw" / f"{s}.parquet")
                     for s in recipe.sources], how="diagonal_relaxed")
    in_memory = curate_stage.curate(raw, recipe, {s: project.sources[s] for s in recipe.sources},
                                    root=project.root)
    assert curated.equals(in_memory.kept)
    stored_rejects = pl.read_parquet(home / "restricted" / "rejects" / DATASET / "curated.parquet")
    assert stored_rejects.equals(in_memory.rejected)

    # the stored asset holds exactly what the stage makes in memory from the same input
    stored = pl.read_parquet(home / "storage" / DATASET / "redacted.parquet")
    with worker_pools():
        expected = redact_stage.redact(pl.scan_parquet(
            home / "restricted" / DATASET / "curated.parquet"), recipe.redact)
    assert stored.equals(expected.kept)

    # metadata and checks are those of the whole output
    event = instance.get_latest_materialization_event(AssetKey([DATASET, "redacted"]))
    meta = event.asset_materialization.metadata
    assert meta["dagster/row_count"].value == stored.height == meta["rows_kept"].value
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()
              if e.asset_key == AssetKey([DATASET, "redacted"])}
    assert checks["rows_accounted"].passed
    assert checks["rows_accounted"].metadata["rows_out"].value == stored.height
    assert checks["no_residual_pii"].passed

    # the split asset: the stage's sorted output, checked as a whole
    split_stored = pl.read_parquet(home / "storage" / DATASET / "split.parquet")
    assert split_stored.equals(split_stored.sort("split", "record_id", "source", "source_key"))
    split_checks = {e.check_name: e for e in result.get_asset_check_evaluations()
                    if e.asset_key == AssetKey([DATASET, "split"])}
    assert split_checks and all(e.passed for e in split_checks.values()), {
        k: e.passed for k, e in split_checks.items()}


def test_a_failing_redacted_step_leaves_no_spill(tmp_path, monkeypatch):
    monkeypatch.setattr(redact_stage, "REDACT_ROWS", 20)
    real = redact_stage._redact_batch
    calls = []

    def fail_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(redact_stage, "_redact_batch", fail_on_third)
    _, home, _, result = _run(tmp_path, monkeypatch)
    assert not result.success and len(calls) == 3
    assert not any((home / ".spill" / DATASET).iterdir())
    assert not (home / "storage" / DATASET / "redacted.parquet").exists()


def test_spill_folders_of_dead_processes_are_removed_by_the_next_step(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    storage = PipelineStorage(home=str(tmp_path))
    parent = tmp_path / ".spill" / DATASET
    parent.mkdir(parents=True)
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    host = socket.gethostname()
    dead = parent / f"redacted@{host}@{done.stdout.strip()}@abc"
    live = parent / f"split@{host}@{os.getppid()}@def"  # a running process's folder
    other_host = parent / f"split@elsewhere@{done.stdout.strip()}@ghi"
    for folder in (dead, live, other_host):
        folder.mkdir()
        (folder / "part-000000.parquet").write_bytes(b"x")
    with storage.spill_dir(DATASET, "redacted") as path:
        assert path.exists() and not any(path.iterdir())
        assert not dead.exists() and live.exists() and other_host.exists()
    assert not path.exists()
