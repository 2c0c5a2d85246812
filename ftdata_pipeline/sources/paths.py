"""Nested field paths in mappings and templates: ``meta.customer.email``, ``turns[0]``.

A path is a column name followed by ``.field`` (a key of a JSON object / Parquet struct) and
``[n]`` (the n-th element of a list, 0-based; negative counts from the end) steps. It is
resolved against the frame's schema, so a path that does not fit the data (missing column,
missing key, indexing something that is not a list) is an error before any row is read. A
column whose own name contains dots or brackets is taken as is.
"""

from __future__ import annotations

import re

import polars as pl

_ROOT = re.compile(r"[^.\[\]]+")
_STEP = re.compile(r"\.([^.\[\]]+)|\[(-?\d+)\]")


class PathError(ValueError):
    """A path does not fit the data; the message says which step and why (no values)."""


def parse(path: str) -> tuple[str, list[str | int]]:
    """'meta.items[0].sku' -> ('meta', ['items', 0, 'sku'])."""
    root = _ROOT.match(path)
    if root is None:
        raise PathError(f"invalid path {path!r}")
    steps: list[str | int] = []
    pos = root.end()
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            raise PathError(f"invalid path {path!r} at character {pos + 1}")
        steps.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    return root.group(0), steps


def root_column(path: str, columns: list[str]) -> str:
    """The frame column a path starts from (for listing what a mapping reads)."""
    if path in columns:
        return path
    try:
        return parse(path)[0]
    except PathError:
        return path


def describe(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Struct):
        return "an object"
    if isinstance(dtype, (pl.List, pl.Array)):
        return "a list"
    if dtype == pl.Null:
        return "always null"
    return f"a {dtype} value"


# Column names are echoed in errors only when they look like identifiers: a CSV file without a
# header row has its first data row (names, e-mails) as column names, and errors reach logs
# that everyone with the UI can read.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def describe_columns(columns) -> str:
    """The columns for an error message: identifier-like names, the rest only counted."""
    names = [str(c) for c in columns]
    shown = [c for c in names if _IDENTIFIER.match(c)]
    hidden = len(names) - len(shown)
    text = ", ".join(shown) or "none"
    if hidden:
        text += (f"; {hidden} more not shown, not identifier-like — does the file have a "
                 "header row?")
    return text


def path_expr(path: str, schema: dict[str, pl.DataType]) -> tuple[pl.Expr, pl.DataType]:
    """Polars expression reading ``path`` and the dtype it yields; PathError if it does not fit."""
    if path in schema:
        return pl.col(path), schema[path]
    root, steps = parse(path)
    if root not in schema:
        raise PathError(
            f"missing column {root!r} (available: {describe_columns(schema)})"
        )
    expr, dtype, walked = pl.col(root), schema[root], root
    for step in steps:
        if isinstance(step, int):
            if not isinstance(dtype, (pl.List, pl.Array)):
                raise PathError(f"{walked!r} is {describe(dtype)}, not a list: cannot take [{step}]")
            expr, dtype = expr.list.get(step, null_on_oob=True), dtype.inner
            walked += f"[{step}]"
        else:
            if not isinstance(dtype, pl.Struct):
                raise PathError(
                    f"{walked!r} is {describe(dtype)}, not an object: cannot take .{step}"
                )
            fields = {f.name: f.dtype for f in dtype.fields}
            if step not in fields:
                raise PathError(
                    f"{walked!r} has no key {step!r} in any row (keys: {', '.join(fields)})"
                )
            expr, dtype = expr.struct.field(step), fields[step]
            walked += f".{step}"
    return expr, dtype
