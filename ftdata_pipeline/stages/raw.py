"""Raw stage: read one configured source (file or SQL query) and map it onto the canonical record.

Records sources become ``RECORD_SCHEMA`` rows with provenance (source, source_key, record_id);
annotations sources become ``ANNOTATION_SCHEMA`` rows. Errors are ``SourceError`` and name the
source, the file or config key and row numbers -- never cell values, which may hold PII.
"""

from __future__ import annotations

import csv
import json
import os
import string
from pathlib import Path

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

CANONICAL_ROLES = ("system", "user", "assistant")
MAX_ROWS_SHOWN = 5  # row numbers quoted in an error message
ROW = "__row_nr"  # 0-based row number, the fallback key and what errors point at

# Timestamp layouts accepted after normalization ("YYYY-MM-DD hh:mm" -> "YYYY-MM-DDThh:mm",
# trailing "Z" -> "+00:00"); strings without an offset are taken as UTC.
_TZ_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M")


class SourceError(ValueError):
    """A source cannot be read or mapped. The message names the source and what is wrong."""


def load_source(name: str, cfg: SourceConfig, root: Path) -> pl.DataFrame:
    """Read source ``name`` and return canonical records (or annotation rows), sorted by key."""
    root = Path(root)
    if cfg.tool_export:
        return _read_tool_export(name, cfg, root)
    df = _read(name, cfg, root).with_row_index(ROW)
    if cfg.role == "annotations":
        return _map_annotations(name, cfg, df)
    if cfg.role == "teacher_outputs":
        return _map_teacher_outputs(name, cfg, df)
    return _map_records(name, cfg, df)


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------


def _read(name: str, cfg: SourceConfig, root: Path) -> pl.DataFrame:
    if cfg.kind == "file":
        return _read_file(name, cfg, root)
    return _read_sql(name, cfg, root)


def _read_file(name: str, cfg: SourceConfig, root: Path) -> pl.DataFrame:
    path = Path(cfg.path)
    if not path.is_absolute():
        path = root / path
    if not path.is_file():
        raise SourceError(f"source {name!r}: file not found: {path}")
    # Library error messages can quote the offending content, so they are not passed on: the
    # file is re-scanned on failure to name the bad line instead.
    try:
        if cfg.format == "jsonl":
            return pl.read_ndjson(path, infer_schema_length=None)
        if cfg.format == "csv":
            return pl.read_csv(path, infer_schema=False)
        return pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one clear error
        if cfg.format == "jsonl" and not _has_text(path):
            # An empty landing file is no data, not broken data; JSONL has no header to keep.
            return pl.DataFrame(schema=dict.fromkeys(_referenced_columns(cfg), pl.String))
        where = _bad_line(path, cfg.format)
        raise SourceError(
            f"source {name!r}: {path}: not a valid {cfg.format} file"
            f"{where} ({type(exc).__name__})"
        ) from None


def _read_tool_export(name: str, cfg: SourceConfig, root: Path) -> pl.DataFrame:
    """Label Studio / Argilla export files: parsed by the labeling package's importers."""
    from ftdata_pipeline.stages.labeling.imports import AnnotationImportError, load_tool_export

    path = Path(cfg.path) if Path(cfg.path).is_absolute() else root / cfg.path
    if not path.is_file():
        raise SourceError(f"source {name!r}: file not found: {path}")
    try:
        return load_tool_export(name, cfg, path)
    except AnnotationImportError as exc:
        raise SourceError(str(exc)) from None


def _has_text(path: Path) -> bool:
    with path.open("rb") as fh:
        return any(line.strip() for line in fh)


def _referenced_columns(cfg: SourceConfig) -> list[str]:
    cols = [cfg.key] if cfg.key else []
    if cfg.turns is not None:
        cols += [cfg.turns.group, cfg.turns.order, cfg.turns.role, cfg.turns.content]
    for spec in cfg.mapping.values():
        if "{" in spec or "}" in spec:
            cols += [c for _, c, _, _ in string.Formatter().parse(spec) if c]
        else:
            cols.append(spec)
    return list(dict.fromkeys(cols))


def _bad_line(path: Path, fmt: str | None) -> str:
    """' at line N' for the first line a plain reader rejects, or '' when none is found."""
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            if fmt == "jsonl":
                for n, line in enumerate(fh, start=1):
                    if line.strip():
                        try:
                            value = json.loads(line)
                        except json.JSONDecodeError:
                            return f" at line {n}"
                        if not isinstance(value, dict):
                            return f" at line {n} (not a JSON object)"
            elif fmt == "csv":
                reader = csv.reader(fh)
                width = None
                for row in reader:
                    if width is None:
                        width = len(row)
                    elif len(row) != width:
                        return f" at line {reader.line_num} ({len(row)} fields, header has {width})"
    except UnicodeDecodeError:
        return " (not UTF-8 text)"
    return ""


