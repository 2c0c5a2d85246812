"""The size guard: an empty or much smaller export fails before the swap and the previous one
stays published, unless the shrink is explicitly accepted."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml
from dagster import DagsterInstance

from ftdata_pipeline.definitions import build_definitions
from ftdata_pipeline.formats.guard import check_shrink
from ftdata_pipeline.formats.writer import read_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("previous", "new", "limit", "allow", "passed", "reason"),
    [
        (100, 100, 0.5, "", True, "100 records (previously 100)"),
        (None, 5, 0.5, "", True, "5 records"),
        (100, 50, 0.5, "", True, "50 records"),
        (100, 49, 0.5, "", False, "from 100 to 49 (51%), more than exports.max_drop_fraction"),
        (100, 0, 0.5, "", False, "the new export has 0 records"),
        (None, 0, 0.5, "", False, "the new export has 0 records"),
        (100, 1, None, "", True, "1 records"),
        (100, 0, None, "", False, "0 records"),
        (100, 10, 0.5, "docs", True, "accepted by FTDATA_ALLOW_SHRINK"),
        (100, 0, 0.5, "other,*", True, "accepted by FTDATA_ALLOW_SHRINK"),
        (100, 10, 0.5, "other", False, "rerun with FTDATA_ALLOW_SHRINK=docs"),
    ],
)
def test_check_shrink(monkeypatch, previous, new, limit, allow, passed, reason):
    monkeypatch.setenv("FTDATA_ALLOW_SHRINK", allow)
    verdict = check_shrink("docs", previous, new, limit)
    assert verdict.passed is passed
    assert reason in verdict.reason


def test_truncated_source_keeps_the_previous_export_until_shrink_is_accepted(
    tmp_path, monkeypatch
):
    articles = tmp_path / "kb_articles.parquet"
    full = pl.read_parquet(ROOT / "demo_data" / "kb_articles.parquet")
    full.write_parquet(articles)
    sources = yaml.safe_load((ROOT / "configs" / "sources.yaml").read_text())
    sources["sources"]["kb_articles"]["path"] = str(articles)
    config_dir = tmp_path / "configs"
    (config_dir / "datasets").mkdir(parents=True)
    (config_dir / "sources.yaml").write_text(yaml.safe_dump(sources))
    recipe = {
        "kind": "pretraining", "sources": ["kb_articles"],
        "curate": {"min_chars": 20, "min_words": 3},
        "split": {"ratios": {"train": 0.8, "validation": 0.1, "test": 0.1}},
        # tighter than the raw input's guard, so the export's guard is what stops this run
        "exports": {"formats": ["trl_text"], "max_drop_fraction": 0.1},
    }
    (config_dir / "datasets" / "kb_corpus.yaml").write_text(yaml.safe_dump(recipe))
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(ROOT))
    monkeypatch.delenv("FTDATA_ALLOW_SHRINK", raising=False)
    home = tmp_path / "home"
    defs = build_definitions(config_dir, home=str(home))
    instance = DagsterInstance.ephemeral()
    job = defs.resolve_job_def("kb_corpus_job")

    def run():
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        checks = {
            e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
            and e.asset_check_evaluation_data.asset_key.to_user_string() == "kb_corpus/exports"
        }
        return result, checks

    result, checks = run()
    assert result.success and checks["no_unexpected_shrink"].passed
    out = home / "exports" / "kb_corpus"
    before = sum(read_manifest(out)["splits"].values())
    full.head(int(full.height * 0.7)).write_parquet(articles)  # a truncated upload

    result, checks = run()
    assert not result.success
    shrink = checks["no_unexpected_shrink"]
    assert not shrink.passed
    assert f"records would drop from {before} to " in shrink.description
    assert "FTDATA_ALLOW_SHRINK=kb_corpus" in shrink.description
    assert sum(read_manifest(out)["splits"].values()) == before  # previous export kept

    monkeypatch.setenv("FTDATA_ALLOW_SHRINK", "kb_corpus")
    result, checks = run()
    assert result.success, "an accepted shrink publishes"
    assert checks["no_unexpected_shrink"].passed
    assert checks["no_unexpected_shrink"].metadata["overridden"].value is True
    assert sum(read_manifest(out)["splits"].values()) < before * 0.9
