"""The card's split sections: configured vs actual ratios, leakage, tokens, small splits."""

from __future__ import annotations

import json

import polars as pl

from ftdata_pipeline import records
from ftdata_pipeline.config.models import RecipeConfig, SourceConfig
from ftdata_pipeline.governance.card import render_card
from ftdata_pipeline.stages.split import split

SOURCE = SourceConfig.model_validate({
    "kind": "file", "path": "t.jsonl", "format": "jsonl", "owner": "ops", "licence": "internal",
    "classification": "internal", "contains_pii": False,
})


def recipe(**split_cfg) -> RecipeConfig:
    return RecipeConfig.model_validate({
        "name": "intents", "kind": "classification", "sources": ["tickets"],
        "label": {"method": "rules", "rules": [{"label": "a", "pattern": "x"}],
                  "label_set": ["a", "b"]},
        "exports": {"formats": ["classification_jsonl", "openai_chat"]},
        "split": split_cfg, "tokens": {"epochs": 4},
    })


def render(tmp_path, cfg: RecipeConfig, n: int = 200):
    df = records.conform(pl.DataFrame({
        "record_id": [f"r{i:03d}" for i in range(n)], "source": ["tickets"] * n,
        "source_key": [str(i) for i in range(n)],
        "text": [f"ticket number {i} about topic {i % 7} and more words" for i in range(n)],
        "label": ["a" if i % 3 else "b" for i in range(n)],
    }))
    result = split(df.lazy(), cfg)
    stats = result.stats
    paths = render_card(
        cfg, {"tickets": SOURCE}, [], {}, {"counts": stats["records"],
                                           "label_counts": stats["labels"], "report": stats},
        {}, {}, tmp_path,
    )
    return paths["markdown"].read_text(), json.loads(paths["json"].read_text()), stats


def test_card_shows_ratios_leakage_tokens_and_training_cost(tmp_path) -> None:
    md, facts, stats = render(tmp_path, recipe())
    assert "### Configured vs actual split" in md
    assert f"| test | 10.0% | {100 * stats['ratios']['actual']['test']:.1f}% |" in md
    assert "### Leakage" in md and "first user turns in train and held out" in md
    assert "## Tokens" in md and "`o200k_base`" in md
    train_tokens = stats["tokens"]["per_split"]["train"]["total"]
    assert f"{train_tokens:,} train tokens × 4 epochs = {4 * train_tokens:,} tokens" in md
    assert facts["split_report"]["tokens"]["training_tokens"] == 4 * train_tokens


def test_card_flags_splits_too_small_for_their_metric(tmp_path) -> None:
    md, _, stats = render(tmp_path, recipe(min_eval_records=30, min_eval_groups=5), n=100)
    assert stats["records"]["test"] < 30
    assert f"test: {stats['records']['test']} records < 30" in md
    md_ok, _, _ = render(tmp_path / "ok", recipe(min_eval_records=1, min_eval_groups=1), n=100)
    assert "Too small for a reliable metric" not in md_ok


def test_card_shows_size_target_and_downsampling(tmp_path) -> None:
    cfg = recipe(max_records=120, downsample_by=["label"],
                 target_proportions={"label": {"a": 0.5, "b": 0.5}})
    md, _, stats = render(tmp_path, cfg)
    assert "### Size target" in md and "records dropped (rule size_target)" in md
    assert "| b | 33.5% | 50.0% |" in md
    md_short, _, _ = render(tmp_path / "short", recipe(min_records=250))
    assert "200 examples: 50 short of the minimum" in md_short


def test_preference_test_split_is_flagged_by_its_number_of_prompts(tmp_path) -> None:
    cfg = RecipeConfig.model_validate({
        "name": "pref", "kind": "preference", "sources": ["r"], "label": {"method": "rankings"},
        "exports": {"formats": ["trl_preference"]}, "split": {"min_eval_groups": 8},
    })
    # 40 prompts x 6 pairs: a test split of ~4 prompts holds ~24 pairs
    rows = [{"record_id": f"p{i:02d}-{k}", "source": "r", "source_key": f"{i}-{k}",
             "conversation_id": f"prompt{i:02d}", "prompt": f"question number {i} about item {i}",
             "chosen": f"good answer {k}", "rejected": f"bad answer {k}"}
            for i in range(40) for k in range(6)]
    stats = split(records.conform(pl.DataFrame(rows)).lazy(), cfg).stats
    assert stats["prompts"]["test"] < 8
    render_card(cfg, {}, [], {}, {"counts": stats["records"], "report": stats}, {}, {}, tmp_path)
    md = (tmp_path / "README.md").read_text()
    assert f"test: {stats['prompts']['test']} prompts < 8" in md
