"""End to end on a tiny config, on SQLite and PostgreSQL catalogs: record lineage round trip
(export line -> raw row, source -> export files) and erasure by key and by subject id."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
import yaml
from dagster import DagsterInstance

from ftdata_pipeline.cli import main
from ftdata_pipeline.definitions import build_definitions
from ftdata_pipeline.governance.catalog import Catalog
from ftdata_pipeline.governance.models import Base

ROOT = Path(__file__).resolve().parents[2]
DATASET = "tiny_intents"
N_TICKETS = 60
RECIPE = {
    "kind": "classification",
    "sources": ["support_tickets"],
    "curate": {"min_chars": 20, "min_words": 4},
    "redact": {"allow_list": ["Acme", "Firefox", "Dashboard"]},
    "label": {
        "method": "rules",
        "label_set": ["billing", "other"],
        "rules": [{"label": "billing", "pattern": "(?i)invoice|charge|refund|billing"},
                  {"label": "other", "pattern": "."}],
    },
    "split": {"seed": 3, "ratios": {"train": 0.6, "validation": 0.2, "test": 0.2}},
    "exports": {"formats": ["classification_jsonl", "openai_chat"]},
}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A config dir with sources.yaml (tickets cut to 60, subject_field set) and one recipe."""
    config = tmp_path / "configs"
    (config / "datasets").mkdir(parents=True)
    lines = (ROOT / "demo_data" / "support_tickets.jsonl").read_text().splitlines()[:N_TICKETS]
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text("\n".join(lines) + "\n")
    sources = yaml.safe_load((ROOT / "configs" / "sources.yaml").read_text())
    sources["sources"]["support_tickets"].update(path=str(tickets),
                                                 subject_field="customer_email")
    (config / "sources.yaml").write_text(yaml.safe_dump(sources))
    (config / "datasets" / f"{DATASET}.yaml").write_text(yaml.safe_dump(RECIPE))
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(ROOT))
    monkeypatch.setenv("FTDATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FTDATA_SUBJECT_HASH_KEY", "2f7c9e1a4b8d3f60e5a1c7b9d2e4f8a03c6b1d9e7f2a5c8b0d4e6f1a3b9c7d52")
    return config, tmp_path / "home", [json.loads(x) for x in lines]


def _materialize(config, home, url):
    defs = build_definitions(config, home=str(home), catalog_url=url)
    result = defs.resolve_job_def(f"{DATASET}_job").execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert result.success
    return result


def _exported(home) -> dict[str, list[dict]]:
    """Per export file: its lines (provenance merged in from sidecars)."""
    out = {}
    for path in sorted((home / "exports" / DATASET).rglob("*.jsonl")):
        out[str(path.relative_to(home / "exports" / DATASET))] = [
            json.loads(x) for x in path.read_text().splitlines()
        ]
    return out


