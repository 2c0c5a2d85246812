"""Distillation: teacher outputs joined to prompts on (source, key), filtered, exported as SFT."""

from __future__ import annotations

import json

import polars as pl
import pytest
from pydantic import ValidationError

from ftdata_pipeline.config.models import RecipeConfig, SourceConfig
from ftdata_pipeline.formats.writer import write_exports
from ftdata_pipeline.records import TEACHER_SCHEMA, conform, stable_id
from ftdata_pipeline.stages.label import label
from ftdata_pipeline.stages.raw import load_source


def _recipe(**teacher) -> RecipeConfig:
    return RecipeConfig.model_validate(
        {"name": "distilled", "kind": "distillation", "sources": ["prompts"],
         "system_prompt": "You are helpful.",
         "exports": {"formats": ["trl_messages", "openai_chat"]},
         "label": {"method": "teacher", "teacher": {"outputs": "teacher", **teacher}}}  # fmt: skip
    )


def _prompts(keys) -> pl.DataFrame:
    return conform(pl.DataFrame({
        "record_id": [stable_id("prompts", k) for k in keys], "source": ["prompts"] * len(keys),
        "source_key": keys, "prompt": [f"question {k}?" for k in keys]}))  # fmt: skip


def _outputs(rows) -> pl.LazyFrame:
    """rows: (item_key, model, version, response, score[, item_source])."""
    full = [(*r, "prompts")[:6] for r in rows]
    return conform(pl.DataFrame({
        "source": ["teacher"] * len(full), "source_key": [str(i) for i in range(len(full))],
        "item_key": [r[0] for r in full], "teacher_model": [r[1] for r in full],
        "teacher_version": [r[2] for r in full], "response": [r[3] for r in full],
        "score": [r[4] for r in full], "item_source": [r[5] for r in full]},
        schema_overrides={"score": pl.Float64, "response": pl.String}), TEACHER_SCHEMA).lazy()  # fmt: skip


ANSWER = "Open Settings, choose Billing and download the invoice as a PDF file."
OUTPUTS = [
    ("p1", "big-model", "2026-05", ANSWER, 0.9),
    ("p1", "other-model", "1", "Shorter but worse answer here.", 0.4),  # lower score: not chosen
    ("p2", "big-model", "2026-05", "I'm sorry, but I cannot help with that request.", 0.8),
    ("p3", "big-model", "2026-05", "   ", 0.7),
    ("p4", "big-model", "2026-05", "Yes.", 0.9),
    ("p5", "big-model", "2026-05", ANSWER, 0.2),
    ("p6", "big-model", "2026-05", ANSWER, 0.9, "elsewhere"),  # another source's p6
]


def test_teacher_outputs_filtered_and_joined_on_source_and_key():
    recipe = _recipe(min_words=3, min_score=0.5)
    result = label(_prompts(["p1", "p2", "p3", "p4", "p5", "p6"]).lazy(), recipe, None,
                   _outputs(OUTPUTS))  # fmt: skip
    assert result.kept["source_key"].to_list() == ["p1"]
    row = result.kept.row(0, named=True)
    assert row["teacher"] == "big-model@2026-05"
    assert row["messages"] == [{"role": "user", "content": "question p1?"},
                               {"role": "assistant", "content": ANSWER}]  # fmt: skip
    assert row["system"] == "You are helpful."
    rules = dict(zip(result.rejected["source_key"], result.rejected["rule"], strict=True))
    assert rules == {"p2": "teacher_refusal", "p3": "teacher_empty", "p4": "teacher_too_short",
                     "p5": "teacher_low_score", "p6": "no_teacher_output"}  # fmt: skip
    assert result.rows_in == result.rows_kept + result.rows_rejected
    scores = dict(zip(result.rejected["source_key"], result.rejected["score"], strict=True))
    assert scores["p5"] == 0.2 and scores["p6"] is None  # the reject carries the output's score
    assert result.stats["teachers"] == {"big-model@2026-05": 1}
    assert result.stats["teacher_outputs_for_other_records"] == 1
    assert result.stats["teacher_outputs_failed"] == {
        "teacher_empty": 1, "teacher_low_score": 2, "teacher_refusal": 1, "teacher_too_short": 1}


def test_distilled_examples_export_as_sft_with_teacher_in_provenance(tmp_path):
    recipe = _recipe()
    kept = label(_prompts(["p1"]).lazy(), recipe, None, _outputs(OUTPUTS[:1])).kept
    write_exports(kept.with_columns(pl.lit("train").alias("split")), recipe, tmp_path,
                  config_hash="x")  # fmt: skip
    line = json.loads((tmp_path / "trl_messages" / "train.jsonl").read_text())
    assert line["messages"][-1] == {"role": "assistant", "content": ANSWER}
    assert line["teacher"] == "big-model@2026-05"
    side = json.loads((tmp_path / "openai_chat" / "train.provenance.jsonl").read_text())
    assert side["teacher"] == "big-model@2026-05"


def test_teacher_outputs_source_mapping(tmp_path):
    (tmp_path / "t.jsonl").write_text(json.dumps(
        {"prompt_id": "p1", "model": "m", "version": "v1", "text": "hi", "judge": 0.5}) + "\n")
    cfg = SourceConfig.model_validate({
        "kind": "file", "role": "teacher_outputs", "path": "t.jsonl", "format": "jsonl",
        "mapping": {"item_key": "prompt_id", "teacher_model": "model", "teacher_version": "version",
                    "response": "text", "score": "judge"},
        "owner": "o", "licence": "l", "classification": "internal", "contains_pii": True})  # fmt: skip
    df = load_source("teacher", cfg, tmp_path)
    assert df.select("item_key", "teacher_model", "teacher_version", "response", "score").rows() \
        == [("p1", "m", "v1", "hi", 0.5)]


def test_distillation_config_rules():
    with pytest.raises(ValidationError, match="distillation dataset takes method 'teacher'"):
        RecipeConfig.model_validate({"name": "d", "kind": "distillation", "sources": ["p"],
                                     "exports": {"formats": ["trl_messages"]}})  # fmt: skip
    with pytest.raises(ValidationError, match="invalid regular expression"):
        _recipe(refusal_patterns=["(?<=x)y"])
