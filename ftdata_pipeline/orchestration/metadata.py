"""Metadata conventions recorded on every materialization, in one place.

Every stage asset records: row count, column schema, rows in/kept/rejected, rows dropped per
reason, the recipe's config hash, and lineage (provenance columns and rows per source). Only
assets downstream of redaction get a data preview; nothing here ever carries raw text from
before the redacted stage.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import polars as pl
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from ftdata_pipeline.config.models import RecipeConfig, SourceConfig
from ftdata_pipeline.governance.card_split import rlhf_section
from ftdata_pipeline.records import (
    row_count,
    COLUMN_DESCRIPTIONS,
    KIND_REQUIRED_FIELDS,
    PROVENANCE_COLUMNS,
    SOURCE,
)
from ftdata_pipeline.stages.base import StageResult

PREVIEW_ROWS = 5
PREVIEW_CHARS = 120


def config_hash(recipe: RecipeConfig, sources: dict[str, SourceConfig]) -> str:
    """sha256 over the recipe and the sources it reads (canonical JSON)."""
    payload = {
        "recipe": recipe.model_dump(mode="json"),
        "sources": {
            name: sources[name].model_dump(mode="json")
            for name in sorted({*recipe.sources, *recipe.label.annotation_sources, *recipe.label.teacher_sources})
            if name in sources
        },
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def source_config_hash(source: SourceConfig) -> str:
    blob = json.dumps(source.model_dump(mode="json"), sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def column_description(name: str) -> str | None:
    if name in COLUMN_DESCRIPTIONS:
        return COLUMN_DESCRIPTIONS[name]
    if name.startswith("q_"):
        return f"curation score {name[2:]!r}, kept to re-tune thresholds without recomputing"
    return None


def column_schema(df: pl.DataFrame | pl.LazyFrame) -> TableSchema:
    return TableSchema(
        columns=[
            TableColumn(name, str(dtype), description=column_description(name))
            for name, dtype in df.collect_schema().items()
        ]
    )


# Columns a preview shows besides provenance and the kind's own fields.
PREVIEW_EXTRA = ("conversation_id", "label", "rank", "label_agreement", "split")


def preview_columns(df: pl.DataFrame, kind: str | None) -> list[str]:
    """Provenance, the fields the dataset kind uses, and the few bookkeeping columns that are
    filled: not the ~30 columns of the canonical record that stay null for this kind."""
    if not kind or kind not in KIND_REQUIRED_FIELDS:
        return df.columns
    wanted = [*PROVENANCE_COLUMNS, *KIND_REQUIRED_FIELDS[kind], *PREVIEW_EXTRA]
    if kind == "chat_sft":
        wanted.append("system")
    head = df.head(PREVIEW_ROWS)
    return [
        c for c in dict.fromkeys(wanted)
        if c in df.columns and (c in PROVENANCE_COLUMNS or head[c].null_count() < head.height)
    ]


def _markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def frame_metadata(
    df: pl.DataFrame | pl.LazyFrame, *, preview: bool, kind: str | None = None
) -> dict[str, Any]:
    """Row count, schema, rows per source and a preview; of a LazyFrame (a stage's output
    spilled to disk) without reading more than the source column and the preview's rows."""
    lazy = df.lazy()
    columns = lazy.collect_schema().names()
    height = row_count(df)
    meta: dict[str, Any] = {
        "dagster/row_count": height,
        "dagster/column_schema": column_schema(df),
    }
    if SOURCE in columns:
        per_source = lazy.group_by(SOURCE).len().sort(SOURCE).collect()
        meta["lineage"] = MetadataValue.json(
            {
                "provenance_columns": [c for c in PROVENANCE_COLUMNS if c in columns],
                "rows_per_source": dict(
                    zip(per_source[SOURCE].to_list(), per_source["len"].to_list(), strict=True)
                ),
            }
        )
    if preview and height:
        head = lazy.head(PREVIEW_ROWS).collect()
        meta["preview"] = MetadataValue.md(_preview(head.select(preview_columns(head, kind))))
    return meta


def _preview_cell(name: str, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.String or dtype == pl.Boolean or dtype.is_numeric() or dtype.is_temporal():
        expr = pl.col(name).cast(pl.String)
    else:  # lists and structs (chat messages): show them as JSON
        expr = pl.col(name).map_elements(
            lambda v: json.dumps(v, ensure_ascii=False, default=str), return_dtype=pl.String
        )
    return expr.str.slice(0, PREVIEW_CHARS).alias(name)


def escape_markdown_cell(value: Any) -> str:
    """Text safe in a Markdown table cell: placeholders such as ``<PERSON>`` stay visible
    (the UI's Markdown would take them for HTML tags and show nothing)."""
    text = "" if value is None else str(value)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace("|", "\\|").replace("\n", " ")
    )


def _preview(df: pl.DataFrame) -> str:
    shown = df.head(PREVIEW_ROWS).select(
        [_preview_cell(name, dtype) for name, dtype in df.schema.items()]
    )
    rows = [[escape_markdown_cell(v) for v in row] for row in shown.iter_rows()]
    return _markdown_table(shown.columns, rows)


DROP_REASONS_SCHEMA = TableSchema(
    columns=[
        TableColumn("rule", "string", description="why the records were dropped"),
        TableColumn("rows", "int", description="records dropped by the rule"),
    ]
)


def drop_metadata(drops: dict[str, int]) -> dict[str, Any]:
    """Drop reasons as a table, and one number per rule so the Plots tab charts each rule
    across materializations."""
    meta: dict[str, Any] = {
        "drop_reasons": MetadataValue.table(
            records=[TableRecord({"rule": r, "rows": n}) for r, n in sorted(drops.items())],
            schema=DROP_REASONS_SCHEMA,
        )
    }
    meta.update({f"dropped/{rule}": int(n) for rule, n in sorted(drops.items())})
    return meta


def numeric_stats(stats: dict[str, Any]) -> dict[str, float | int]:
    """Top-level numeric stage statistics as numbers (charted in the Plots tab)."""
    return {
        f"stats/{k}": v for k, v in sorted(stats.items())
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def stage_metadata(
    result: StageResult, *, cfg_hash: str, preview: bool, kind: str | None = None
) -> dict[str, Any]:
    drops = result.drop_counts()
    meta = frame_metadata(result.kept, preview=preview, kind=kind)
    meta.update(
        {
            # numbers, so the Plots tab charts rows in / kept / rejected over time
            "rows_in": result.rows_in,
            "rows_kept": result.rows_kept,
            "rows_rejected": result.rows_rejected,
            **drop_metadata(drops),
            **numeric_stats(result.stats),
            "config_hash": cfg_hash,
            "stats": MetadataValue.json(json.loads(json.dumps(result.stats, default=str))),
        }
    )
    if result.stats.get("rlhf"):  # split stage of a recipe with RLHF steps
        meta["rlhf_steps"] = MetadataValue.md("\n".join(rlhf_section(result.stats["rlhf"])))
    return meta


def stage_counts(stage: str, result: StageResult) -> dict[str, Any]:
    """The content-free summary of one stage run, stored for the card and the CLI."""
    return {
        "stage": stage,
        "rows_in": result.rows_in,
        "rows_kept": result.rows_kept,
        "rows_rejected": result.rows_rejected,
        "rows_out": result.rows_out,
        "drops": result.drop_counts(),
        "stats": result.stats,
    }
