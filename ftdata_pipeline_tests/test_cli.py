"""The ``ftdata`` command: validate, summary and their exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

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
