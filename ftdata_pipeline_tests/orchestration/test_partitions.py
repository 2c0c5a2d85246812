"""Partitioned sources: per-partition assets in real Dagster runs, incremental dedup, reruns."""

from __future__ import annotations

import json

import polars as pl
import pytest
from dagster import DagsterInstance

from ftdata_pipeline.definitions import build_definitions
from ftdata_pipeline.orchestration.storage import PipelineStorage
from ftdata_pipeline.stages.curation.index import EXACT_RULE, NEAR_RULE
from ftdata_pipeline_tests.orchestration.partitioned_dataset import (
    DATASET,
    JOB,
    KEYS,
    PARTITIONS_NAME,
    write_configs,
)
from ftdata_pipeline_tests.orchestration.small_dataset import export_files


def _run(defs, instance, partition_key=None):
    result = defs.resolve_job_def(JOB).execute_in_process(
        instance=instance, partition_key=partition_key, raise_on_error=False
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def _stage(home, stage: str, restricted: bool) -> pl.DataFrame:
    storage = PipelineStorage(home=str(home))
    parts = storage.partition_paths([DATASET, stage], restricted=restricted)
    if parts:
        return pl.concat([pl.read_parquet(p) for p in parts.values()])
    return pl.read_parquet(storage.asset_path([DATASET, stage], restricted=restricted))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both partitions one after another, and the same rows in one unpartitioned run."""
    base = tmp_path_factory.mktemp("partitions")
    parted_cfg, plain_cfg = write_configs(base)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FTDATA_CATALOG_URL", raising=False)
        mp.delenv("FTDATA_EXECUTOR", raising=False)
        mp.setenv("FTDATA_PROJECT_ROOT", str(base / "parted"))
        parted = build_definitions(parted_cfg, home=str(base / "parted_home"))
        instance = DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(PARTITIONS_NAME, list(KEYS))
        results = {key: _run(parted, instance, key) for key in KEYS}
        mp.setenv("FTDATA_PROJECT_ROOT", str(base / "plain"))
        plain = build_definitions(plain_cfg, home=str(base / "plain_home"))
        _run(plain, DagsterInstance.ephemeral())
        yield {"base": base, "defs": parted, "instance": instance, "results": results,
               "parted_home": base / "parted_home", "plain_home": base / "plain_home"}


def test_partitions_keep_what_one_unpartitioned_run_keeps(runs):
    for stage, restricted in (("curated", True), ("redacted", False)):
        parted = _stage(runs["parted_home"], stage, restricted).sort("record_id")
        plain = _stage(runs["plain_home"], stage, restricted).sort("record_id")
        assert parted["record_id"].to_list() == plain["record_id"].to_list(), stage
        assert parted.equals(plain), stage
    # labeled and later read every partition of redacted: the same training files, byte for
    # byte; the manifests differ only in the config hash (the source config differs)
    parted, plain = export_files(runs["parted_home"]), export_files(runs["plain_home"])
    assert any(name.endswith(".jsonl") for name in parted)
    manifests = [json.loads(files.pop("manifest.json")) for files in (parted, plain)]
    assert parted == plain
    assert manifests[0]["config_hash"] != manifests[1]["config_hash"]
    for m in manifests:
        m.pop("config_hash")
    assert manifests[0] == manifests[1]


def test_duplicates_of_another_partition_are_rejected_naming_it(runs):
    storage = PipelineStorage(home=str(runs["parted_home"]))
    rejects = pl.read_parquet(
        storage.rejects_path(DATASET, "curated", restricted=True, partition="day2.jsonl")
    )
    exact = rejects.filter(pl.col("rule") == EXACT_RULE)
    near = rejects.filter(pl.col("rule") == NEAR_RULE)
    # the planted copies (new ids T-9xxxxx), each pointing at day 1's kept record
    assert {"T-900000", "T-900001"} <= set(exact["source_key"])
    assert "T-900002" in set(near["source_key"])
    assert all(d.startswith("day1.jsonl:") for d in [*exact["detail"], *near["detail"]])
    kept_day1 = set(_stage_partition(storage, "day1.jsonl")["record_id"])
    assert {d.split(":", 1)[1] for d in exact["detail"]} <= kept_day1
    # the rejected asset lists them too, from every partition's reject file
    index = storage.read_reject_index(DATASET, "curated", restricted=True)
    assert set(exact["record_id"]) <= set(index["record_id"])
    # and record lineage finds each stage's decision in the partition files
    from ftdata_pipeline.governance.lineage import stage_decisions

    (decision,) = stage_decisions(storage, DATASET, exact["record_id"][0])
    assert (decision["stage"], decision["rule"]) == ("curated", EXACT_RULE)
    kept_id = next(iter(kept_day1))
    assert [d["decision"] for d in stage_decisions(storage, DATASET, kept_id)][:2] == [
        "kept", "kept"]


def _stage_partition(storage, key):
    return pl.read_parquet(storage.asset_path([DATASET, "curated"], restricted=True,
                                              partition=key))


def test_partition_metadata_and_index_hold_no_text(runs):
    storage = PipelineStorage(home=str(runs["parted_home"]))
    index_dir = storage.restricted_root() / "dedup_index" / DATASET
    files = sorted(p.name for p in index_dir.glob("*.parquet"))
    assert files == [f"{k}.parquet" for k in KEYS]
    entries = pl.read_parquet(index_dir / "day1.jsonl.parquet")
    assert set(entries.columns) == {"partition", "record_id", "content_hash", "kept_by",
                                    "params", "signature", "bands"}
    own = entries.filter(pl.col("kept_by") == "day1.jsonl:" + pl.col("record_id"))
    assert own["record_id"].sort().to_list() == _stage_partition(
        storage, "day1.jsonl")["record_id"].sort().to_list()
    result = runs["results"]["day2.jsonl"]
    mats = [m for m in result.get_asset_materialization_events()
            if m.asset_key.path == [DATASET, "curated"]]
    assert mats[0].partition == "day2.jsonl"
    assert mats[0].materialization.metadata["unchanged"].value is False


def _materialization(result, stage: str):
    (event,) = [m for m in result.get_asset_materialization_events()
                if m.asset_key.path == [DATASET, stage]]
    return event.materialization.metadata


def test_an_unchanged_partition_is_not_reprocessed(runs, monkeypatch):
    """Counted: the curation and redaction functions are not called for an unchanged input."""
    import ftdata_pipeline.orchestration.assets as assets_module
    import ftdata_pipeline.stages.redact as redact_module  # imported by the redacting steps

    calls = {"curate": 0, "redact": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(assets_module, "curate", counting("curate", assets_module.curate))
    monkeypatch.setattr(redact_module, "redact", counting("redact", redact_module.redact))
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(runs["base"] / "parted"))
    storage = PipelineStorage(home=str(runs["parted_home"]))
    before = _stage_partition(storage, "day2.jsonl")

    again = _run(runs["defs"], runs["instance"], "day2.jsonl")
    assert calls == {"curate": 0, "redact": 0}
    assert _materialization(again, "curated")["unchanged"].value is True
    assert _materialization(again, "redacted")["unchanged"].value is True
    assert _stage_partition(storage, "day2.jsonl").equals(before)

    # a file that changed is processed again, and only that partition
    landing = runs["base"] / "parted" / "landing" / "day1.jsonl"
    lines = landing.read_text("utf-8").splitlines(keepends=True)
    landing.write_text("".join(lines[:-1]), "utf-8")  # one ticket fewer
    changed = _run(runs["defs"], runs["instance"], "day1.jsonl")
    assert calls == {"curate": 1, "redact": 1}
    assert _materialization(changed, "curated")["unchanged"].value is False


def test_erasure_reaches_the_partition_holding_the_row(runs, monkeypatch, capsys):
    from dagster import AssetKey

    from ftdata_pipeline.cli import main
    from ftdata_pipeline.governance.catalog import Catalog, default_catalog_url

    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(runs["base"] / "parted"))
    monkeypatch.setenv("FTDATA_HOME", str(runs["parted_home"]))
    storage = PipelineStorage(home=str(runs["parted_home"]))
    index_file = storage.restricted_root() / "dedup_index" / DATASET / "day1.jsonl.parquet"
    curated = _stage_partition(storage, "day1.jsonl")
    record_id = curated.filter(pl.col("source_key") == "T-000002")["record_id"].item()
    assert record_id in pl.read_parquet(index_file)["record_id"].to_list()
    catalog = Catalog(default_catalog_url(str(runs["parted_home"])))
    request = catalog.request_erasure("support_tickets", keys=["T-000002"], reason="test")

    # a run of another partition applies the request to its rows, but cannot fulfil it
    other = _run(runs["defs"], runs["instance"], "day2.jsonl")
    (raw_meta,) = [m.materialization.metadata for m in other.get_asset_materialization_events()
                   if m.asset_key == AssetKey(["raw", "support_tickets"])]
    assert raw_meta["erasure_pending_in_partitions"].value == {str(request): ["day1.jsonl"]}
    assert [r.status for r in catalog.erasure_requests("support_tickets")] == ["pending"]
    assert main(["erasure", "list"]) == 0
    assert "partition(s) day1.jsonl: rematerialize them" in capsys.readouterr().out

    # the raw partition drops the row and takes it out of the dedup index at once ...
    raw_only = runs["defs"].resolve_job_def(JOB).execute_in_process(
        instance=runs["instance"], partition_key="day1.jsonl", raise_on_error=False,
        asset_selection=[AssetKey(["raw", "support_tickets"])],
    )
    assert raw_only.success
    (req,) = catalog.erasure_requests("support_tickets")
    assert (req.status, req.rows_erased) == ("fulfilled", 1)
    assert record_id not in pl.read_parquet(index_file)["record_id"].to_list()
    raw = pl.read_parquet(storage.asset_path(["raw", "support_tickets"], restricted=True,
                                             partition="day1.jsonl"))
    assert "T-000002" not in raw["source_key"].to_list()
    # ... and the partition's next run removes it from every later stage
    _run(runs["defs"], runs["instance"], "day1.jsonl")
    assert record_id not in _stage_partition(storage, "day1.jsonl")["record_id"].to_list()
    assert record_id not in _stage(runs["parted_home"], "redacted", False)["record_id"].to_list()
    assert main(["erasure", "list"]) == 0
    assert "rematerialize them" not in capsys.readouterr().out
