"""Raw stage: read one configured source and map it onto the canonical record.

Reading is the source kind's job (``ftdata_pipeline/sources/``: file, SQL); this module maps
the rows: columns, nested paths (``meta.customer.email``, ``turns[0]``) and templates onto
canonical fields, chat turns (one row per turn, or a whole conversation in one column), types
(timestamps and booleans from text), and provenance. Records sources become ``RECORD_SCHEMA``
rows with (source, source_key, record_id); annotations sources become ``ANNOTATION_SCHEMA``
rows (Label Studio / Argilla exports arrive as such rows from their importer) and
teacher_outputs sources ``TEACHER_SCHEMA`` rows. Errors are ``SourceError`` and name the
source, the file or config key and row numbers -- never cell values, which may hold PII.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ftdata_pipeline.config.models import SourceConfig, TurnsMapping
from ftdata_pipeline.records import (
    ANNOTATION_SCHEMA,
    RECORD_SCHEMA,
    SOURCE,
    SOURCE_KEY,
    TEACHER_SCHEMA,
    conform,
    record_id_expr,
)
from ftdata_pipeline.sources import QUARANTINE_SCHEMA, SourceError, source_kind
from ftdata_pipeline.sources.chat import build_messages, shown_roles
from ftdata_pipeline.sources.paths import PathError, describe, describe_columns, path_expr

__all__ = ["SourceError", "SourceLoad", "load_source", "map_source", "read_source"]

CANONICAL_ROLES = ("system", "user", "assistant")
MAX_ROWS_SHOWN = 5  # row numbers quoted in an error message
ROW = "__row_nr"  # 0-based row number, the fallback key and what errors point at

# Timestamp layouts accepted after normalization ("YYYY-MM-DD hh:mm" -> "YYYY-MM-DDThh:mm",
# trailing "Z" -> "+00:00"); strings without an offset are taken as UTC.
_TZ_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M")
# Booleans written as text (CSV, spreadsheets, forms), compared case-insensitively.
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


@dataclass
class SourceLoad:
    """A source read and mapped: records, the lines set aside, and counts for metadata."""

    frame: pl.DataFrame
    quarantined: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=QUARANTINE_SCHEMA))
    counts: dict[str, Any] = field(default_factory=dict)


def read_source(name: str, cfg: SourceConfig, root: Path) -> SourceLoad:
    """Read source ``name``, map it, and say what was quarantined or incomplete."""
    raw = source_kind(cfg).read(name, cfg, Path(root))
    counts: dict[str, Any] = {"rows_in_file": raw.frame.height, **raw.counts}
    frame = map_source(name, cfg, raw.frame, counts)
    return SourceLoad(frame, raw.quarantine_frame(), counts)


def load_source(name: str, cfg: SourceConfig, root: Path) -> pl.DataFrame:
    """Read source ``name`` and return canonical records (or annotation rows), sorted by key."""
    return read_source(name, cfg, root).frame


def map_source(
    name: str, cfg: SourceConfig, df: pl.DataFrame, counts: dict[str, Any] | None = None
) -> pl.DataFrame:
    """Map rows as read onto the canonical record (``counts`` collects template gaps)."""
    counts = {} if counts is None else counts
    if cfg.tool_export:
        # Label Studio / Argilla exports are annotation rows already (the file kind reads
        # them with stages/labeling/imports.py): nothing to map.
        return df
    schema = {"annotations": ANNOTATION_SCHEMA, "teacher_outputs": TEACHER_SCHEMA}.get(
        cfg.role, RECORD_SCHEMA
    )
    if df.width == 0:  # an empty file: nothing to map, and no columns to check
        return pl.DataFrame(schema=schema)
    df = df.with_row_index(ROW)
    if cfg.role == "annotations":
        return _map_annotations(name, cfg, df, counts)
    if cfg.role == "teacher_outputs":
        return _map_teacher_outputs(name, cfg, df, counts)
    return _map_records(name, cfg, df, counts)


def _read(name: str, cfg: SourceConfig, root: Path) -> pl.DataFrame:
    """Every row of the source as read (no mapping); also used by erasure by subject."""
    return source_kind(cfg).read(name, cfg, Path(root)).frame


# ------------------------------------------------------------------------------------------
# mapping
# ------------------------------------------------------------------------------------------


def _mapped_as_text(name: str, cfg: SourceConfig, df: pl.DataFrame) -> pl.DataFrame:
    """Source, key and row of each record, with every mapped field as text."""
    df = _with_key(name, cfg, df)
    return df.select(
        pl.lit(name).alias(SOURCE),
        pl.col(SOURCE_KEY),
        pl.col(ROW),
        *[
            _field_expr(name, field, spec, df).cast(pl.String).alias(field)
            for field, spec in sorted(cfg.mapping.items())
        ],
    )


def _map_annotations(
    name: str, cfg: SourceConfig, df: pl.DataFrame, counts: dict[str, Any]
) -> pl.DataFrame:
    mapped = _mapped_as_text(name, cfg, df)
    if "item_source" not in cfg.mapping and cfg.annotates:
        mapped = mapped.with_columns(pl.lit(cfg.annotates).alias("item_source"))
    return _sorted(cfg, conform(mapped, ANNOTATION_SCHEMA).drop(ROW))


def _map_teacher_outputs(
    name: str, cfg: SourceConfig, df: pl.DataFrame, counts: dict[str, Any]
) -> pl.DataFrame:
    """Teacher responses to prompt records: mapped fields as text, the score as a number
    (``conform`` casts it to the schema's type)."""
    return _sorted(cfg, conform(_mapped_as_text(name, cfg, df), TEACHER_SCHEMA).drop(ROW))


def _map_records(
    name: str, cfg: SourceConfig, df: pl.DataFrame, counts: dict[str, Any]
) -> pl.DataFrame:
    exprs = [
        _field_expr(name, field, spec, df).alias(field)
        for field, spec in sorted(cfg.mapping.items())
    ]
    partial = _template_gaps(cfg, df)
    if partial:
        # Reported, not hidden: such a row's text lacks the part the missing column held.
        counts["template_rows_missing_a_column"] = partial
    if cfg.turns is not None:
        df = _assemble_turns(name, cfg.turns, df, exprs)
    else:
        df = _with_key(name, cfg, df)
        selected = [pl.col(SOURCE_KEY), pl.col(ROW), *exprs]
        if cfg.messages is not None:
            msgs = build_messages(name, cfg.messages, df, ROW)
            df = df.select(selected).join(msgs, on=ROW, how="left", maintain_order="left")
        else:
            df = df.select(selected)
    df = _typed(name, df)
    df = df.with_columns(pl.lit(name).alias(SOURCE)).with_columns(
        record_id_expr(pl.col(SOURCE), pl.col(SOURCE_KEY)).alias("record_id")
    )
    return _sorted(cfg, conform(df, RECORD_SCHEMA).drop(ROW))


def _is_template(spec: str) -> bool:
    return "{" in spec or "}" in spec


def _template_columns(name: str, field: str, spec: str) -> tuple[list, list[str]]:
    try:
        parts = list(string.Formatter().parse(spec))
    except ValueError as exc:
        raise SourceError(f"source {name!r}: mapping.{field}: invalid template: {exc}") from None
    cols = [col for _, col, _, _ in parts if col is not None]
    if any(not c for c in cols):
        raise SourceError(f"source {name!r}: mapping.{field}: template has an empty '{{}}'")
    if any(conv or fmt for _, col, fmt, conv in parts if col is not None):
        raise SourceError(
            f"source {name!r}: mapping.{field}: template placeholders take a column or path "
            "only (no '!conversion' or ':format')"
        )
    return parts, cols


def _template_gaps(cfg: SourceConfig, df: pl.DataFrame) -> dict[str, int]:
    """Per templated field: rows where some, but not all, referenced values are null."""
    out: dict[str, int] = {}
    schema = dict(df.schema)
    for field, spec in sorted(cfg.mapping.items()):
        if not _is_template(spec):
            continue
        cols = [c for _, c, _, _ in string.Formatter().parse(spec) if c]
        if len(cols) < 2:
            continue
        nulls = [path_expr(c, schema)[0].is_null() for c in cols]
        n = df.select((pl.any_horizontal(nulls) & ~pl.all_horizontal(nulls)).sum()).item()
        if n:
            out[field] = int(n)
    return out


def _path(
    name: str, where: str, path: str, df: pl.DataFrame, *, scalar: bool = False
) -> pl.Expr:
    schema = {c: t for c, t in df.schema.items() if c != ROW}
    try:
        expr, dtype = path_expr(path, schema)
    except PathError as exc:
        raise SourceError(f"source {name!r}: {where}: {exc}") from None
    if scalar and isinstance(dtype, (pl.List, pl.Array, pl.Struct)):
        raise SourceError(
            f"source {name!r}: {where}: {path!r} is {describe(dtype)}; a template needs a text "
            "or number (take an element, e.g. {turns[0]}, or a key, e.g. {meta.topic})"
        )
    return expr


def _field_expr(name: str, field: str, spec: str, df: pl.DataFrame) -> pl.Expr:
    """A column or nested path, or a template such as '{subject}\\n\\n{meta.topic}'.

    In a template a null value becomes "" (the row is counted, see ``_template_gaps``); a row
    whose every referenced value is null gets null, not just the literal glue.
    """
    if not _is_template(spec):
        return _path(name, f"mapping.{field}", spec, df)
    parts, cols = _template_columns(name, field, spec)
    values = {c: _path(name, f"mapping.{field}", c, df, scalar=True) for c in cols}
    pieces: list[pl.Expr] = []
    for literal, col, _, _ in parts:
        if literal:
            pieces.append(pl.lit(literal))
        if col is not None:
            pieces.append(values[col].cast(pl.String).fill_null(""))
    all_null = pl.all_horizontal([values[c].is_null() for c in cols])
    return pl.when(all_null).then(None).otherwise(pl.concat_str(pieces))


def _require(name: str, where: str, needed: list[str], available: list[str]) -> None:
    missing = [c for c in needed if c not in available]
    if missing:
        raise SourceError(
            f"source {name!r}: {where}: missing column(s) {', '.join(map(repr, missing))} "
            f"(available: {describe_columns(available)})"
        )


def _with_key(name: str, cfg: SourceConfig, df: pl.DataFrame) -> pl.DataFrame:
    if cfg.key is None:
        return df.with_columns(pl.col(ROW).cast(pl.String).alias(SOURCE_KEY))
    _require(name, "key", [cfg.key], [c for c in df.columns if c != ROW])
    if isinstance(df.schema[cfg.key], (pl.List, pl.Array, pl.Struct)):
        # A list or object cannot be a row's id (and no cast would name the source).
        raise SourceError(
            f"source {name!r}: key column {cfg.key!r} holds {df.schema[cfg.key]} values, "
            "not text or numbers"
        )
    df = df.with_columns(pl.col(cfg.key).cast(pl.String).alias(SOURCE_KEY))
    _check_unique(name, f"key column {cfg.key!r}", df, SOURCE_KEY)
    return df


def _check_unique(name: str, what: str, df: pl.DataFrame, col: str) -> None:
    nulls = df.filter(pl.col(col).is_null())[ROW]
    if nulls.len():
        raise SourceError(
            f"source {name!r}: {what} is null in {nulls.len()} row(s) "
            f"(0-based rows {_rows(nulls)})"
        )
    dups = df.filter(pl.col(col).is_duplicated())[ROW]
    if dups.len():
        raise SourceError(
            f"source {name!r}: {what} has {dups.len()} row(s) sharing a key "
            f"(0-based rows {_rows(dups)})"
        )


def _rows(rows: pl.Series) -> str:
    shown = rows.sort().head(MAX_ROWS_SHOWN).to_list()
    more = ", ..." if rows.len() > MAX_ROWS_SHOWN else ""
    return ", ".join(map(str, shown)) + more


def _assemble_turns(
    name: str, turns: TurnsMapping, df: pl.DataFrame, exprs: list[pl.Expr]
) -> pl.DataFrame:
    """One row per turn -> one row per conversation with ``messages``, in turn order."""
    where = "turns"
    needed = [turns.group, turns.order, turns.role, turns.content]
    _require(name, where, needed, [c for c in df.columns if c != ROW])
    for col in (turns.group, turns.order):
        bad = df.filter(pl.col(col).is_null())[ROW]
        if bad.len():
            raise SourceError(
                f"source {name!r}: turns: column {col!r} is null in {bad.len()} row(s) "
                f"(0-based rows {_rows(bad)})"
            )
    role_map = {r: r for r in CANONICAL_ROLES} | dict(turns.role_map)
    roles = df.select(pl.col(turns.role).cast(pl.String).unique().sort())[turns.role]
    if roles.null_count():
        rows = df.filter(pl.col(turns.role).is_null())[ROW]
        raise SourceError(
            f"source {name!r}: turns: column {turns.role!r} is null in {rows.len()} row(s) "
            f"(0-based rows {_rows(rows)})"
        )
    unmapped = [r for r in roles.to_list() if r not in role_map]
    if unmapped:
        raise SourceError(
            f"source {name!r}: turns.role_map has no entry for role value(s) "
            f"{shown_roles(unmapped)} (mapped: {', '.join(sorted(role_map))})"
        )
    turn_key = pl.struct(pl.col(turns.group).cast(pl.String), pl.col(turns.order))
    dup = df.filter(turn_key.is_duplicated())[ROW]
    if dup.len():
        raise SourceError(
            f"source {name!r}: turns: {dup.len()} row(s) repeat a ({turns.group}, {turns.order}) "
            f"pair (0-based rows {_rows(dup)})"
        )
    ordered = df.with_columns(
        pl.col(turns.group).cast(pl.String).alias(SOURCE_KEY),
        pl.struct(
            pl.col(turns.role).cast(pl.String).replace_strict(role_map).alias("role"),
            pl.col(turns.content).cast(pl.String).alias("content"),
        ).alias("messages"),
    ).sort([SOURCE_KEY, turns.order])
    # Per-conversation fields (created_at, ...) are taken from the first turn.
    return ordered.group_by(SOURCE_KEY, maintain_order=True).agg(
        pl.col(ROW).first(),
        pl.col("messages"),
        *[e.first() for e in exprs],
    ).with_columns(pl.col(SOURCE_KEY).alias("conversation_id"))


def _typed(name: str, df: pl.DataFrame) -> pl.DataFrame:
    """Cast mapped fields to canonical types; unparseable timestamps or ranks are errors."""
    if "created_at" in df.columns:
        parsed = _to_utc(df.schema["created_at"])
        df = df.with_columns(parsed.alias("__parsed"))
        _check_parsed(name, df, "created_at", "is not an ISO 8601 timestamp")
        df = df.with_columns(pl.col("__parsed").alias("created_at")).drop("__parsed")
    if "consent" in df.columns:
        df = df.with_columns(_to_bool(df.schema["consent"]).alias("__parsed"))
        _check_parsed(name, df, "consent", f"is not a boolean ({'/'.join(_TRUE + _FALSE)})")
        df = df.with_columns(pl.col("__parsed").alias("consent")).drop("__parsed")
    if "rank" in df.columns:
        df = df.with_columns(pl.col("rank").cast(pl.Int32, strict=False).alias("__parsed"))
        _check_parsed(name, df, "rank", "is not an integer")
        df = df.with_columns(pl.col("__parsed").alias("rank")).drop("__parsed")
    return df


def _check_parsed(name: str, df: pl.DataFrame, field: str, problem: str) -> None:
    bad = df.filter(pl.col(field).is_not_null() & pl.col("__parsed").is_null())[ROW]
    if bad.len():
        raise SourceError(
            f"source {name!r}: mapping.{field}: value {problem} in {bad.len()} row(s) "
            f"(0-based rows {_rows(bad)})"
        )


def _to_bool(dtype: pl.DataType) -> pl.Expr:
    """true/false from booleans, 0/1 numbers, or text such as yes/no (CSV has only text)."""
    col = pl.col("consent")
    if dtype == pl.Boolean:
        return col
    if dtype.is_numeric():
        return pl.when(col == 1).then(True).when(col == 0).then(False)
    text = col.cast(pl.String).str.strip_chars().str.to_lowercase()
    return (
        pl.when(text.is_in(list(_TRUE))).then(True).when(text.is_in(list(_FALSE))).then(False)
        .otherwise(None).cast(pl.Boolean)
    )


def _to_utc(dtype: pl.DataType) -> pl.Expr:
    col = pl.col("created_at")
    if isinstance(dtype, pl.Datetime):
        col = col.dt.cast_time_unit("us")
        if dtype.time_zone is None:
            return col.dt.replace_time_zone("UTC")
        return col.dt.convert_time_zone("UTC")
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    text = (
        col.cast(pl.String)
        .str.strip_chars()
        .str.replace(r"^(\d{4}-\d{2}-\d{2})[ ]", "${1}T")
        .str.replace(r"[Zz]$", "+00:00")
    )
    candidates = [
        text.str.to_datetime(format=f, time_unit="us", time_zone="UTC", strict=False)
        for f in _TZ_FORMATS
    ] + [
        text.str.to_datetime(format=f, time_unit="us", strict=False).dt.replace_time_zone("UTC")
        for f in _NAIVE_FORMATS
    ]
    candidates.append(
        text.str.to_date(format="%Y-%m-%d", strict=False)
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC")
    )
    return pl.coalesce(candidates)


def _sorted(cfg: SourceConfig, df: pl.DataFrame) -> pl.DataFrame:
    # Row-number keys keep their numeric order ("2" before "10"); real keys sort as strings.
    if cfg.key is None and cfg.turns is None:
        return df.sort(pl.col(SOURCE_KEY).cast(pl.Int64))
    return df.sort(SOURCE_KEY)
