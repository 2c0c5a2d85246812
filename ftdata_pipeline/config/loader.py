"""Load and cross-check the config directory, with errors that name file, key path and value."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ftdata_pipeline.config.models import (
    CLASSIFICATION_LEVELS,
    PARTITION_KINDS,
    SOURCE_CONFIG_KINDS,
    ProjectConfig,
    RecipeConfig,
    SourcesFile,
)
from ftdata_pipeline.config.partition_checks import partition_errors

DEFAULT_CONFIG_DIR_ENV = "FTDATA_CONFIG_DIR"


class ConfigError(ValueError):
    """A config file is invalid. The message names the file, the key path and the bad value."""


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_config_dir() -> Path:
    return Path(os.environ.get(DEFAULT_CONFIG_DIR_ENV, project_root() / "configs"))


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def _format_validation_error(path: Path, exc: ValidationError, prefix: tuple = ()) -> ConfigError:
    lines = []
    for err in exc.errors():
        parts = [*prefix, *err["loc"]]
        # sources.<name>.<kind>.<key>: the union's tag is not a key of the YAML file
        if len(parts) > 2 and parts[0] == "sources" and parts[2] in SOURCE_CONFIG_KINDS:
            del parts[2]
        # ... nor is the partition kind's tag (sources.<name>.partition.<by>.<key>)
        if len(parts) > 4 and parts[0] == "sources" and parts[2] == "partition" \
                and parts[3] in PARTITION_KINDS:
            del parts[3]
        loc = ".".join(str(p) for p in parts) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not allowed here)"
        value = err.get("input")
        shown = repr(value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        lines.append(f"{path}: {loc}: {msg} (got {shown})")
    return ConfigError("\n".join(lines))


def load_sources(path: Path) -> dict:
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'sources' key, got {raw!r}")
    try:
        sources = SourcesFile.model_validate(raw).sources
    except ValidationError as exc:
        raise _format_validation_error(path, exc) from None
    errors = []
    for name, src in sources.items():
        # annotations join records on (source, key): the named source must hold records
        target = src.annotates
        if target is not None and (target not in sources or sources[target].role != "records"):
            errors.append(f"{path}: sources.{name}.annotates: {target!r} is not a records source")
    if errors:
        raise ConfigError("\n".join(errors))
    return sources


def load_recipe(path: Path) -> RecipeConfig:
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping, got {raw!r}")
    raw = {"name": path.stem, **raw}
    if raw["name"] != path.stem:
        raise ConfigError(
            f"{path}: name: must match the file name {path.stem!r} (got {raw['name']!r})"
        )
    try:
        return RecipeConfig.model_validate(raw)
    except ValidationError as exc:
        raise _format_validation_error(path, exc) from None


def _classification_errors(file: Path, recipe: RecipeConfig, sources: dict) -> list[str]:
    """A recipe may read no source classified above its governance.max_classification."""
    limit = recipe.governance.max_classification
    rank = {level: i for i, level in enumerate(CLASSIFICATION_LEVELS)}
    used = [*recipe.sources, *recipe.label.annotation_sources, *recipe.label.teacher_sources]
    return [
        f"{file}: governance.max_classification: source {src!r} is classified "
        f"{sources[src].classification!r}, above this recipe's maximum {limit!r} "
        f"({' < '.join(CLASSIFICATION_LEVELS)}); remove the source or raise the maximum"
        for src in dict.fromkeys(used)
        if src in sources and rank[sources[src].classification] > rank[limit]
    ]


# Asset-key prefixes a recipe name may not take: ``raw/<source>`` are the source assets, so a
# recipe named ``raw`` would collide with them (``raw/curated`` for a source named ``curated``).
RESERVED_RECIPE_NAMES = {"raw": "the source assets raw/<source>"}


def _recipe_errors(file: Path, recipe: RecipeConfig, sources: dict) -> list[str]:
    """Errors of one recipe against sources.yaml, the format registry and the expectations."""
    from ftdata_pipeline.formats import FORMATS_BY_NAME
    from ftdata_pipeline.formats.kinds import export_kind
    from ftdata_pipeline.quality.expectations import resolve_expectation

    errors = []
    if recipe.name in RESERVED_RECIPE_NAMES:
        errors.append(
            f"{file}: name: {recipe.name!r} is reserved for "
            f"{RESERVED_RECIPE_NAMES[recipe.name]} (asset keys would collide); rename the file"
        )
    for i, src in enumerate(recipe.sources):
        if src not in sources:
            errors.append(f"{file}: sources.{i}: unknown source {src!r} (see sources.yaml)")
        elif sources[src].role != "records":
            errors.append(
                f"{file}: sources.{i}: {src!r} has role {sources[src].role!r}; a recipe "
                "reads sources with role 'records'"
            )
    ref = recipe.reference.source if recipe.reference else None
    if ref is not None and (ref not in sources or sources[ref].role != "reference"):
        errors.append(f"{file}: reference.source: {ref!r} is not a source with role reference")
    errors.extend(_classification_errors(file, recipe, sources))
    errors.extend(partition_errors(file, recipe, sources))
    for src in recipe.label.teacher_sources:
        if src not in sources:
            errors.append(f"{file}: label.teacher.outputs: unknown source {src!r}")
        elif sources[src].role != "teacher_outputs":
            errors.append(f"{file}: label.teacher.outputs: {src!r} is not a teacher_outputs source")
    for ann in recipe.label.annotation_sources:
        if ann not in sources:
            errors.append(f"{file}: label.annotations: unknown source {ann!r}")
        elif sources[ann].role != "annotations":
            errors.append(f"{file}: label.annotations: {ann!r} is not an annotations source")
    for i, fmt in enumerate(recipe.exports.formats):
        supported = FORMATS_BY_NAME[fmt].KINDS
        if export_kind(recipe.kind) not in supported:
            errors.append(
                f"{file}: exports.formats.{i}: format {fmt!r} does not support kind "
                f"{recipe.kind!r} (supports {', '.join(supported)})"
            )
    for stage, exps in recipe.expectations.items():
        for i, exp in enumerate(exps):
            try:
                resolve_expectation(exp.expectation, exp.kwargs)
            except ValueError as exc:
                errors.append(f"{file}: expectations.{stage}.{i}: {exc}")
    return errors


@dataclass
class ProjectLoad:
    """The loadable part of a config directory and, per broken recipe, its error text.

    ``broken`` maps a recipe name (its file's stem) to the message naming file, key and value;
    ``files`` maps every recipe name to its file."""

    project: ProjectConfig
    broken: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def raise_if_broken(self) -> ProjectConfig:
        if self.broken:
            raise ConfigError("\n".join(self.broken[name] for name in sorted(self.broken)))
        return self.project


def load_project_parts(config_dir: Path | str | None = None) -> ProjectLoad:
    """Load sources.yaml and every recipe, setting aside (not raising on) broken recipes.

    A broken sources.yaml still raises: no recipe can be checked without it."""
    config_dir = Path(config_dir) if config_dir else default_config_dir()
    sources = load_sources(config_dir / "sources.yaml")
    files = {p.stem: p for p in sorted((config_dir / "datasets").glob("*.yaml"))}
    recipes: dict[str, RecipeConfig] = {}
    broken: dict[str, str] = {}
    for name, path in files.items():
        try:
            recipe = load_recipe(path)
        except ConfigError as exc:
            broken[name] = str(exc)
            continue
        errors = _recipe_errors(path, recipe, sources)
        if errors:
            broken[name] = "\n".join(errors)
        else:
            recipes[name] = recipe
    root = os.environ.get("FTDATA_PROJECT_ROOT", str(config_dir.resolve().parent))
    return ProjectLoad(ProjectConfig(sources=sources, recipes=recipes, root=root), broken, files)


def load_project(config_dir: Path | str | None = None) -> ProjectConfig:
    """Load sources.yaml and every recipe under datasets/, and check they fit together.

    Raises one ``ConfigError`` listing the errors of every broken file."""
    return load_project_parts(config_dir).raise_if_broken()
