"""Metadata a data engineer can read: tables and numbers, visible placeholders, the kind's
columns, column descriptions, owners and a link to the recipe file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from dagster import AssetKey, TableMetadataValue

from ftdata_pipeline.definitions import build_definitions
from ftdata_pipeline.orchestration.assets import _card_with_inline_plots
from ftdata_pipeline.orchestration.metadata import (
    escape_markdown_cell,
    frame_metadata,
    preview_columns,
    stage_metadata,
)
from ftdata_pipeline.records import RECORD_SCHEMA, empty_records
from ftdata_pipeline.stages.base import StageResult

ROOT = Path(__file__).resolve().parents[2]


def _records(n: int = 3) -> pl.DataFrame:
    base = empty_records()
    rows = pl.DataFrame(
        {
            "record_id": [f"r{i}" for i in range(n)],
            "source": ["support_tickets"] * n,
            "source_key": [f"T-{i}" for i in range(n)],
            "text": [f"Hi <PERSON>, your order {i} | shipped" for i in range(n)],
            "label": ["shipping"] * n,
        }
    )
    return pl.concat([base, rows], how="diagonal_relaxed").select(list(RECORD_SCHEMA))


def test_preview_keeps_placeholders_visible_and_shows_only_the_kind_columns():
    df = _records()
    meta = frame_metadata(df, preview=True, kind="classification")
    md = meta["preview"].value
    assert "&lt;PERSON&gt;" in md and "<PERSON>" not in md
    header = md.splitlines()[0]
    assert header == "| record_id | source | source_key | text | label |"
    assert len(df.columns) > 15  # the record has many more columns, all null for this kind
    assert escape_markdown_cell("a|b\nc") == "a\\|b c"
    assert preview_columns(df, None) == df.columns


def test_counts_and_drop_reasons_are_tables_and_numbers():
    kept = _records(3)
    rejected = pl.DataFrame({"rule": ["near_duplicate", "near_duplicate", "too_short"]})
    result = StageResult(
        kept=kept, rejected=rejected, rows_in=6, stats={"clusters": 2, "nested": {"a": 1}}
    )
    meta = stage_metadata(result, cfg_hash="abc", preview=True, kind="classification")
    assert (meta["rows_in"], meta["rows_kept"], meta["rows_rejected"]) == (6, 3, 3)
    table = meta["drop_reasons"]
    assert isinstance(table, TableMetadataValue)
    assert {(r.data["rule"], r.data["rows"]) for r in table.records} == {
        ("near_duplicate", 2), ("too_short", 1),
    }
    assert meta["dropped/near_duplicate"] == 2 and meta["dropped/too_short"] == 1
    assert meta["stats/clusters"] == 2 and "stats/nested" not in meta
    assert "drops" not in meta and "drops_table" not in meta  # no second copy as JSON
    columns = {c.name: c.description for c in meta["dagster/column_schema"].columns}
    assert "source_key" in columns and "key in that source" in columns["source_key"]


def test_every_asset_has_owners_and_recipe_assets_link_the_recipe(tmp_path):
    defs = build_definitions(home=str(tmp_path))
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners, key
        if key.path[0] != "raw":
            refs = node.metadata["dagster/code_references"].code_references
            assert refs[0].file_path == str(ROOT / "configs" / "datasets" / f"{key.path[0]}.yaml")
    owners = graph.get(AssetKey(["ticket_intents", "labeled"])).owners
    assert set(owners) == {"support-ops@acmecloud.example", "ml-data@acmecloud.example"}


def test_card_markdown_carries_its_plots_inline(tmp_path):
    plot = tmp_path / "split_distribution.png"
    plot.write_bytes(b"\x89PNG fake")
    card = tmp_path / "README.md"
    card.write_text("# Card\n\n![Records per split](split_distribution.png)\n")
    out = _card_with_inline_plots(card, [plot])
    assert "](data:image/png;base64," in out and "](split_distribution.png)" not in out
