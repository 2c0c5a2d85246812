"""An erasure request cannot be void: a run with another key (or none) refuses to apply it and
keeps it pending; ``ftdata erasure list`` says where each subject's rows still are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ftdata_pipeline.cli import main
from ftdata_pipeline.config.loader import load_project
from ftdata_pipeline.governance.card import render_card
from ftdata_pipeline.governance.catalog import Catalog
from ftdata_pipeline.governance.erasure import (
    ErasureError,
    current_fingerprint,
    erasure_summary,
    subject_hash,
)
from ftdata_pipeline.orchestration.governance import CatalogResource
from ftdata_pipeline.stages.raw import load_source

KEY_A = "key-a-" + "0123456789abcdef" * 3
KEY_B = "key-b-" + "fedcba9876543210" * 3
ROWS = [
    {"id": "A", "body": "hello there", "email": "Ann@Example.com"},
    {"id": "B", "body": "second", "email": "bob@example.com"},
    {"id": "C", "body": "third", "email": "ann@example.com"},
]


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    config = tmp_path / "configs"
    (config / "datasets").mkdir(parents=True)
    sources = {"sources": {"s": {
        "kind": "file", "path": str(tmp_path / "s.jsonl"), "format": "jsonl", "key": "id",
        "subject_field": "email", "mapping": {"text": "body"}, "owner": "o@example.com",
        "licence": "x", "classification": "internal", "contains_pii": True}}}
    (config / "sources.yaml").write_text(yaml.safe_dump(sources))
    (config / "datasets" / "d.yaml").write_text(yaml.safe_dump(
        {"kind": "pretraining", "sources": ["s"], "exports": {"formats": ["trl_text"]}}))
    monkeypatch.setenv("FTDATA_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    return config, url, load_project(config)


def _request(config, url, *extra) -> int:
    return main(["--config-dir", str(config), "erasure", "request", "--source", "s",
                 "--subject-id", "ANN@example.com", "--catalog-url", url, *extra])


def test_a_run_with_another_key_refuses_and_the_request_stays_pending(project, monkeypatch):
    config, url, proj = project
    monkeypatch.setenv("FTDATA_SUBJECT_HASH_KEY", KEY_A)
    fp_a = current_fingerprint()
    assert _request(config, url) == 0
    catalog = Catalog(url)
    [req] = catalog.erasure_requests()
    assert req.items[0].key_fingerprint == fp_a and KEY_A not in json.dumps(fp_a)

    cfg = proj.sources["s"]
    resource = CatalogResource(url=url)
    df = load_source("s", cfg, Path(proj.root))
    monkeypatch.setenv("FTDATA_SUBJECT_HASH_KEY", KEY_B)
    fp_b = current_fingerprint()
    with pytest.raises(ErasureError) as err:
        resource.raw_erasure("run-b", "s", cfg, proj.root, df, "h")
    message = str(err.value)
    assert f"request #{req.id} was hashed with the key of fingerprint {fp_a}" in message
    assert f"FTDATA_SUBJECT_HASH_KEY has fingerprint {fp_b}" in message
    assert "example.com" not in message.casefold()
    assert [r.status for r in catalog.erasure_requests()] == ["pending"]
    assert catalog.audit_log(limit=1)[0].action == "erasure_refused"

    monkeypatch.delenv("FTDATA_SUBJECT_HASH_KEY")
    with pytest.raises(ErasureError, match="FTDATA_SUBJECT_HASH_KEY is not set"):
        resource.raw_erasure("run-none", "s", cfg, proj.root, df, "h")
    assert [r.status for r in catalog.erasure_requests()] == ["pending"]

    monkeypatch.setenv("FTDATA_SUBJECT_HASH_KEY", KEY_A)  # the right key applies it
    outcome = resource.raw_erasure("run-a", "s", cfg, proj.root, df, "h")
    assert sorted(outcome.kept["source_key"].to_list()) == ["B"]
    [done] = catalog.erasure_requests()
    assert (done.status, done.fulfilled_run_id, done.rows_erased) == ("fulfilled", "run-a", 2)
    catalog.dispose()


def test_request_without_key_refused_unless_explicit_then_reported_unkeyed(
    project, monkeypatch, capsys, tmp_path
):
    config, url, _ = project
    monkeypatch.delenv("FTDATA_SUBJECT_HASH_KEY", raising=False)
    assert _request(config, url) == 2
    assert "--allow-unkeyed" in capsys.readouterr().err
    assert Catalog(url).erasure_requests() == []
    assert _request(config, url, "--allow-unkeyed") == 0
    assert "UNKEYED" in capsys.readouterr().out
    assert main(["--config-dir", str(config), "erasure", "list", "--catalog-url", url]) == 0
    listing = capsys.readouterr().out
    assert "subject ids 1 UNKEYED sha256" in listing
    assert "source system 2 row(s)" in listing  # the unkeyed hash still locates them
    # ... and the dataset card says so
    catalog = Catalog(url)
    summary = erasure_summary(catalog, ["s"])
    assert summary == {"requests": 1, "pending": 1, "fulfilled": 0, "unkeyed": 1}
    from ftdata_pipeline.config.models import RecipeConfig

    recipe = RecipeConfig.model_validate(
        {"name": "d", "kind": "pretraining", "sources": ["s"],
         "exports": {"formats": ["trl_text"]}})
    paths = render_card(recipe, {}, [], {}, {}, {}, {}, tmp_path / "card", erasure=summary)
    md = paths["markdown"].read_text()
    assert "Erasure requests on these sources: 1 (0 fulfilled, 1 pending)." in md
    assert "1 identify their data subject by an UNKEYED hash" in md
    catalog.dispose()


def test_erasure_list_shows_where_each_subjects_rows_still_are(project, monkeypatch, capsys):
    config, url, _ = project
    monkeypatch.setenv("FTDATA_SUBJECT_HASH_KEY", KEY_A)
    assert _request(config, url) == 0
    assert main(["--config-dir", str(config), "erasure", "request", "--source", "s",
                 "--key", "B", "--catalog-url", url]) == 0
    capsys.readouterr()
    assert main(["--config-dir", str(config), "erasure", "list", "--catalog-url", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"hmac-sha256, key fingerprint {current_fingerprint()}; pending" in lines[0]
    assert lines[1] == ("    rows now: source system 2 row(s) (kept out of every run; delete "
                        "them there); raw/s not stored; exports 0")
    assert lines[3] == "    rows now: raw/s not stored; exports 0"
    # under another key, the report says it cannot locate them, and why
    monkeypatch.setenv("FTDATA_SUBJECT_HASH_KEY", KEY_B)
    assert main(["--config-dir", str(config), "erasure", "list", "--catalog-url", url]) == 0
    out = capsys.readouterr().out
    assert "subject rows: cannot be located: erasure request #1 was hashed with the key of " \
           "fingerprint" in out
    assert "example.com" not in out.casefold()


def test_subject_hash_of_a_value_is_not_its_fingerprint(monkeypatch):
    monkeypatch.setenv("FTDATA_SUBJECT_HASH_KEY", KEY_A)
    assert current_fingerprint() not in subject_hash("ann@example.com")[1]
