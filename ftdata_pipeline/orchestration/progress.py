"""One readable line per materialized asset, for headless runs (``ftdata materialize``)."""

from __future__ import annotations

from typing import Any


def _value(meta: dict, key: str) -> Any:
    entry = meta.get(key)
    if entry is None:
        return None
    return getattr(entry, "value", entry)


def progress_line(event) -> str | None:
    """``<asset>: in N, kept N, rejected N (top drop reasons)`` for a stage, the row count,
    files or card path for the others; None for events that are not a materialization."""
    if event.event_type_value != "ASSET_MATERIALIZATION":
        return None
    mat = event.event_specific_data.materialization
    meta = dict(mat.metadata)
    name = mat.asset_key.to_user_string()
    if _value(meta, "rows_in") is not None:
        line = (f"{name:<34} in {_value(meta, 'rows_in'):>6}  kept {_value(meta, 'rows_kept'):>6}"
                f"  rejected {_value(meta, 'rows_rejected'):>5}")
        drops = _value(meta, "drops") or {}
        if isinstance(drops, dict) and drops:
            top = sorted(drops.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
            line += "  (" + ", ".join(f"{r} {n}" for r, n in top) + ")"
        return line
    if _value(meta, "files") is not None:
        return f"{name:<34} {_value(meta, 'files')} files in {_value(meta, 'path')}"
    if _value(meta, "card") is not None:
        return f"{name:<34} {_value(meta, 'card')}"
    rows = _value(meta, "dagster/row_count")
    return f"{name:<34} {rows} rows" if rows is not None else name