def _keys_everywhere(home) -> dict[str, set[str]]:
    """source_key values of support_tickets rows in every stored Parquet file and export."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in home.rglob("*.parquet"):
        df = pl.read_parquet(path)
        if {"source", "source_key"} <= set(df.columns):
            keys = df.filter(pl.col("source") == "support_tickets")["source_key"].to_list()
            found[str(path.relative_to(home))].update(keys)
    for path, lines in _exported(home).items():
        found[f"exports/{path}"].update(
            x["source_key"] for x in lines if x.get("source") == "support_tickets"
        )
    return found


def _raw_metadata(result):
    [mat] = [e.event_specific_data.materialization for e in result.all_events
             if e.event_type_value == "ASSET_MATERIALIZATION"
             and e.asset_key.to_user_string() == "raw/support_tickets"]
    return {k: v.value for k, v in mat.metadata.items()}


def test_lineage_round_trip_and_erasure_end_to_end(tiny, catalog_url, capsys):
    config, home, tickets = tiny
    first = _materialize(config, home, catalog_url)
    catalog = Catalog(catalog_url)

    # --- lineage: every exported line maps back to its raw row, at the recorded line ------
    files = _exported(home)
    data_file = "classification_jsonl/train.jsonl"
    example = files[data_file][0]
    [entry] = catalog.lineage_of_record(example["id"])
    assert (entry["source"], entry["source_key"]) == ("support_tickets", example["source_key"])
    assert entry["run_id"] == first.run_id
    assert f"{data_file}:1" in entry["files"]
    for ref in entry["files"]:  # strict formats: the line is in the provenance sidecar
        rel, line = ref.rsplit(":", 1)
        if rel.startswith("openai_chat/") and not rel.endswith(".provenance.jsonl"):
            rel = rel.replace(".jsonl", ".provenance.jsonl")
        lines = files[rel]
        assert lines[int(line) - 1]["id"] == example["id"]
    n_exported = sum(len(v) for k, v in files.items() if k.startswith("classification_jsonl/"))
    summary = catalog.source_summary("support_tickets")
    assert sum(s["records"] for s in summary) == n_exported
    [by_key] = catalog.lineage_of_source("support_tickets", example["source_key"])
    assert by_key["record_id"] == example["id"]

    raw_ticket = next(t for t in tickets if t["ticket_id"] == example["source_key"])
    assert main(["--config-dir", str(config), "lineage", example["id"],
                 "--catalog-url", catalog_url]) == 0
    out = capsys.readouterr().out
    assert f"source support_tickets, source_key {example['source_key']}" in out
    assert "curated: kept" in out and "split: kept (train)" in out
    assert str(home / "exports" / DATASET / data_file) + ":1" in out
    assert raw_ticket["customer_email"] not in out and raw_ticket["body"][:30] not in out
    assert main(["--config-dir", str(config), "lineage", example["id"], "--show-raw",
                 "--catalog-url", catalog_url]) == 0
    assert raw_ticket["ticket_id"] in capsys.readouterr().out
    assert main(["lineage", "--source", "support_tickets", "--catalog-url", catalog_url]) == 0
    assert "classification_jsonl/train.jsonl" in capsys.readouterr().out

    # --- erasure: one ticket by key, one customer by e-mail ---------------------------------
    exported_keys = {x["source_key"] for x in files[data_file]}
    by_key = sorted(exported_keys)[0]
    by_key_email = next(t["customer_email"] for t in tickets if t["ticket_id"] == by_key)
    subject = next(t for t in tickets
                   if t["ticket_id"] in exported_keys and t["customer_email"] != by_key_email)
    email = subject["customer_email"]
    subject_keys = {t["ticket_id"] for t in tickets if t["customer_email"] == email}
    erased = subject_keys | {by_key}
    before = _keys_everywhere(home)
    for key in (by_key, subject["ticket_id"]):  # present before, in data files and sidecars
        assert key in before["exports/" + data_file]
        assert key in before["exports/openai_chat/train.provenance.jsonl"]
        assert key in before["restricted/raw/support_tickets.parquet"]
        assert key in before[f"storage/{DATASET}/split.parquet"]

    assert main(["--config-dir", str(config), "erasure", "request", "--source",
                 "support_tickets", "--key", by_key, "--reason", "ticket 123",
                 "--catalog-url", catalog_url]) == 0
    assert main(["--config-dir", str(config), "erasure", "request", "--source",
                 "support_tickets", "--subject-id", email.upper() + " ",
                 "--catalog-url", catalog_url]) == 0
    capsys.readouterr()
    assert [r.status for r in catalog.erasure_requests()] == ["pending", "pending"]

    second = _materialize(config, home, catalog_url)
    meta = _raw_metadata(second)
    assert meta["rows_erased"] == len(erased)
    assert meta["rows_read"] == meta["rows_kept"] + meta["rows_erased"] == N_TICKETS
    after = _keys_everywhere(home)
    assert after and not erased & set().union(*after.values())
    assert catalog.lineage_of_source("support_tickets", by_key) == []

    requests = catalog.erasure_requests()
    assert [(r.status, r.fulfilled_run_id) for r in requests] == [
        ("fulfilled", second.run_id), ("fulfilled", second.run_id)]
    assert [r.rows_erased for r in requests] == [1, len(subject_keys)]
    actions = [(e.action, e.run_id) for e in catalog.audit_log(limit=20)]
    assert ("erasure_fulfilled", second.run_id) in actions
    assert [a for a, _ in actions].count("erasure_request") == 2
    [mat2] = [e for e in catalog.audit_log() if e.action == "materialize"
              and e.run_id == second.run_id]
    assert mat2.details["records_delta"] < 0 and mat2.previous_config_hash == mat2.config_hash
    assert main(["erasure", "list", "--catalog-url", catalog_url]) == 0
    listing = capsys.readouterr().out
    assert f"fulfilled by run {second.run_id}" in listing and "STILL" not in listing

    # --- the catalog never holds the subject identifier in clear ---------------------------
    with catalog.engine.connect() as conn:
        dump = json.dumps([[list(r) for r in conn.execute(sa.select(t))]
                           for t in Base.metadata.sorted_tables], default=str).casefold()
    assert email.casefold() not in dump
    catalog.dispose()
