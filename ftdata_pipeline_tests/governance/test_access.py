"""Access: a recipe may not read a source classified above its governance.max_classification."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ftdata_pipeline.cli import main
from ftdata_pipeline.config.loader import ConfigError, load_project

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, max_classification: str, sources=("support_tickets",)) -> Path:
    config = tmp_path / "configs"
    (config / "datasets").mkdir(parents=True)
    shutil.copy(ROOT / "configs" / "sources.yaml", config / "sources.yaml")
    recipe = {
        "kind": "pretraining",
        "sources": list(sources),
        "exports": {"formats": ["trl_text"]},
        "governance": {"max_classification": max_classification},
    }
    (config / "datasets" / "public_corpus.yaml").write_text(yaml.safe_dump(recipe))
    return config


def test_recipe_above_its_max_classification_is_refused_with_a_clear_message(tmp_path):
    config = _config(tmp_path, "internal", ("kb_articles", "support_tickets"))
    with pytest.raises(ConfigError) as err:
        load_project(config)
    message = str(err.value)
    assert str(config / "datasets" / "public_corpus.yaml") in message
    assert "'support_tickets' is classified 'confidential'" in message
    assert "maximum 'internal'" in message
    assert "kb_articles" not in message  # public: allowed
    assert len(message.splitlines()) == 1


def test_sources_at_or_below_the_maximum_are_allowed(tmp_path):
    assert load_project(_config(tmp_path, "confidential")).recipes["public_corpus"]
    assert load_project(_config(tmp_path / "b", "public", ("kb_articles",)))


def test_validate_command_shows_the_refusal(tmp_path, capsys):
    config = _config(tmp_path, "public")
    assert main(["--config-dir", str(config), "validate"]) == 2
    assert "governance.max_classification" in capsys.readouterr().err


def test_demo_recipes_pass():
    load_project(ROOT / "configs")
