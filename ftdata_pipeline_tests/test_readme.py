"""The README's "add a source" and "add a dataset" examples are valid configs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ftdata_pipeline.config.loader import load_project

ROOT = Path(__file__).resolve().parents[1]


def _yaml_block_after(heading: str, text: str) -> str:
    match = re.search(rf"## {heading}\n.*?```yaml\n(.*?)```", text, re.S)
    assert match, f"no yaml block under '## {heading}'"
    return match.group(1)


def test_readme_examples_validate(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text("utf-8")
    source = _yaml_block_after("Add a source", readme)
    recipe = _yaml_block_after("Add a dataset", readme)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    with open(tmp_path / "configs" / "sources.yaml", "a", encoding="utf-8") as fh:
        fh.write(source.split("sources:\n", 1)[1])
    (tmp_path / "configs" / "datasets" / "crm_intents.yaml").write_text(recipe, "utf-8")
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(ROOT))
    project = load_project(tmp_path / "configs")
    assert project.recipes["crm_intents"].sources == ["crm_notes"]
    assert project.sources["crm_notes"].url_env == "CRM_DATABASE_URL"
