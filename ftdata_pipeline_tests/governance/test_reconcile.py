"""The catalog learns of an export a killed run published but never recorded."""

from __future__ import annotations

import polars as pl

from ftdata_pipeline.cli import main
from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.formats.writer import stage_exports, write_exports
from ftdata_pipeline.governance.catalog import Catalog
from ftdata_pipeline.governance.lineage import export_lineage
from ftdata_pipeline.governance.reconcile import reconcile_export
from ftdata_pipeline.records import conform

RECIPE = RecipeConfig.model_validate(
    {"name": "docs", "kind": "pretraining", "sources": ["kb"],
     "exports": {"formats": ["trl_text"]}}
)


def _frame(n: int) -> pl.DataFrame:
    return conform(pl.DataFrame({
        "record_id": [f"d{i:03d}" for i in range(n)], "source": ["kb"] * n,
        "source_key": [str(i) for i in range(n)], "text": [f"Doc {i}." for i in range(n)],
        "split": ["train", "test"] * (n // 2),
    }))


def _publish_and_record(catalog: Catalog, out, df, run_id: str) -> None:
    staged = stage_exports(df, RECIPE, out, config_hash="h1")
    staged.publish()
    catalog.record_export(run_id=run_id, dataset="docs", config_hash="h1", code_version="t",
                          manifest=staged.manifest, lineage=export_lineage(staged.kept),
                          sources=["kb"])


def test_export_published_before_a_crash_is_reconciled(tmp_path, catalog_url):
    catalog = Catalog(catalog_url)
    out = tmp_path / "exports" / "docs"
    _publish_and_record(catalog, out, _frame(4), "run-1")
    assert reconcile_export(catalog, "docs", out) is None  # in agreement: nothing to do
    # a run publishes a bigger export and dies before recording it
    write_exports(_frame(8), RECIPE, out, config_hash="h2")
    assert catalog.lineage_of_record("d007") == []
    version = reconcile_export(catalog, "docs", out)
    assert version is not None and version.run_id.startswith("recovered-")
    [where] = catalog.lineage_of_record("d007")
    assert (where["split"], where["line"], where["source_key"]) == ("test", 4, "7")
    assert where["files"] == ["trl_text/test.jsonl:4"]
    assert catalog.audit_log(limit=1)[0].action == "reconcile"
    assert reconcile_export(catalog, "docs", out) is None
    catalog.dispose()


def test_ftdata_lineage_reconciles_first(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("FTDATA_HOME", str(home))
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = Catalog(url)
    out = home / "exports" / "docs"
    _publish_and_record(catalog, out, _frame(2), "run-1")
    write_exports(_frame(6), RECIPE, out, config_hash="h2")  # published, never recorded
    assert main(["lineage", "--source", "kb", "--key", "5", "--catalog-url", url]) == 0
    captured = capsys.readouterr()
    assert "docs: record d005 (source_key 5), split test, line 3" in captured.out
    assert "reconciled with the export on disk for docs" in captured.err
    catalog.dispose()


def test_export_lineage_reads_key_columns_and_yields_rows_a_batch_at_a_time(monkeypatch):
    """Lineage of a million exported records as Python dicts at once took about 1 GB: the
    rows come as a generator, a batch of dicts at a time, in the writer's order."""
    import types

    import polars as pl

    from ftdata_pipeline.governance import lineage

    frame = pl.DataFrame({
        "record_id": ["c", "a", "b", "d", "e"], "source": ["s"] * 5,
        "source_key": ["3", "1", "2", "4", "5"],
        "split": ["train", "train", "test", "train", "validation"],
        "messages": ["x"] * 5,
    })
    whole = list(lineage.export_lineage(frame))
    monkeypatch.setattr(lineage, "_LINEAGE_ROWS", 2)
    rows = lineage.export_lineage(frame.lazy())
    assert isinstance(rows, types.GeneratorType)
    assert list(rows) == whole
    assert [(r["record_id"], r["split"], r["line"]) for r in whole] == [
        ("a", "train", 1), ("b", "test", 1), ("c", "train", 2), ("d", "train", 3),
        ("e", "validation", 1),
    ]
