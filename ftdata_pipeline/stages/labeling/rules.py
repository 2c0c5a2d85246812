"""Rule labeling functions: keywords, regular expressions and field conditions -> label or abstain.

Each function of ``label.functions`` votes its label on a record when its keywords or pattern are
found in its field and all its field conditions hold; otherwise it abstains. Votes combine by
majority or by weight; a tie is no label. Every function is reported as Snorkel's LFAnalysis
does: coverage (share of records it labels), overlap (share it labels that another function also
labels) and conflict (share it labels that another function labels differently).

Patterns run in Polars' regex engine (Rust ``regex``: linear time, no look-around or
backreferences) through the shared ``config.safe_regex`` helper; a pattern it cannot compile is
a config error, never a silent Python fallback.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ftdata_pipeline.config.models import FieldCondition, LabelingFunction, LabelRule
from ftdata_pipeline.config.safe_regex import contains

# Characters the Rust regex syntax treats as meta characters (regex_syntax::is_meta_character).
_META = set("\\.+*?()|[]{}^$#&-~")


def escape(text: str) -> str:
    """A literal for Polars' regex engine (``re.escape`` emits escapes Rust's syntax rejects)."""
    return "".join(f"\\{c}" if c in _META else c for c in text)


def keyword_pattern(keywords: list[str]) -> str:
    """Case-insensitive whole-word match of any keyword."""
    return r"(?i)\b(?:" + "|".join(escape(k) for k in keywords) + r")\b"


def _condition(cond: FieldCondition) -> pl.Expr:
    col = pl.col(cond.field)
    op, value = cond.op, cond.value
    if op == "is_null":
        return col.is_null()
    if op == "not_null":
        return col.is_not_null()
    if op == "in":
        return col.is_in(list(value)).fill_null(False)
    if op == "not_in":
        return (~col.is_in(list(value))).fill_null(False)
    if op == "matches":
        return contains(col.cast(pl.String), str(value))
    compare = {"eq": col.__eq__, "ne": col.__ne__, "gt": col.__gt__, "ge": col.__ge__,
               "lt": col.__lt__, "le": col.__le__}[op]  # fmt: skip
    return compare(pl.lit(value)).fill_null(False)


def function_fires(fn: LabelingFunction) -> pl.Expr:
    """True where ``fn`` votes its label."""
    fires = pl.lit(True)
    text = pl.col(fn.field).cast(pl.String)
    if fn.keywords or fn.pattern:
        found = pl.lit(False)
        if fn.keywords:
            found = found | contains(text, keyword_pattern(fn.keywords))
        if fn.pattern:
            found = found | contains(text, fn.pattern)
        fires = found
    for cond in fn.when:
        fires = fires & _condition(cond)
    return fires


def check_fields(df: pl.DataFrame, functions: list[LabelingFunction]) -> None:
    """Every field a function reads exists, else an error naming the function and field."""
    for fn in functions:
        for field in [fn.field, *(c.field for c in fn.when)]:
            if field not in df.columns:
                raise ValueError(
                    f"label.functions: {fn.name!r} reads field {field!r}, which the records do "
                    f"not have (available: {sorted(df.columns)})"
                )


def apply_functions(
    df: pl.DataFrame, functions: list[LabelingFunction], vote: str, multi_label: bool
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """``record_id`` + ``label`` (null: abstain/tie) + ``conflict`` flag, and per-function stats."""
    check_fields(df, functions)
    fired = df.select(
        "record_id", *[function_fires(fn).alias(fn.name) for fn in functions]
    )
    long = (
        fired.unpivot(index="record_id", variable_name="function", value_name="fires")
        .filter(pl.col("fires"))
        .join(
            pl.DataFrame(
                {"function": [f.name for f in functions], "label": [f.label for f in functions],
                 "weight": [f.weight if vote == "weighted" else 1.0 for f in functions]},
                schema={"function": pl.String, "label": pl.String, "weight": pl.Float64},
            ),
            on="function",
        )
    )  # fmt: skip
    per_label = long.group_by("record_id", "label").agg(pl.col("weight").sum())
    if multi_label:
        decided = per_label.group_by("record_id").agg(
            pl.col("label").sort().str.join(",").alias("label"),
            pl.lit(False).alias("tie"),
        )
    else:
        decided = per_label.group_by("record_id").agg(
            pl.col("label").filter(pl.col("weight") == pl.col("weight").max()).min().alias("label"),
            ((pl.col("weight") == pl.col("weight").max()).sum() > 1).alias("tie"),
        )
    out = df.select("record_id").join(decided, on="record_id", how="left").with_columns(
        pl.when(pl.col("tie")).then(None).otherwise(pl.col("label")).alias("label"),
        pl.col("tie").fill_null(False),
    )
    return out, function_analysis(fired, functions)


def function_analysis(fired: pl.DataFrame, functions: list[LabelingFunction]) -> dict[str, Any]:
    """Coverage, overlap and conflict of every function (shares of all records), Snorkel-style."""
    n = fired.height
    labels = {f.name: f.label for f in functions}
    names = [f.name for f in functions]
    stats: dict[str, Any] = {}
    for fn in functions:
        others = [m for m in names if m != fn.name]
        other_any = pl.any_horizontal([pl.col(m) for m in others]) if others else pl.lit(False)
        other_diff = [m for m in others if labels[m] != fn.label]
        differs = pl.any_horizontal([pl.col(m) for m in other_diff]) if other_diff else pl.lit(False)
        row = fired.select(
            pl.col(fn.name).sum().alias("n"),
            (pl.col(fn.name) & other_any).sum().alias("overlap"),
            (pl.col(fn.name) & differs).sum().alias("conflict"),
        ).row(0, named=True)
        stats[fn.name] = {
            "label": fn.label,
            "records": int(row["n"]),
            "coverage": round(row["n"] / n, 4) if n else 0.0,
            "overlap": round(row["overlap"] / n, 4) if n else 0.0,
            "conflict": round(row["conflict"] / n, 4) if n else 0.0,
        }
    return stats


def first_rule_label(rules: list[LabelRule]) -> pl.Expr:
    """Label of the first rule whose pattern is found in ``text``; null if none matches."""
    expr = pl.lit(None, dtype=pl.String)
    for rule in reversed(rules):
        expr = pl.when(contains(pl.col("text"), rule.pattern)).then(pl.lit(rule.label)).otherwise(expr)
    return expr
