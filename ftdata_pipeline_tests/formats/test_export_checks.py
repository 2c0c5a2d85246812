"""The exports asset's blocking checks fail on a broken export, and the previous one stays."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterInstance

from ftdata_pipeline.definitions import build_definitions
from ftdata_pipeline.formats import trl, writer
from ftdata_pipeline.formats.writer import read_manifest, verify_exports

ROOT = Path(__file__).resolve().parents[2]
EXPORTS = AssetKey(["kb_corpus", "exports"])
RECIPE = {
    "kind": "pretraining",
    "sources": ["kb_articles"],
    "curate": {"min_chars": 20, "min_words": 3},
    "split": {"ratios": {"train": 0.8, "validation": 0.1, "test": 0.1}},
    "exports": {"formats": ["trl_text"]},
}


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    config_dir = tmp_path / "configs"
    (config_dir / "datasets").mkdir(parents=True)
    shutil.copy(ROOT / "configs" / "sources.yaml", config_dir / "sources.yaml")
    (config_dir / "datasets" / "kb_corpus.yaml").write_text(yaml.safe_dump(RECIPE))
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(ROOT))
    home = tmp_path / "home"
    defs = build_definitions(config_dir, home=str(home))
    instance = DagsterInstance.ephemeral()
    job = defs.resolve_job_def("kb_corpus_job")
    first = job.execute_in_process(instance=instance, raise_on_error=False)
    assert first.success
    out = home / "exports" / "kb_corpus"
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def rerun_exports():
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, asset_selection=[EXPORTS]
        )
        checks = {
            e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
        }
        after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        return result, checks, after

    return first, before, rerun_exports, out


def _check_names(result) -> dict[str, bool]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.asset_key == EXPORTS
    }


def test_checks_pass_on_a_good_export_then_format_valid_blocks_a_bad_line(pipeline, monkeypatch):
    first, before, rerun_exports, out = pipeline
    assert _check_names(first) == {
        "manifest_verified": True, "format_valid": True, "no_unexpected_shrink": True
    }
    # A writer whose own validation is bypassed writes a line the trainer would reject.
    monkeypatch.setattr(writer, "line_problems",
                        lambda fmt, rec, kind, ins: (fmt.to_example(rec), []))
    monkeypatch.setattr(trl.Text, "to_example", staticmethod(lambda rec: {"text": ""}))
    result, checks, after = rerun_exports()
    assert not result.success
    assert not checks["format_valid"].passed
    assert checks["format_valid"].description.startswith("trl_text/")
    assert "text: empty text" in checks["format_valid"].description
    assert after == before  # the previous export stays published
    assert verify_exports(out) == []


def test_manifest_verified_blocks_a_file_that_does_not_match(pipeline, monkeypatch):
    _, before, rerun_exports, out = pipeline
    real = writer._LineFile.close

    def wrong_sha(self):
        facts = real(self)
        return {**facts, "sha256": "0" * 64} if self._fh.name.endswith("/train.jsonl") else facts

    monkeypatch.setattr(writer._LineFile, "close", wrong_sha)
    result, checks, after = rerun_exports()
    assert not result.success
    assert not checks["manifest_verified"].passed
    assert "trl_text/train.jsonl: sha256 mismatch" in checks["manifest_verified"].description
    assert after == before
    assert read_manifest(out)["files"]
