"""A recipe's ERROR expectation stops the data at that stage; a WARN one only reports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

from ftdata_pipeline.definitions import build_definitions

ROOT = Path(__file__).resolve().parents[2]

RECIPE = {
    "kind": "pretraining",
    "sources": ["kb_articles"],
    "curate": {"min_chars": 20, "min_words": 3},
    "split": {"ratios": {"train": 0.8, "validation": 0.1, "test": 0.1}},
    "exports": {"formats": ["trl_text"]},
}


def _run(tmp_path: Path, monkeypatch, severity: str):
    config_dir = tmp_path / "configs"
    (config_dir / "datasets").mkdir(parents=True)
    shutil.copy(ROOT / "configs" / "sources.yaml", config_dir / "sources.yaml")
    recipe = {
        **RECIPE,
        "expectations": {
            "curated": [
                {
                    # no help-center article is a million characters long: always fails
                    "expectation": "expect_column_value_lengths_to_be_between",
                    "kwargs": {"column": "text", "min_value": 1_000_000},
                    "severity": severity,
                }
            ]
        },
    }
    (config_dir / "datasets" / "kb_corpus.yaml").write_text(yaml.safe_dump(recipe))
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(ROOT))
    defs = build_definitions(config_dir, home=str(tmp_path / "home"))
    instance = DagsterInstance.ephemeral()
    result = defs.resolve_job_def("kb_corpus_job").execute_in_process(
        instance=instance, raise_on_error=False
    )
    materialized = {
        e.asset_key.to_user_string()
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    }
    checks = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.asset_key.to_user_string() == "kb_corpus/curated"
    }
    return result, materialized, checks


def test_error_expectation_blocks_downstream(tmp_path, monkeypatch):
    result, materialized, checks = _run(tmp_path, monkeypatch, "error")
    assert not result.success
    assert not checks["recipe_expectations"].passed
    assert checks["default_suite"].passed
    assert "kb_corpus/curated" in materialized
    assert not {"kb_corpus/redacted", "kb_corpus/split", "kb_corpus/exports"} & materialized
    assert not (tmp_path / "home" / "exports" / "kb_corpus").exists()


def test_warn_expectation_reports_but_does_not_block(tmp_path, monkeypatch):
    result, materialized, checks = _run(tmp_path, monkeypatch, "warn")
    assert result.success
    assert not checks["recipe_expectations"].passed
    assert checks["recipe_expectations"].severity.value == "WARN"
    assert {"kb_corpus/redacted", "kb_corpus/exports", "kb_corpus/card"} <= materialized
    assert (tmp_path / "home" / "exports" / "kb_corpus" / "manifest.json").exists()
