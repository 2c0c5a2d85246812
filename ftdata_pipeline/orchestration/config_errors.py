"""A broken recipe shows up in the UI as its error, without taking the code location down.

Each recipe that fails to load or to cross-check becomes one asset ``<name>/config_error`` in
its own group. Its description and definition metadata carry the error (file, key path,
value), so the catalog shows what to fix; materializing it fails with the same message. The
other recipes, their jobs, schedules and sensors load as usual.
"""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, AssetsDefinition, MetadataValue, asset

from ftdata_pipeline.config.loader import ConfigError
from ftdata_pipeline.orchestration.automation import CONFIG_ERROR_TAG

ERROR_ASSET = "config_error"


def config_error_key(recipe: str) -> AssetKey:
    return AssetKey([recipe, ERROR_ASSET])


def build_config_error_asset(recipe: str, file: Path, error: str) -> AssetsDefinition:
    @asset(
        key=config_error_key(recipe),
        group_name=recipe,
        description=f"Recipe {file.name} does not load; fix it and reload the code location.\n\n"
        f"```\n{error}\n```",
        metadata={
            "recipe_file": MetadataValue.path(str(file)),
            "error": MetadataValue.md(f"```\n{error}\n```"),
        },
        kinds={"yaml"},
        tags={CONFIG_ERROR_TAG: "true"},
    )
    def _config_error(context):
        raise ConfigError(error)

    return _config_error


def build_config_error_assets(broken: dict[str, str], files: dict[str, Path]) -> list:
    return [build_config_error_asset(n, files[n], broken[n]) for n in sorted(broken)]
