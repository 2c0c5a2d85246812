"""An empty, truncated or shrunken landing file never replaces a good export; bad lines are kept aside."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import polars as pl
import pytest
import yaml
from dagster import AssetKey, DagsterInstance

from ftdata_pipeline.definitions import build_definitions
from ftdata_pipeline.sources.guard import ALLOW_SHRINK_ENV, input_guard, shrink_allowed

WORDS = "customers can export their invoices from the billing page every month without help".split()


def rows(n: int) -> list[dict]:
    return [{"id": f"A-{i:03d}", "body": f"Article {i}: " + " ".join(WORDS[i % 5:] + WORDS[:i % 5])}
            for i in range(n)]


def write(path: Path, items: list[dict], extra: bytes = b"") -> None:
    path.write_bytes("".join(json.dumps(r) + "\n" for r in items).encode() + extra)


@pytest.fixture
def project(tmp_path, monkeypatch):
    data = tmp_path / "landing" / "articles.jsonl"
    data.parent.mkdir()
    config_dir = tmp_path / "configs"
    (config_dir / "datasets").mkdir(parents=True)
    sources = {"sources": {"articles": {
        "kind": "file", "path": str(data), "format": "jsonl", "key": "id",
        "mapping": {"text": "body"}, "on_bad_rows": "quarantine", "max_drop_fraction": 0.5,
        "owner": "docs@example.com", "licence": "CC-BY-4.0", "classification": "public",
        "contains_pii": False}}}
    (config_dir / "sources.yaml").write_text(yaml.safe_dump(sources))
    recipe = {"kind": "pretraining", "sources": ["articles"],
              "curate": {"near_dedup": {"enabled": False}, "dedup": "none",
                         "language": {"enabled": False}},
              "split": {"ratios": {"train": 0.8, "validation": 0.1, "test": 0.1}},
              "exports": {"formats": ["trl_text"]}}
    (config_dir / "datasets" / "kb.yaml").write_text(yaml.safe_dump(recipe))
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(tmp_path))
    monkeypatch.delenv(ALLOW_SHRINK_ENV, raising=False)
    defs = build_definitions(config_dir, home=str(tmp_path / "home"))
    instance = DagsterInstance.ephemeral()

    def run(raw_only: bool = False):
        job = defs.resolve_job_def("kb_job")
        selection = [AssetKey(["raw", "articles"])] if raw_only else None
        result = job.execute_in_process(instance=instance, raise_on_error=False,
                                        asset_selection=selection)
        checks = {
            e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
            and e.asset_check_evaluation_data.asset_key == AssetKey(["raw", "articles"])
        }
        materialized = {e.asset_key.to_user_string(): e for e in result.all_events
                        if e.event_type_value == "ASSET_MATERIALIZATION"}
        return result, checks, materialized

    return data, tmp_path / "home", run


def test_empty_or_shrunken_input_blocks_and_keeps_the_previous_export(project, monkeypatch):
    data, home, run = project
    write(data, rows(40))
    result, checks, _ = run()
    assert result.success and checks["input_not_shrunk"].passed
    manifest = home / "exports" / "kb" / "manifest.json"
    before = manifest.read_bytes()

    data.write_bytes(b"")  # a 0-byte landing file
    result, checks, materialized = run()
    assert not result.success
    assert not checks["input_not_shrunk"].passed
    assert "no rows" in checks["input_not_shrunk"].description
    assert not {"kb/curated", "kb/exports"} & set(materialized)
    assert manifest.read_bytes() == before

    write(data, rows(40)[:12])  # 70% fewer rows than the accepted run
    result, checks, _ = run(raw_only=True)
    assert not result.success and not checks["input_not_shrunk"].passed
    assert "70% fewer than the previous accepted run's 40" in checks["input_not_shrunk"].description
    # the rejected runs did not become the baseline: the same file fails again
    result, checks, _ = run(raw_only=True)
    assert not checks["input_not_shrunk"].passed

    monkeypatch.setenv(ALLOW_SHRINK_ENV, "articles")  # an intended shrink
    result, checks, _ = run(raw_only=True)
    assert result.success and checks["input_not_shrunk"].passed
    assert checks["input_not_shrunk"].metadata["overridden"].value is True


def test_truncated_landing_file_is_not_a_green_run(project):
    data, home, run = project
    write(data, rows(40))
    assert run(raw_only=True)[0].success
    text = data.read_bytes()
    data.write_bytes(text[: len(text) // 3])  # half-uploaded: ends inside a line
    result, checks, materialized = run(raw_only=True)
    assert not result.success
    assert not checks["input_not_shrunk"].passed
    meta = materialized["raw/articles"].materialization.metadata
    assert meta["rows_quarantined"].value == 1  # the cut line, kept aside


def test_bad_lines_quarantined_in_the_restricted_zone_and_counted(project):
    data, home, run = project
    write(data, rows(20), extra=b'{"id": "A-900", "body": "unterminated\n\xff\xfe not utf8\n')
    result, checks, materialized = run(raw_only=True)
    assert result.success
    meta = materialized["raw/articles"].materialization.metadata
    assert meta["rows_quarantined"].value == 2
    assert meta["quarantined_by_reason"].value == {"malformed JSON": 1, "not UTF-8 text": 1}
    q = home / "restricted" / "quarantine" / "articles.parquet"
    assert stat.S_IMODE(q.stat().st_mode) & 0o077 == 0  # owner-only
    frame = pl.read_parquet(q)
    assert frame["line"].to_list() == [21, 22]
    assert frame["file"].to_list() == [str(data)] * 2


def test_guard_rules():
    assert not input_guard("s", 0, None, 0.5).passed
    assert input_guard("s", 60, 100, 0.5).passed
    assert not input_guard("s", 40, 100, 0.5).passed
    assert input_guard("s", 40, 100, None).passed  # size guard off: only zero rows fail
    assert input_guard("s", 40, 100, 0.5, allow_shrink=True).overridden
    assert shrink_allowed("s", {ALLOW_SHRINK_ENV: "a, s"}) and shrink_allowed("x", {ALLOW_SHRINK_ENV: "*"})
    assert not shrink_allowed("s", {})
