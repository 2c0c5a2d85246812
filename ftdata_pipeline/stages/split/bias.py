"""Balance over sensitive attributes: how often each group of an attribute is mentioned.

An attribute (gender, region of names, language...) is term lists per group. Per split, an
example mentions a group when its input or answer contains one of the group's terms (case-
insensitive whole words, Polars regex). The ratio between the most and the least mentioned
group, among examples mentioning any, is judged against ``max_ratio``; a split with fewer
than ``min_mentions`` such examples is reported but not judged (too few to tell).
"""

from __future__ import annotations

import re

import polars as pl

from ftdata_pipeline.config.models import BiasConfig
from ftdata_pipeline.records import SPLITS
from ftdata_pipeline.stages.split.slices import answer, input_text


def _pattern(terms: list[str]) -> str:
    return r"(?i)\b(?:" + "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)) + r")\b"


def bias_report(df: pl.DataFrame, kind: str, cfg: BiasConfig) -> dict:
    """attribute -> split -> {mentions per group, shares, ratio, status}."""
    if not cfg.attributes or df.is_empty():
        return {}
    text = pl.concat_str([input_text(kind), answer(kind).fill_null("")], separator="\n")
    report: dict[str, dict] = {}
    for attr, spec in sorted(cfg.attributes.items()):
        flags = df.select(
            "split",
            *[text.str.contains(_pattern(terms)).alias(group)
              for group, terms in sorted(spec.groups.items())],
        )
        per_split = {}
        for split_name in SPLITS:
            part = flags.filter(pl.col("split") == split_name)
            counts = {g: int(part[g].sum()) for g in sorted(spec.groups)}
            mentioning = int(part.select(pl.any_horizontal(sorted(spec.groups))).to_series().sum())
            top, low = max(counts.values()), min(counts.values())
            ratio = (top / low) if low else (float("inf") if top else None)
            if mentioning < spec.min_mentions:
                status = "too_few"
            else:
                status = "ok" if ratio is not None and ratio <= spec.max_ratio else "imbalanced"
            per_split[split_name] = {
                "examples": part.height,
                "mentioning": mentioning,
                "mentions": counts,
                "shares": {g: round(n / mentioning, 4) if mentioning else 0.0
                           for g, n in counts.items()},
                "ratio": None if ratio is None else (round(ratio, 3) if ratio != float("inf") else "inf"),
                "status": status,
            }
        report[attr] = {"max_ratio": spec.max_ratio, "min_mentions": spec.min_mentions,
                        "splits": per_split}
    return report
