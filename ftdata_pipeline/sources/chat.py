"""Chat ``messages`` from a column holding a whole conversation, in the three usual shapes.

- ``strings``: ``["hi", "hello!", ...]`` with a role pattern (user, assistant, ...) and an
  optional leading system prompt;
- ``role_content``: ``[{"role": "user", "content": "hi"}, ...]`` (OpenAI style), role map;
- ``sharegpt``: ``[{"from": "human", "value": "hi"}, ...]``.

The list is exploded once, roles are computed per position or mapped per value with Polars
expressions, and the turns are gathered back per row. A row whose list is null or empty gets
null ``messages`` (the curate stage rejects it as ``missing_content``).
"""

from __future__ import annotations

import polars as pl

from ftdata_pipeline.config.models import MessagesMapping
from ftdata_pipeline.records import MESSAGE
from ftdata_pipeline.sources.base import SourceError
from ftdata_pipeline.sources.paths import PathError, describe, path_expr

_M, _N, _POS = "__msg", "__n", "__pos"
MAX_SHOWN = 5


def build_messages(name: str, spec: MessagesMapping, df: pl.DataFrame, row: str) -> pl.DataFrame:
    """Frame of (``row``, ``messages``) for every row of ``df`` (``row``: its row-number column)."""
    where = f"source {name!r}: messages.column {spec.column!r}"
    try:
        expr, dtype = path_expr(spec.column, dict(df.schema))
    except PathError as exc:
        raise SourceError(f"{where}: {exc}") from None
    if dtype == pl.Null:  # every value null, e.g. an empty sample: nothing to build
        return df.select(pl.col(row), pl.lit(None, pl.List(MESSAGE)).alias("messages"))
    if not isinstance(dtype, (pl.List, pl.Array)):
        raise SourceError(f"{where}: is {describe(dtype)}, expected a list of turns")
    inner = dtype.inner
    turns = (
        df.select(pl.col(row), expr.alias(_M))
        .with_columns(pl.col(_M).list.len().alias(_N))
        .filter(pl.col(_N) > 0)
        .explode(_M)
        .with_columns(pl.int_range(pl.len()).over(row).alias(_POS))
    )
    if spec.shape == "strings":
        if inner not in (pl.String, pl.Null):
            raise SourceError(
                f"{where}: holds {describe(inner)} items, shape 'strings' needs texts "
                "(use shape role_content or sharegpt for objects)"
            )
        turns = turns.with_columns(_pattern_roles(spec).alias("role"), pl.col(_M).alias("content"))
    else:
        turns = _object_turns(name, spec, turns, inner, where, row)
    built = turns.group_by(row, maintain_order=True).agg(
        pl.struct(pl.col("role"), pl.col("content").cast(pl.String)).alias("messages")
    )
    return df.select(pl.col(row)).join(built, on=row, how="left", maintain_order="left").with_columns(
        pl.col("messages").cast(pl.List(MESSAGE))
    )


def _pattern_roles(spec: MessagesMapping) -> pl.Expr:
    if spec.leading_system == "auto":
        system = (pl.col(_N) % 2) == 1
    else:
        system = pl.lit(bool(spec.leading_system))
    offset = pl.col(_POS) - system.cast(pl.Int64)
    cycle = offset % len(spec.roles)
    role = pl.lit(spec.roles[-1])
    for i, name in reversed(list(enumerate(spec.roles))):
        role = pl.when(cycle == i).then(pl.lit(name)).otherwise(role)
    return pl.when(system & (pl.col(_POS) == 0)).then(pl.lit("system")).otherwise(role)


def shown_roles(values: list[str]) -> str:
    """Role values for an error message. Roles are a small vocabulary (user, gpt, agent); when
    the values do not look like one (a role key pointing at the text, say) they may be
    content, and only their number is given."""
    plain = all(len(v) <= 24 and v.replace("_", "").replace("-", "").isalnum() for v in values)
    if plain and len(values) <= 10:
        return ", ".join(map(repr, values))
    return f"({len(values)} distinct values, not shown: they do not look like role names)"


def _object_turns(
    name: str, spec: MessagesMapping, turns: pl.DataFrame, inner, where: str, row: str
) -> pl.DataFrame:
    role_key, content_key = spec.keys
    if not isinstance(inner, pl.Struct):
        raise SourceError(
            f"{where}: holds {describe(inner)} items, shape {spec.shape!r} needs objects "
            f"with {role_key!r} and {content_key!r} keys (use shape strings for plain texts)"
        )
    fields = {f.name: f.dtype for f in inner.fields}
    for option, key in (("role_key", role_key), ("content_key", content_key)):
        if key not in fields:
            raise SourceError(
                f"source {name!r}: messages.{option}: the turns have no key {key!r} "
                f"(keys: {', '.join(fields)})"
            )
    if isinstance(fields[content_key], (pl.List, pl.Struct, pl.Array)):
        raise SourceError(
            f"source {name!r}: messages.content_key {content_key!r}: is "
            f"{describe(fields[content_key])} (e.g. multimodal parts), expected text"
        )
    role_map = spec.full_role_map
    turns = turns.with_columns(
        pl.col(_M).struct.field(role_key).cast(pl.String).alias("__role"),
        pl.col(_M).struct.field(content_key).cast(pl.String).alias("content"),
    )
    null_roles = turns.filter(pl.col("__role").is_null())
    if null_roles.height:
        rows = null_roles[row].unique().sort().head(MAX_SHOWN).to_list()
        raise SourceError(
            f"source {name!r}: messages.role_key {role_key!r}: missing in {null_roles.height} "
            f"turn(s) (0-based rows {', '.join(map(str, rows))})"
        )
    values = turns["__role"].unique().sort().to_list()
    unmapped = [v for v in values if v not in role_map]
    if unmapped:
        raise SourceError(
            f"source {name!r}: messages.role_map has no entry for role value(s) "
            f"{shown_roles(unmapped)} (mapped: {', '.join(sorted(role_map))})"
        )
    turns = turns.with_columns(pl.col("__role").replace_strict(role_map).alias("role"))
    return turns.filter(pl.col("role") != "skip")  # e.g. tool results the recipe leaves out
