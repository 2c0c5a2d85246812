"""``ftdata validate`` reads the first rows of every source: mappings that do not fit fail it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ftdata_pipeline.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def configs(tmp_path, monkeypatch) -> Path:
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(ROOT))  # demo_data paths resolve as usual
    return tmp_path / "configs"


def edit_sources(configs: Path, old: str, new: str) -> Path:
    path = configs / "sources.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


def validate(configs: Path, capsys) -> tuple[int, str, str]:
    code = main(["--config-dir", str(configs), "validate"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_demo_configs_validate_against_their_data(configs, capsys):
    code, out, err = validate(configs, capsys)
    assert code == 0, err


def test_template_on_missing_column_fails_naming_file_and_key(configs, capsys):
    path = edit_sources(configs, 'text: "{subject}\\n\\n{body}"', 'text: "{subject}\\n\\n{bodyy}"')
    code, _, err = validate(configs, capsys)
    assert code == 2
    assert f"{path}: sources.support_tickets" in err
    assert "mapping.text: missing column 'bodyy'" in err


def test_index_into_a_non_list_fails_validation(configs, capsys):
    edit_sources(configs, "response: agent_reply", "response: \"{agent_reply[0]}\"")
    code, _, err = validate(configs, capsys)
    assert code == 2
    assert "mapping.response: 'agent_reply' is a String value, not a list" in err


def test_type_that_does_not_parse_fails_validation(configs, capsys):
    edit_sources(configs, "      # No `label` here on purpose",
                 "      consent: subject\n      # No `label` here on purpose")
    code, _, err = validate(configs, capsys)
    assert code == 2
    assert "sources.support_tickets" in err and "mapping.consent: value is not a boolean" in err


def test_recipe_kind_needs_fields_its_sources_map(configs, capsys):
    edit_sources(configs, "      response: agent_reply\n", "")
    recipe = configs / "datasets" / "support_assistant.yaml"
    code, _, err = validate(configs, capsys)
    assert code == 2
    assert f"{recipe}: sources.1: source 'support_tickets' maps" in err
    assert "needs messages or prompt+response" in err


def test_template_gaps_are_reported_with_a_count(tmp_path, configs, capsys, monkeypatch):
    data = tmp_path / "t.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "1", "s": "a", "b": "x"}, {"id": "2", "s": "b"}, {"id": "3", "s": "c", "b": None}]))
    (configs / "sources.yaml").write_text(
        (configs / "sources.yaml").read_text()
        + f"""
  extra:
    kind: file
    path: {data}
    format: jsonl
    key: id
    mapping: {{text: "{{s}}: {{b}}"}}
    owner: a@example.com
    licence: internal
    classification: internal
    contains_pii: false
"""
    )
    code, out, err = validate(configs, capsys)
    assert code == 0, err
    assert "sources.extra.mapping.text: 2 of the first 3 row(s) lack a column" in out


def test_skip_data_only_checks_configs(configs, capsys):
    edit_sources(configs, 'text: "{subject}\\n\\n{body}"', 'text: "{subject}\\n\\n{bodyy}"')
    assert main(["--config-dir", str(configs), "validate", "--skip-data"]) == 0


def test_a_disk_too_small_for_a_run_fails_validation_naming_ftdata_home(
        configs, capsys, tmp_path, monkeypatch):
    """The room a run needs (a measured factor per byte of every dataset's source files)
    is checked against FTDATA_HOME's file system; too little fails ``validate`` before any
    step has run, naming the folder, what is free and what is needed."""
    from collections import namedtuple

    from ftdata_pipeline.config import data_checks
    from ftdata_pipeline.config.loader import load_project

    home = tmp_path / "not" / "created" / "yet"
    monkeypatch.setenv("FTDATA_HOME", str(home))
    project = load_project(configs)
    sizes = {s: data_checks._source_bytes(project.sources[s], Path(project.root))
             for r in project.recipes.values() for s in r.sources}
    unsized = sorted(s for s, n in sizes.items() if n is None)
    assert unsized  # the demo reads a SQL table: no file to size
    need = sum((sizes[s] or 0) * data_checks._disk_factor(project.sources[s])
               for r in project.recipes.values() for s in r.sources)
    assert need > 0
    usage = namedtuple("usage", "total used free")
    asked = []

    def disk(path, free):
        asked.append(Path(path))
        return usage(10**12, 0, free)

    monkeypatch.setattr(data_checks.shutil, "disk_usage", lambda p: disk(p, int(need) - 1))
    code, _, err = validate(configs, capsys)
    assert code == 2
    assert f"FTDATA_HOME ({home})" in err and "set FTDATA_HOME to a larger disk" in err
    assert f"needs about {need / 1e9:.1f} GB" in err
    assert asked[-1] == tmp_path  # the folder's nearest existing parent

    # a Parquet source is compressed: it needs more room per byte than a JSONL one
    parquet = project.sources["support_tickets"].model_copy(update={"format": "parquet"})
    assert data_checks._disk_factor(parquet) > data_checks._disk_factor(
        project.sources["support_tickets"])

    monkeypatch.setattr(data_checks.shutil, "disk_usage", lambda p: disk(p, int(need) + 1))
    code, out, err = validate(configs, capsys)
    assert code == 0, err
    assert f"disk: source(s) {', '.join(unsized)} are no files" in out
