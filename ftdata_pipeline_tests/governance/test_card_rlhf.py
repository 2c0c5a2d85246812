"""The card's RLHF steps table: prompts, configured vs actual share, pairs and examples."""

from __future__ import annotations

import json

import polars as pl

from ftdata_pipeline.config.models import SourceConfig
from ftdata_pipeline.formats.writer import write_exports
from ftdata_pipeline.governance.card import render_card
from ftdata_pipeline.stages.split import split
from ftdata_pipeline.stages.split.rlhf import STEP
from ftdata_pipeline_tests.formats.test_rlhf_exports import _recipe
from ftdata_pipeline_tests.stages.test_split_rlhf import pairs

SOURCES = {"src": SourceConfig.model_validate({
    "kind": "file", "path": "r.jsonl", "format": "jsonl", "owner": "team:data",
    "licence": "internal", "classification": "internal", "contains_pii": False})}


def test_card_shows_each_step_with_its_shares_and_counts(tmp_path):
    recipe = _recipe()
    result = split(pairs(300).lazy(), recipe)
    manifest = write_exports(result.kept, recipe, tmp_path / "out", config_hash="h")
    split_stats = {"counts": result.stats["records"], "report": result.stats}
    paths = render_card(recipe, SOURCES, [], {}, split_stats, {}, manifest, tmp_path / "card")
    text = paths["markdown"].read_text(encoding="utf-8")
    assert "### RLHF steps" in text
    kept = result.kept
    for step, share in (("sft", "20.0%"), ("reward", "50.0%"), ("rl", "30.0%")):
        part = kept.filter(pl.col(STEP) == step)
        prompts = part["conversation_id"].n_unique()
        pairs_per_split = " / ".join(
            str(part.filter(pl.col("split") == s).height) for s in ("train", "validation", "test"))
        examples = " / ".join(str(manifest["rlhf"][step]["examples"].get(s, 0))
                              for s in ("train", "validation", "test"))
        row = next(line for line in text.splitlines() if line.startswith(f"| {step} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[:3] == [step, str(prompts), share]
        assert cells[4] == pairs_per_split and cells[5] == examples
    assert "Keys in two steps: 0" in text
    card = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert card["rlhf_exports"]["sft"]["formats"] == ["trl_messages"]
