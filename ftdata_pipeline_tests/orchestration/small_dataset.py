"""A small pre-training dataset over a slice of the demo tickets, in its own config directory.

Used by the executor and team-instance tests: the recipe is the demo's ``support_corpus``
(curation, redaction, split, export) over the first ``n`` demo tickets, with the curation date
pinned so every run of it writes the same exports. ``dataset_job`` is a module-level job
factory that ``dagster.reconstructable`` can point worker processes at: it builds the
Definitions from ``FTDATA_CONFIG_DIR`` and ``FTDATA_HOME``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ftdata_pipeline.config.loader import project_root

DATASET = "small_corpus"
JOB = f"{DATASET}_job"


def write_small_config(base: Path, n: int = 300) -> Path:
    """Write ``base``/tickets.jsonl and ``base``/configs/; return the config directory."""
    root = project_root()
    base.mkdir(parents=True, exist_ok=True)
    lines = (root / "demo_data" / "support_tickets.jsonl").read_text(encoding="utf-8")
    tickets = base / "tickets.jsonl"
    tickets.write_text("".join(lines.splitlines(keepends=True)[:n]), encoding="utf-8")
    sources = yaml.safe_load((root / "configs" / "sources.yaml").read_text())["sources"]
    source = {**sources["support_tickets"], "path": str(tickets)}
    recipe = yaml.safe_load((root / "configs" / "datasets" / "support_corpus.yaml").read_text())
    recipe["sources"] = ["support_tickets"]
    recipe.pop("schedule", None)
    recipe["curate"]["as_of"] = "2026-10-01"
    for eval_set in recipe["curate"]["decontamination"]["eval_sets"]:
        eval_set["path"] = str(root / eval_set["path"])
    cfg = base / "configs"
    (cfg / "datasets").mkdir(parents=True, exist_ok=True)
    (cfg / "sources.yaml").write_text(yaml.safe_dump({"sources": {"support_tickets": source}}))
    (cfg / "datasets" / f"{DATASET}.yaml").write_text(yaml.safe_dump(recipe))
    return cfg


def dataset_job():
    """The dataset's job, from the environment's config dir, home and executor."""
    from ftdata_pipeline.definitions import build_definitions

    return build_definitions().resolve_job_def(JOB)


def export_files(home: Path) -> dict[str, bytes]:
    """Every file under the dataset's export folder, by relative path."""
    folder = Path(home) / "exports" / DATASET
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def in_process_baseline(tmp_path: Path, monkeypatch) -> tuple[Path, dict[str, bytes], Path]:
    """Write the small config, run its job in-process and return (config dir, its export
    files, an empty DAGSTER_HOME for the executor under test), with the environment pointing
    at the config and no executor or catalog override."""
    from dagster import DagsterInstance

    from ftdata_pipeline.definitions import build_definitions

    cfg = write_small_config(tmp_path / "project")
    monkeypatch.setenv("FTDATA_CONFIG_DIR", str(cfg))
    monkeypatch.delenv("FTDATA_CATALOG_URL", raising=False)
    monkeypatch.delenv("FTDATA_EXECUTOR", raising=False)
    local_home = tmp_path / "in_process"
    result = build_definitions(home=str(local_home)).resolve_job_def(JOB).execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    expected = export_files(local_home)
    assert any(name.endswith(".jsonl") for name in expected), expected.keys()
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return cfg, expected, dagster_home
