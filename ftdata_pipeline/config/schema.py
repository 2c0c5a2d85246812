"""JSON Schemas of the config files, generated from the pydantic models.

Editors with a YAML language server complete keys, show descriptions and flag unknown keys
when a file starts with ``# yaml-language-server: $schema=<path>``. The schemas are checked in
under ``configs/schema/``; a test keeps them equal to what the models generate. Regenerate
with ``python -m ftdata_pipeline.config.schema``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ftdata_pipeline.config.loader import default_config_dir
from ftdata_pipeline.config.models import RecipeConfig, SourcesFile

SCHEMA_DIR = "schema"
RECIPE_SCHEMA = "recipe.schema.json"
SOURCES_SCHEMA = "sources.schema.json"


def recipe_schema() -> dict:
    schema = RecipeConfig.model_json_schema(mode="validation")
    # the dataset name is the file name: a recipe file need not (and usually does not) set it
    schema["required"] = [k for k in schema.get("required", []) if k != "name"]
    schema["title"] = "ftdata-pipeline dataset recipe (configs/datasets/<name>.yaml)"
    return schema


def sources_schema() -> dict:
    schema = SourcesFile.model_json_schema(mode="validation")
    schema["title"] = "ftdata-pipeline sources (configs/sources.yaml)"
    return schema


def rendered() -> dict[str, str]:
    """File name -> JSON text, as checked in."""
    return {
        name: json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for name, schema in ((RECIPE_SCHEMA, recipe_schema()), (SOURCES_SCHEMA, sources_schema()))
    }


def schema_comment(yaml_file: Path, config_dir: Path) -> str:
    """The first line that points an editor at the file's schema (a path relative to it)."""
    name = SOURCES_SCHEMA if yaml_file.name == "sources.yaml" else RECIPE_SCHEMA
    depth = len(yaml_file.resolve().parent.relative_to(config_dir.resolve()).parts)
    rel = Path(*([".."] * depth), SCHEMA_DIR, name)
    return f"# yaml-language-server: $schema={rel.as_posix()}"


def write(config_dir: Path) -> list[Path]:
    out = config_dir / SCHEMA_DIR
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else default_config_dir()):
        print(path)
