"""The ``ftdata`` command: validate, summary and their exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from ftdata_pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_validate_ok(capsys):
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "7 datasets" in out
    assert "ticket_intents: classification" in out
    assert "RLHF steps on disjoint prompts (sft 0.2, reward 0.6, rl 0.2)" in out


def test_validate_names_file_key_and_value(tmp_path, capsys):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    recipe = tmp_path / "configs" / "datasets" / "ticket_intents.yaml"
    recipe.write_text(recipe.read_text().replace("min_words: 8", "min_words: eight"))
    assert main(["--config-dir", str(tmp_path / "configs"), "validate"]) == 2
    err = capsys.readouterr().err
    assert str(recipe) in err
    assert "curate.min_words" in err
    assert "'eight'" in err


def test_validate_names_a_deployment_variable_that_would_fail_a_run(monkeypatch, capsys):
    monkeypatch.setenv("FTDATA_EXECUTOR", "dask")
    monkeypatch.setenv("FTDATA_DASK_WORKERS", "two")
    monkeypatch.setenv("FTDATA_PII_DASK_SCHEDULER", "dask.internal:8786")
    assert main(["validate", "--skip-data"]) == 2
    err = capsys.readouterr().err
    assert "FTDATA_DASK_WORKERS='two'" in err
    assert "FTDATA_PII_DASK_SCHEDULER='dask.internal:8786'" in err
    monkeypatch.setenv("FTDATA_DASK_WORKERS", "2")
    monkeypatch.setenv("FTDATA_PII_DASK_SCHEDULER", "tcp://dask.internal:8786")
    assert main(["validate", "--skip-data"]) == 0  # well-formed: not contacted by validate


def test_summary_before_any_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FTDATA_HOME", str(tmp_path))
    assert main(["summary"]) == 0
    assert "exports: not materialized yet" in capsys.readouterr().out


def _shared_source_configs(tmp_path: Path, seed: int, cross_dataset: str,
                           shared_sources: str = "pin") -> Path:
    """The demo configs with ticket_intents' split seed (and cross_dataset mode) set."""
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    recipe = configs / "datasets" / "ticket_intents.yaml"
    data = yaml.safe_load(recipe.read_text())
    assert data["split"]["seed"] == 7
    data["split"]["seed"] = seed
    data["split"]["shared_sources"] = shared_sources
    data["split"].setdefault("leakage", {})["cross_dataset"] = cross_dataset
    recipe.write_text(yaml.safe_dump(data))
    return configs


def test_validate_finds_datasets_that_split_a_shared_source_differently(tmp_path, capsys):
    """Recipes pinning a common source with different split settings put one record in
    different splits: a note, or an error when the cross-dataset check would block a run."""
    configs = _shared_source_configs(tmp_path / "same", 7, "block")
    assert main(["--config-dir", str(configs), "validate", "--skip-data"]) == 0
    assert "note:" not in capsys.readouterr().out

    configs = _shared_source_configs(tmp_path / "report", 8, "report")
    assert main(["--config-dir", str(configs), "validate", "--skip-data"]) == 0
    out = capsys.readouterr().out
    note = next(line for line in out.splitlines() if line.startswith("note:"))
    assert "source 'support_tickets'" in note and "split.seed" in note
    assert "support_assistant: 7" in note and "ticket_intents: 8" in note

    configs = _shared_source_configs(tmp_path / "block", 8, "block")
    assert main(["--config-dir", str(configs), "validate", "--skip-data"]) == 2
    err = capsys.readouterr().err
    assert "split.seed" in err and "ticket_intents sets split.leakage.cross_dataset: block" in err

    configs = _shared_source_configs(tmp_path / "free", 7, "block", shared_sources="stratify")
    assert main(["--config-dir", str(configs), "validate", "--skip-data"]) == 2
    err = capsys.readouterr().err
    assert "ticket_intents set split.shared_sources: stratify" in err


def test_demo_datasets_sharing_a_source_split_it_alike():
    from ftdata_pipeline.config.loader import load_project
    from ftdata_pipeline.config.shared_splits import shared_split_problems

    assert shared_split_problems(load_project()) == ([], [])