def _read_sql(name: str, cfg: SourceConfig, root: Path) -> pl.DataFrame:
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    env_value = os.environ.get(cfg.url_env) if cfg.url_env else None
    raw_url = env_value or cfg.url
    origin = f"environment variable {cfg.url_env}" if env_value else "url"
    if not raw_url:
        raise SourceError(
            f"source {name!r}: environment variable {cfg.url_env} is not set and no url is given"
        )
    try:
        url = sa.engine.make_url(raw_url)
    except ArgumentError:
        raise SourceError(f"source {name!r}: {origin} is not a valid SQLAlchemy URL") from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        db = Path(url.database)
        if not db.is_absolute():
            db = root / db
            url = url.set(database=str(db))
        # SQLite would silently create an empty database for a missing file.
        if not db.is_file():
            raise SourceError(f"source {name!r}: SQLite database not found: {db}")
    shown = url.render_as_string(hide_password=True)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return pl.read_database(sa.text(cfg.query), conn, infer_schema_length=None)
    except SQLAlchemyError as exc:
        # The driver's own message ("no such table: x") is about the query, not the data.
        reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
        raise SourceError(f"source {name!r}: query failed on {shown}: {reason}") from None
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------------
# mapping
# ------------------------------------------------------------------------------------------


def _map_annotations(name: str, cfg: SourceConfig, df: pl.DataFrame) -> pl.DataFrame:
    df = _with_key(name, cfg, df)
    mapped = df.select(
        pl.lit(name).alias(SOURCE),
        pl.col(SOURCE_KEY),
        pl.col(ROW),
        *[
            _field_expr(name, field, spec, df.columns).cast(pl.String).alias(field)
            for field, spec in sorted(cfg.mapping.items())
        ],
    )
    if "item_source" not in cfg.mapping and cfg.annotates:
        mapped = mapped.with_columns(pl.lit(cfg.annotates).alias("item_source"))
    return _sorted(cfg, conform(mapped, ANNOTATION_SCHEMA).drop(ROW))


def _map_teacher_outputs(name: str, cfg: SourceConfig, df: pl.DataFrame) -> pl.DataFrame:
    """Teacher responses to prompt records: mapped fields as text, the score as a number."""
    df = _with_key(name, cfg, df)
    mapped = df.select(
        pl.lit(name).alias(SOURCE),
        pl.col(SOURCE_KEY),
        pl.col(ROW),
        *[
            _field_expr(name, field, spec, df.columns).cast(pl.String).alias(field)
            for field, spec in sorted(cfg.mapping.items())
        ],
    )
    return _sorted(cfg, conform(mapped, TEACHER_SCHEMA).drop(ROW))


def _map_records(name: str, cfg: SourceConfig, df: pl.DataFrame) -> pl.DataFrame:
    exprs = [
        _field_expr(name, field, spec, df.columns).alias(field)
        for field, spec in sorted(cfg.mapping.items())
    ]
    if cfg.turns is not None:
        df = _assemble_turns(name, cfg.turns, df, exprs)
    else:
        df = _with_key(name, cfg, df)
        df = df.select(pl.col(SOURCE_KEY), pl.col(ROW), *exprs)
    df = _typed(name, df)
    df = df.with_columns(pl.lit(name).alias(SOURCE)).with_columns(
        record_id_expr(pl.col(SOURCE), pl.col(SOURCE_KEY)).alias("record_id")
    )
    return _sorted(cfg, conform(df, RECORD_SCHEMA).drop(ROW))


def _field_expr(name: str, field: str, spec: str, columns: list[str]) -> pl.Expr:
    """A plain column name, or a template such as '{subject}\\n\\n{body}' (nulls -> '')."""
    available = [c for c in columns if c != ROW]
    if "{" not in spec and "}" not in spec:
        _require(name, f"mapping.{field}", [spec], available)
        return pl.col(spec)
    try:
        parts = list(string.Formatter().parse(spec))
    except ValueError as exc:
        raise SourceError(f"source {name!r}: mapping.{field}: invalid template: {exc}") from None
    cols = [col for _, col, _, _ in parts if col is not None]
    if any(not c for c in cols):
        raise SourceError(f"source {name!r}: mapping.{field}: template has an empty '{{}}'")
    _require(name, f"mapping.{field}", cols, available)
    pieces: list[pl.Expr] = []
    for literal, col, _, _ in parts:
        if literal:
            pieces.append(pl.lit(literal))
        if col is not None:
            pieces.append(pl.col(col).cast(pl.String).fill_null(""))
    # A row whose every referenced column is null has no content, not just the literal glue.
    all_null = pl.all_horizontal([pl.col(c).is_null() for c in cols])
    return pl.when(all_null).then(None).otherwise(pl.concat_str(pieces))


def _require(name: str, where: str, needed: list[str], available: list[str]) -> None:
    missing = [c for c in needed if c not in available]
    if missing:
        raise SourceError(
            f"source {name!r}: {where}: missing column(s) {', '.join(map(repr, missing))} "
            f"(available: {', '.join(available) or 'none'})"
        )


def _with_key(name: str, cfg: SourceConfig, df: pl.DataFrame) -> pl.DataFrame:
    if cfg.key is None:
        return df.with_columns(pl.col(ROW).cast(pl.String).alias(SOURCE_KEY))
    _require(name, "key", [cfg.key], [c for c in df.columns if c != ROW])
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
            f"{', '.join(map(repr, unmapped))} (mapped: {', '.join(sorted(role_map))})"
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
