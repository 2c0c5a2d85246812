"""One broken recipe does not take the code location down, and validate reports every one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, Definitions, materialize

from ftdata_pipeline.cli import main
from ftdata_pipeline.config.loader import DEFAULT_CONFIG_DIR_ENV, ConfigError, load_project
from ftdata_pipeline.definitions import build_definitions

ROOT = Path(__file__).resolve().parents[2]


def _configs(tmp_path: Path) -> Path:
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    return configs


def _break(configs: Path) -> dict[str, Path]:
    """A typo'd key in one recipe, a bad value in another."""
    typo = configs / "datasets" / "ticket_intents.yaml"
    typo.write_text(typo.read_text().replace("  min_words: 8", "  min_wrods: 8", 1))
    bad = configs / "datasets" / "support_corpus.yaml"
    text = bad.read_text()
    assert "kind: pretraining" in text
    bad.write_text(text.replace("kind: pretraining", "kind: pretrain", 1))
    return {"ticket_intents": typo, "support_corpus": bad}


def test_other_datasets_schedules_and_sensors_still_load(tmp_path, monkeypatch):
    configs = _configs(tmp_path)
    broken = _break(configs)
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(ROOT))
    defs = build_definitions(configs, home=str(tmp_path / "home"))
    Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    jobs = set(repo.job_names)
    assert {"support_assistant_job", "response_preferences_job", "materialize_all"} <= jobs
    assert not {"ticket_intents_job", "support_corpus_job"} & jobs
    assert "support_tickets_landing_sensor" in {s.name for s in defs.sensors}
    good_schedules = {s.name for s in defs.schedules}
    assert all(not n.startswith(("ticket_intents", "support_corpus")) for n in good_schedules)
    assert AssetKey(["support_assistant", "exports"]) in repo.asset_graph.get_all_asset_keys()

    # the error, as the UI shows it: the broken recipe's group holds one asset describing it
    spec = repo.asset_graph.get(AssetKey(["ticket_intents", "config_error"]))
    assert spec.group_name == "ticket_intents"
    assert str(broken["ticket_intents"]) in spec.description
    assert "curate.min_wrods" in spec.description and "unknown key" in spec.description
    kind_error = repo.asset_graph.get(AssetKey(["support_corpus", "config_error"])).description
    assert "kind" in kind_error and "'pretrain'" in kind_error
    # the all-assets job leaves the error assets out
    all_job = defs.resolve_job_def("materialize_all")
    assert AssetKey(["ticket_intents", "config_error"]) not in all_job.asset_layer.executable_asset_keys

    # materializing it fails with the same message
    error_asset = next(
        a for a in defs.assets if AssetKey(["ticket_intents", "config_error"]) in a.keys
    )
    with pytest.raises(ConfigError, match="min_wrods"):
        materialize([error_asset])


def test_validate_reports_every_broken_file(tmp_path, capsys):
    configs = _configs(tmp_path)
    broken = _break(configs)
    assert main(["--config-dir", str(configs), "validate"]) == 2
    err = capsys.readouterr().err
    for path in broken.values():
        assert str(path) in err
    assert "min_wrods" in err and "'pretrain'" in err
    with pytest.raises(ConfigError):
        load_project(configs)


def test_recipe_named_like_the_source_prefix_is_refused(tmp_path, capsys):
    configs = _configs(tmp_path)
    shutil.copy(configs / "datasets" / "ticket_intents.yaml", configs / "datasets" / "raw.yaml")
    assert main(["--config-dir", str(configs), "validate"]) == 2
    err = capsys.readouterr().err
    assert f"{configs / 'datasets' / 'raw.yaml'}: name: 'raw' is reserved" in err
    # and the code location still loads, without a duplicate asset key
    Definitions.validate_loadable(build_definitions(configs, home=str(tmp_path / "home")))


def test_unknown_dataset_is_a_clear_error(capsys):
    assert main(["materialize", "--dataset", "no_such_dataset"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'no_such_dataset'" in err
    assert "ticket_intents" in err and "Traceback" not in err


def test_config_dir_is_the_one_the_definitions_module_loads(tmp_path):
    """--config-dir wins over a broken directory in FTDATA_CONFIG_DIR, also at the import of
    ftdata_pipeline.definitions (the module a run reconstructs its job from)."""
    good = _configs(tmp_path / "good")
    (good / "datasets" / "support_corpus.yaml").unlink()
    broken = _configs(tmp_path / "broken")
    (broken / "sources.yaml").write_text("sources: [not, a, mapping]\n")
    code = (
        "import sys; from ftdata_pipeline.cli import build_parser, _use_config_dir;"
        f"_use_config_dir(build_parser().parse_args(['--config-dir', {str(good)!r}, 'validate']));"
        "import ftdata_pipeline.definitions as d;"
        "print(sorted(j.name for j in d.defs.jobs))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, DEFAULT_CONFIG_DIR_ENV: str(broken), "FTDATA_PROJECT_ROOT": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ticket_intents_job" in out.stdout and "support_corpus_job" not in out.stdout
