"""The checked-in JSON Schemas match the config models, and every config file points at one."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from ftdata_pipeline.config import schema

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


def _yaml_files() -> list[Path]:
    return [CONFIGS / "sources.yaml", *sorted((CONFIGS / "datasets").glob("*.yaml"))]


def test_checked_in_schemas_are_current():
    for name, text in schema.rendered().items():
        path = CONFIGS / schema.SCHEMA_DIR / name
        assert path.exists() and path.read_text("utf-8") == text, (
            f"{path} is out of date: python -m ftdata_pipeline.config.schema"
        )


def test_every_config_file_references_its_schema_and_validates():
    validators = {
        name: jsonschema.Draft202012Validator(
            yaml.safe_load((CONFIGS / schema.SCHEMA_DIR / name).read_text())
        )
        for name in (schema.RECIPE_SCHEMA, schema.SOURCES_SCHEMA)
    }
    for path in _yaml_files():
        first = path.read_text("utf-8").splitlines()[0]
        assert first == schema.schema_comment(path, CONFIGS), path
        target = (path.parent / first.split("$schema=", 1)[1]).resolve()
        assert target.exists(), first
        errors = list(validators[target.name].iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, f"{path}: {errors[0].message}"


def test_schema_flags_an_unknown_key_and_a_bad_value():
    recipe = yaml.safe_load((CONFIGS / "datasets" / "ticket_intents.yaml").read_text())
    validator = jsonschema.Draft202012Validator(schema.recipe_schema())
    recipe["curate"]["min_wrods"] = 3
    recipe["kind"] = "pretrain"
    messages = " ".join(e.message for e in validator.iter_errors(recipe))
    assert "min_wrods" in messages and "pretrain" in messages
