"""Size targets: stratified downsampling to target proportions, and a shortfall that blocks."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from dagster import DagsterInstance

from ftdata_pipeline import records
from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.definitions import build_definitions
from ftdata_pipeline.orchestration.split_checks import SIZE_TARGET, evaluate
from ftdata_pipeline.stages.split import split

ROOT = Path(__file__).resolve().parents[2]


def recipe(**split_cfg) -> RecipeConfig:
    return RecipeConfig.model_validate({
        "name": "intents", "kind": "classification", "sources": ["tickets"],
        "label": {"method": "rules", "rules": [{"label": "a", "pattern": "x"}],
                  "label_set": ["a", "b", "c"]},
        "exports": {"formats": ["classification_jsonl"]}, "split": split_cfg,
    })


def tickets(n: int = 1000) -> pl.DataFrame:
    """60% label a, 30% b, 10% c; pairs of records share a conversation (groups of 2)."""
    labels = ["a"] * 6 + ["b"] * 3 + ["c"]
    return records.conform(pl.DataFrame({
        "record_id": [f"r{i:04d}" for i in range(n)], "source": ["tickets"] * n,
        "source_key": [str(i) for i in range(n)],
        "conversation_id": [f"c{i // 2}" for i in range(n)],
        "text": [f"ticket {i} text" for i in range(n)],
        "label": [labels[(i // 2) % 10] for i in range(n)],
    }))


def shares(df: pl.DataFrame) -> dict[str, float]:
    return {k: n / df.height for k, n in df.group_by("label").len().iter_rows()}


def test_downsampling_reaches_target_proportions() -> None:
    cfg = recipe(max_records=300, downsample_by=["label"],
                 target_proportions={"label": {"a": 0.4, "b": 0.4, "c": 0.2}})
    result = split(tickets().lazy(), cfg)
    kept = result.kept
    assert kept.height <= 300 and kept.height >= 294
    got = shares(kept)
    assert got == pytest.approx({"a": 0.4, "b": 0.4, "c": 0.2}, abs=0.01)
    report = result.stats["size"]["downsampling"]
    assert report["proportions"]["c"]["before"] == pytest.approx(0.1)
    assert report["proportions"]["c"]["target"] == pytest.approx(0.2)
    assert report["proportions"]["c"]["after"] == pytest.approx(got["c"], abs=1e-4)
    rej = result.rejected
    assert set(rej["rule"]) == {"size_target"} and rej.height == 1000 - kept.height
    # whole groups only
    assert set(kept["conversation_id"]).isdisjoint(set(rej["conversation_id"]))


def test_downsampling_without_targets_keeps_current_proportions() -> None:
    cfg = recipe(max_records=200, downsample_by=["label"])
    got = shares(split(tickets().lazy(), cfg).kept)
    assert got == pytest.approx({"a": 0.6, "b": 0.3, "c": 0.1}, abs=0.01)


def test_unlisted_values_share_the_rest() -> None:
    cfg = recipe(max_records=300, downsample_by=["label"], target_proportions={"label": {"a": 0.5}})
    got = shares(split(tickets().lazy(), cfg).kept)
    # b and c share the remaining 0.5 as 3:1
    assert got == pytest.approx({"a": 0.5, "b": 0.375, "c": 0.125}, abs=0.01)


def test_target_for_an_attribute_not_downsampled_is_an_error() -> None:
    with pytest.raises(ValueError, match="target_proportions.label"):
        recipe(max_records=10, target_proportions={"label": {"a": 1.0}})


def test_shortfall_fails_the_size_check_and_says_by_how_much() -> None:
    result = split(tickets(100).lazy(), recipe(min_records=150))
    assert result.stats["size"]["shortfall"] == 50
    outcome = {o.name: o for o in evaluate(recipe(min_records=150), result.stats)}[SIZE_TARGET]
    assert not outcome.passed and outcome.blocking
    assert "50 short of min_records 150" in outcome.description
    ok = split(tickets(100).lazy(), recipe(min_records=100))
    assert {o.name: o for o in evaluate(recipe(min_records=100), ok.stats)}[SIZE_TARGET].passed


def test_shortfall_blocks_downstream_assets(tmp_path, monkeypatch) -> None:
    config_dir = tmp_path / "configs"
    (config_dir / "datasets").mkdir(parents=True)
    shutil.copy(ROOT / "configs" / "sources.yaml", config_dir / "sources.yaml")
    recipe_yaml = {
        "kind": "pretraining", "sources": ["kb_articles"],
        "curate": {"min_chars": 20, "min_words": 3},
        "split": {"min_records": 100_000},
        "exports": {"formats": ["trl_text"]},
    }
    (config_dir / "datasets" / "kb_small.yaml").write_text(yaml.safe_dump(recipe_yaml))
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(ROOT))
    defs = build_definitions(config_dir, home=str(tmp_path / "home"))
    result = defs.resolve_job_def("kb_small_job").execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False
    )
    materialized = {e.asset_key.to_user_string() for e in result.all_events
                    if e.event_type_value == "ASSET_MATERIALIZATION"}
    checks = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
              and e.asset_check_evaluation_data.asset_key.to_user_string() == "kb_small/split"}
    assert not result.success
    assert "kb_small/split" in materialized
    size = checks[SIZE_TARGET]
    assert not size.passed
    assert "short of min_records 100000" in size.description
    assert not {"kb_small/exports", "kb_small/card"} & materialized
    assert not (tmp_path / "home" / "exports" / "kb_small").exists()


def test_readme_split_example_is_a_valid_recipe_section() -> None:
    import re

    readme = (ROOT / "README.md").read_text("utf-8")
    block = re.search(r"## Splits, tokens and representativeness\n.*?```yaml\n(.*?)```",
                      readme, re.S).group(1)
    sections = yaml.safe_load(block)
    assert set(sections) == {"split", "tokens", "reference", "bias"}
    cfg = recipe(**sections["split"])
    full = RecipeConfig.model_validate({**cfg.model_dump(), **sections})
    assert full.tokens.policy == "truncate" and full.reference.source == "production_queries"
    assert re.fullmatch(full.reference.edge_cases[0].pattern, "reset my password")
