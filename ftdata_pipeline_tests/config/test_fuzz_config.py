"""Fuzzing the config loader (hypothesis): whatever the YAML, loading either succeeds or raises
a ConfigError naming the file -- never another exception, never a traceback for the user."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftdata_pipeline.config.loader import ConfigError, load_project

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
BASE = yaml.safe_load((ROOT / "configs" / "datasets" / "ticket_intents.yaml").read_text())

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**7), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["(?<=x)y", "[", "{x}", "billing"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)


def _paths(obj, prefix=()):
    """Every key path of a nested dict/list."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(BASE) if p]


def _mutate(recipe: dict, path: tuple, value, delete: bool) -> dict:
    import copy

    out = copy.deepcopy(recipe)
    node = out
    for part in path[:-1]:
        node = node[part]
    if delete and isinstance(node, dict):
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return out


def _config_dir(tmp: Path, recipe_text: str) -> Path:
    config = tmp / "configs"
    if config.exists():
        shutil.rmtree(config)
    (config / "datasets").mkdir(parents=True)
    shutil.copy(ROOT / "configs" / "sources.yaml", config / "sources.yaml")
    (config / "datasets" / "fuzzed.yaml").write_text(recipe_text, encoding="utf-8")
    return config


def _load_or_config_error(config: Path) -> None:
    try:
        load_project(config)
    except ConfigError as exc:
        assert "fuzzed.yaml" in str(exc) or "sources.yaml" in str(exc), str(exc)


@SETTINGS
@given(path=st.sampled_from(PATHS), value=VALUES, delete=st.booleans())
def test_mutated_recipe_loads_or_fails_with_a_config_error(tmp_path, path, value, delete):
    recipe = _mutate(BASE, path, value, delete)
    _load_or_config_error(_config_dir(tmp_path, yaml.safe_dump(recipe)))


@SETTINGS
@given(text=st.text(max_size=200))
def test_arbitrary_text_as_a_recipe_fails_with_a_config_error(tmp_path, text):
    _load_or_config_error(_config_dir(tmp_path, text))
