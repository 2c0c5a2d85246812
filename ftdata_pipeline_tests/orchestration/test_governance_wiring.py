"""Dagster wiring of governance: owners, column lineage, data versions, the catalog resource."""

from __future__ import annotations

import pytest
from dagster import AssetKey

from ftdata_pipeline.definitions import build_definitions
from ftdata_pipeline.orchestration.governance import CatalogResource, dagster_owner


def test_owner_conversion():
    assert dagster_owner("support-ops@acmecloud.example") == "support-ops@acmecloud.example"
    assert dagster_owner("team:ml") == "team:ml"
    assert dagster_owner("Data Platform (EU)") == "team:Data_Platform_EU"


def test_raw_assets_have_owners_and_the_catalog_resource(tmp_path, project):
    defs = build_definitions(home=str(tmp_path), catalog_url=f"sqlite:///{tmp_path}/c.db")
    graph = defs.resolve_asset_graph()
    for name, cfg in project.sources.items():
        assert graph.get(AssetKey(["raw", name])).owners == [dagster_owner(cfg.owner)]
    resource = defs.resources["catalog"]
    assert isinstance(resource, CatalogResource) and resource.url.endswith("/c.db")


def test_default_catalog_is_sqlite_in_home_unless_url_env(tmp_path, monkeypatch):
    monkeypatch.delenv("FTDATA_CATALOG_URL", raising=False)
    defs = build_definitions(home=str(tmp_path))
    assert defs.resources["catalog"].url == f"sqlite:///{tmp_path.resolve()}/catalog.db"
    monkeypatch.setenv("FTDATA_CATALOG_URL", "postgresql+psycopg://u@db/catalog")
    assert build_definitions(home=str(tmp_path)).resources["catalog"].url.startswith(
        "postgresql+psycopg://")


@pytest.mark.integration
def test_stage_materializations_carry_column_lineage_and_data_versions(demo_run):
    _, result = demo_run
    mats = {}
    for e in result.all_events:
        if e.event_type_value == "ASSET_MATERIALIZATION":
            mat = e.event_specific_data.materialization
            mats[mat.asset_key.to_user_string()] = mat
    curated = mats["ticket_intents/curated"].metadata["dagster/column_lineage"].value
    deps = curated.deps_by_column["text"]
    assert [(d.asset_key.to_user_string(), d.column_name) for d in deps] == [
        ("raw/support_tickets", "text")]
    redacted = mats["support_assistant/redacted"].metadata["dagster/column_lineage"].value
    assert {d.asset_key.to_user_string() for d in redacted.deps_by_column["messages"]} == {
        "support_assistant/curated"}
    pairs = mats["response_preferences/labeled"].metadata["dagster/column_lineage"].value
    assert ("response_preferences/redacted", "response") in {
        (d.asset_key.to_user_string(), d.column_name) for d in pairs.deps_by_column["chosen"]}
    for key in ("raw/support_tickets", "ticket_intents/curated", "ticket_intents/split",
                "ticket_intents/exports"):
        assert len(mats[key].tags["dagster/data_version"]) == 64, key
    raw = mats["raw/support_tickets"].metadata
    assert raw["rows_read"].value == raw["rows_kept"].value + raw["rows_erased"].value
