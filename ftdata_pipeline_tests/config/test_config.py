"""The shipped configs load; broken configs fail with the file, key path and bad value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ftdata_pipeline.config.loader import ConfigError, load_project, load_recipe, load_sources

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CATEGORIES = ["billing", "technical_issue", "account_access", "shipping", "cancellation",
              "feature_request", "bug_report", "security"]


def test_shipped_sources_and_recipes_validate():
    sources = load_sources(CONFIGS / "sources.yaml")
    assert set(sources) == {"support_tickets", "chat_transcripts", "ticket_labels",
                            "response_rankings", "kb_articles", "production_queries",
                            "response_ratings", "argilla_rankings", "ticket_review",
                            "user_queries", "teacher_outputs"}
    assert sources["ticket_review"].format == "label_studio"
    assert sources["argilla_rankings"].format == "argilla"
    assert sources["teacher_outputs"].role == "teacher_outputs"
    assert sources["ticket_labels"].role == "annotations"
    assert sources["production_queries"].role == "reference"
    assert "label" not in sources["support_tickets"].mapping
    assert sources["chat_transcripts"].turns.role_map == {
        "customer": "user", "agent": "assistant", "system": "system"}
    assert sources["chat_transcripts"].url_env == "FTDATA_CHAT_DB_URL"
    assert sources["kb_articles"].licence == "CC-BY-4.0"

    recipes = {p.stem: load_recipe(p) for p in sorted((CONFIGS / "datasets").glob("*.yaml"))}
    assert {n: r.kind for n, r in recipes.items()} == {
        "support_assistant": "chat_sft", "ticket_intents": "classification",
        "response_preferences": "preference", "support_corpus": "pretraining",
        "response_reward_dpo": "preference", "response_kto": "chat_sft",
        "query_distillation": "distillation"}
    intents = recipes["ticket_intents"]
    assert intents.label.method == "majority_vote" and intents.label.annotations == ["ticket_labels"]
    assert intents.label.label_set == CATEGORIES
    assert {rule.label for rule in intents.label.rules} == set(CATEGORIES)
    assert recipes["support_assistant"].schedule.cron == "0 3 * * *"
    assert all(r.expectations for r in recipes.values())


def test_shipped_project_cross_checks():
    project = load_project(CONFIGS)
    assert sorted(project.recipes) == ["query_distillation", "response_kto",
                                       "response_preferences", "response_reward_dpo",
                                       "support_assistant", "support_corpus", "ticket_intents"]
    assert Path(project.root) == CONFIGS.parent


@pytest.fixture
def config_dir(tmp_path) -> Path:
    shutil.copy(CONFIGS / "sources.yaml", tmp_path / "sources.yaml")
    (tmp_path / "datasets").mkdir()
    return tmp_path


RECIPE = """
kind: classification
sources: [support_tickets]
label:
  method: majority_vote
  annotations: ticket_labels
  label_set: [billing, shipping]
exports: {formats: [classification_jsonl]}
"""


def write_recipe(config_dir: Path, text: str, name: str = "intents") -> Path:
    path = config_dir / "datasets" / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_minimal_recipe_loads(config_dir):
    write_recipe(config_dir, RECIPE)
    assert load_project(config_dir).recipes["intents"].label.label_set == ["billing", "shipping"]


def test_unknown_key_in_recipe(config_dir):
    path = write_recipe(config_dir, RECIPE + "curate: {min_char: 5}\n")
    with pytest.raises(ConfigError) as info:
        load_project(config_dir)
    msg = str(info.value)
    assert str(path) in msg and "curate.min_char" in msg and "unknown key" in msg and "5" in msg


def test_bad_value_type(config_dir):
    path = write_recipe(config_dir, RECIPE + "split: {seed: twelve}\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    msg = str(info.value)
    assert str(path) in msg and "split.seed" in msg and "'twelve'" in msg


def test_ratios_must_sum_to_one(config_dir):
    path = write_recipe(config_dir, RECIPE + "split: {ratios: {train: 0.8, validation: 0.3}}\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    msg = str(info.value)
    assert str(path) in msg and "split.ratios" in msg and "sum to 1, got 1.1" in msg
    assert "0.3" in msg


def test_unknown_source_in_recipe(config_dir):
    path = write_recipe(config_dir, RECIPE.replace("[support_tickets]", "[support_tickets, crm_notes]"))
    with pytest.raises(ConfigError) as info:
        load_project(config_dir)
    msg = str(info.value)
    assert str(path) in msg and "sources.1" in msg and "'crm_notes'" in msg


def test_missing_file(config_dir):
    (config_dir / "sources.yaml").unlink()
    with pytest.raises(ConfigError, match="file not found") as info:
        load_project(config_dir)
    assert str(config_dir / "sources.yaml") in str(info.value)


def test_source_error_names_source_and_key(config_dir):
    text = (config_dir / "sources.yaml").read_text(encoding="utf-8")
    (config_dir / "sources.yaml").write_text(
        text.replace("format: parquet", "format: xlsx"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_sources(config_dir / "sources.yaml")
    msg = str(info.value)
    assert "sources.kb_articles.format" in msg and "'xlsx'" in msg
