"""Governance facts recorded by the session's demo run (SQLite catalog in its FTDATA_HOME):
catalog contents, lineage of a preference pair, restricted zone, card versions."""

from __future__ import annotations

import json

import pytest

from ftdata_pipeline.cli import main
from ftdata_pipeline.formats.writer import read_manifest
from ftdata_pipeline.governance.catalog import Catalog
from ftdata_pipeline.orchestration.storage import PipelineStorage

pytestmark = pytest.mark.integration

STAGES = ("curated", "redacted", "labeled", "split")


@pytest.fixture
def catalog(demo_run):
    home, _ = demo_run
    catalog = Catalog(f"sqlite:///{home / 'catalog.db'}")
    yield catalog
    catalog.dispose()


def test_catalog_records_sources_stages_versions_exports_and_audit(demo_run, project, catalog):
    home, result = demo_run
    assert {s.name: s.classification for s in catalog.sources()} == {
        n: s.classification for n, s in project.sources.items()}
    for name, recipe in project.recipes.items():
        runs = {r.stage: r for r in catalog.stage_runs(dataset=name, run_id=result.run_id)}
        assert set(runs) == set(STAGES)
        for r in runs.values():
            assert r.rows_in == r.rows_kept + r.rows_rejected
            assert sum(r.drops.values()) == r.rows_rejected and len(r.data_version) == 64
        [version] = catalog.versions(name, limit=1)
        assert version.run_id == result.run_id and version.code_version
        assert set(version.inputs) >= set(recipe.sources)
        assert all(v["data_version"] and v["rows"] for v in version.inputs.values())
        manifest = read_manifest(home / "exports" / name)
        assert version.config_hash == manifest["config_hash"]
        assert {(f.path, f.sha256, f.records) for f in version.exports} == {
            (f["path"], f["sha256"], f["records"]) for f in manifest["files"]}
    raw = catalog.latest_raw("support_tickets")
    assert raw.input_version["sha256"] and raw.rows_in == raw.rows_kept + raw.rows_erased
    audit = [e for e in catalog.audit_log(limit=100) if e.run_id == result.run_id]
    assert sorted(e.dataset for e in audit if e.action == "materialize") == sorted(
        project.recipes)
    assert all(e.user and e.host for e in audit)


def test_preference_pair_traces_back_to_both_ranked_rows(demo_run, catalog, monkeypatch,
                                                         capsys):
    home, _ = demo_run
    path = home / "exports" / "response_preferences" / "trl_preference" / "train.jsonl"
    pair = json.loads(path.read_text().splitlines()[0])
    # response_reward_dpo pairs the same responses, so a pair id can be in both datasets
    [entry] = [e for e in catalog.lineage_of_record(pair["id"])
               if e["dataset"] == "response_preferences"]
    assert entry["source"] == "response_rankings" and ">" in entry["source_key"]
    monkeypatch.setenv("FTDATA_HOME", str(home))
    assert main(["lineage", pair["id"], "--catalog-url", catalog.url]) == 0
    out = capsys.readouterr().out
    chosen, rejected = pair["source_key"].split(">")
    assert f"raw row: response_rankings / {chosen}" in out
    assert f"raw row: response_rankings / {rejected}" in out
    assert "labeled: kept" in out and "trl_preference/train.jsonl:1" in out
    assert pair["chosen"][:40] not in out  # content is never printed without --show-raw


def test_source_to_exports_and_rejected_record_lineage(demo_run, catalog, monkeypatch, capsys):
    home, _ = demo_run
    summary = catalog.source_summary("support_tickets")
    assert {s["dataset"] for s in summary} == {"support_assistant", "support_corpus",
                                               "ticket_intents"}
    monkeypatch.setenv("FTDATA_HOME", str(home))
    # a record curation dropped: lineage shows the stage, rule and that it is in no export
    storage = PipelineStorage(home=str(home))
    index = storage.read_reject_index("ticket_intents", "curated", restricted=True)
    dropped = index.row(0, named=True)
    assert main(["lineage", dropped["record_id"], "--catalog-url", catalog.url]) == 0
    out = capsys.readouterr().out
    assert f"curated: REJECTED rule={dropped['rule']}" in out
    assert "not in any current export" in out


def test_restricted_zone_and_previews(demo_run):
    home, result = demo_run
    for path in [home / "restricted" / "raw", home / "restricted" / "ticket_intents"]:
        assert path.is_dir() and path.stat().st_mode & 0o077 == 0
    assert (home / "restricted" / "ticket_intents" / "curated.parquet").exists()
    assert not (home / "storage" / "ticket_intents" / "curated.parquet").exists()
    assert not (home / "storage" / "raw").exists()
    assert (home / "storage" / "ticket_intents" / "redacted.parquet").exists()
    previews = {}
    for e in result.all_events:
        if e.event_type_value == "ASSET_MATERIALIZATION":
            mat = e.event_specific_data.materialization
            previews[mat.asset_key.to_user_string()] = "preview" in mat.metadata
    assert not any(v for k, v in previews.items() if k.startswith("raw/")
                   or k.endswith("/curated"))
    assert previews["ticket_intents/redacted"]


def test_card_names_versions_and_lineage(demo_run, catalog):
    home, _ = demo_run
    card = (home / "cards" / "ticket_intents" / "README.md").read_text()
    facts = json.loads((home / "cards" / "ticket_intents" / "card.json").read_text())
    assert facts["code_version"] and "| code version |" in card
    dv = catalog.latest_raw("support_tickets").data_version
    assert facts["input_data_versions"]["support_tickets"] == dv and dv in card
    assert "## Lineage and erasure" in card and "ftdata lineage" in card
