"""Inter-annotator agreement: Cohen's kappa per rater pair, Fleiss' kappa, Krippendorff's alpha.

Votes are a frame with one row per (item_key, annotator) and a ``label`` (categories) or a
numeric ``value`` (ratings). Figures come from statsmodels (Cohen, Fleiss) and the
``krippendorff`` package (alpha at the nominal, ordinal and interval levels, missing ratings
allowed); this module only shapes the frames into their tables. Results are plain floats or
None when a coefficient is undefined (a single category used throughout, fewer than two
raters), never NaN, so they can go into metadata and JSON as they are.
"""

from __future__ import annotations

import math
from typing import Any

import krippendorff
import numpy as np
import polars as pl
from statsmodels.stats.inter_rater import cohens_kappa as _sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as _sm_fleiss_kappa

LEVELS = ("nominal", "ordinal", "interval")


def _clean(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _category_table(votes: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
    """items x categories matrix of vote counts (Fleiss' table), rows and columns sorted."""
    wide = (
        votes.group_by("item_key", "label")
        .len("n")
        .pivot(on="label", index="item_key", values="n")
        .fill_null(0)
        .sort("item_key")
    )
    categories = sorted(c for c in wide.columns if c != "item_key")
    return wide.select(categories).to_numpy().astype(float), categories


def fleiss_kappa(votes: pl.DataFrame) -> float | None:
    """Fleiss' kappa of ``votes`` (item_key, label), the same number of raters on every item.

    None when undefined (no items, fewer than 2 raters, a single category used throughout).
    """
    if votes.is_empty():
        return None
    raters = votes.group_by("item_key").len("r")["r"].unique()
    if raters.len() != 1:
        raise ValueError("Fleiss' kappa needs the same number of raters for every item")
    if int(raters[0]) < 2:
        return None
    table, categories = _category_table(votes)
    if len(categories) < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return _clean(_sm_fleiss_kappa(table, method="fleiss"))


def fleiss_kappa_per_category(votes: pl.DataFrame) -> dict[str, float | None]:
    """Fleiss' (1971) kappa of each category against all others, same raters on every item.

    statsmodels only gives the overall coefficient; the per-category one is Fleiss' own
    closed form, kappa_j = 1 - sum_i x_ij (n - x_ij) / (N n (n - 1) p_j q_j).
    """
    if votes.is_empty():
        return {}
    table, categories = _category_table(votes)
    n = table.sum(axis=1)
    if len(set(n.tolist())) != 1 or n[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of raters for every item")
    raters, items = n[0], table.shape[0]
    p = table.sum(axis=0) / (items * raters)
    out: dict[str, float | None] = {}
    for j, category in enumerate(categories):
        denom = items * raters * (raters - 1) * p[j] * (1 - p[j])
        disagreement = (table[:, j] * (raters - table[:, j])).sum()
        out[category] = None if denom == 0 else float(1 - disagreement / denom)
    return out


def cohen_kappas(votes: pl.DataFrame) -> pl.DataFrame:
    """Cohen's kappa for every annotator pair on the items both labelled.

    ``votes``: item_key, annotator, label (one per item and annotator). Returns annotator_a,
    annotator_b (a < b), items, kappa (null when undefined), sorted by the pair.
    """
    v = votes.select("item_key", "annotator", "label")
    both = v.join(v, on="item_key", suffix="_b").filter(pl.col("annotator") < pl.col("annotator_b"))
    rows = []
    for (a, b), pair in both.sort("annotator", "annotator_b", "item_key").group_by(
        ["annotator", "annotator_b"], maintain_order=True
    ):
        categories = sorted(set(pair["label"].to_list()) | set(pair["label_b"].to_list()))
        index = {c: i for i, c in enumerate(categories)}
        table = np.zeros((len(categories), len(categories)))
        for x, y in zip(pair["label"].to_list(), pair["label_b"].to_list(), strict=True):
            table[index[x], index[y]] += 1
        kappa = None
        if len(categories) > 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                kappa = _clean(_sm_cohens_kappa(table, return_results=False))
        rows.append({"annotator_a": a, "annotator_b": b, "items": pair.height, "kappa": kappa})
    schema = {"annotator_a": pl.String, "annotator_b": pl.String, "items": pl.Int64,
              "kappa": pl.Float64}  # fmt: skip
    return pl.DataFrame(rows, schema=schema).sort("annotator_a", "annotator_b")


def reliability_matrix(votes: pl.DataFrame, value: str) -> np.ndarray:
    """raters x items matrix of ``value`` (numeric), NaN where a rater did not rate an item."""
    wide = (
        votes.select("annotator", "item_key", pl.col(value).cast(pl.Float64))
        .pivot(on="item_key", index="annotator", values=value, aggregate_function="first")
        .sort("annotator")
    )
    items = sorted(c for c in wide.columns if c != "annotator")
    return wide.select(items).to_numpy().astype(float)


def krippendorff_alpha(
    votes: pl.DataFrame, level: str = "nominal", value: str = "value"
) -> float | None:
    """Krippendorff's alpha at ``level`` over ``value``; missing ratings allowed.

    None when undefined: fewer than two pairable values, or a single value used throughout.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level of measurement {level!r}; expected one of {LEVELS}")
    data = reliability_matrix(votes, value) if votes.height else np.empty((0, 0))
    if data.size == 0:
        return None
    present = data[~np.isnan(data)]
    pairable = (np.sum(~np.isnan(data), axis=0) >= 2).any()
    if not pairable or np.unique(present).size < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return _clean(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


def label_codes(votes: pl.DataFrame, order: list[str] | None = None) -> pl.DataFrame:
    """Add ``value``: the label's position in ``order`` (the label set), else in sorted order.

    Ordinal and interval alpha over categories only make sense when the label set is ordered
    (e.g. bad < ok < good); nominal alpha ignores the codes' order.
    """
    known = list(order or [])
    extra = sorted(set(votes["label"].drop_nulls().to_list()) - set(known))
    codes = {label: float(i) for i, label in enumerate([*known, *extra])}
    return votes.with_columns(
        pl.col("label").replace_strict(codes, default=None, return_dtype=pl.Float64).alias("value")
    )


def item_agreement(votes: pl.DataFrame) -> pl.DataFrame:
    """Per item: votes, the top label, its share of the votes, and whether the top is tied."""
    counts = votes.group_by("item_key", "label").len("n")
    return counts.group_by("item_key").agg(
        pl.col("n").sum().alias("votes"),
        # min() only breaks the tie deterministically; tied items are never auto-labelled.
        pl.col("label").filter(pl.col("n") == pl.col("n").max()).min().alias("top_label"),
        (pl.col("n").max() / pl.col("n").sum()).alias("share"),
        ((pl.col("n") == pl.col("n").max()).sum() > 1).alias("tied"),
    )


def annotation_agreement(
    votes: pl.DataFrame,
    *,
    level: str = "nominal",
    label_order: list[str] | None = None,
    numeric: bool = False,
) -> dict[str, Any]:
    """Agreement of categorical votes (item_key, annotator, label), overall and per label.

    Fleiss' kappa runs over the items with the modal rater count (it needs a fixed number of
    raters); Cohen's kappa over every annotator pair; Krippendorff's alpha over every item,
    missing ratings allowed, at the nominal level and at ``level`` (codes from ``label_order``).
    With ``numeric`` the labels are numbers (ratings) and alpha uses them as values.
    """
    per_item = votes.group_by("item_key").len("r")
    stats: dict[str, Any] = {
        "items": per_item.height,
        "annotators": votes["annotator"].n_unique(),
        "votes": votes.height,
        "fleiss_kappa": None,
        "fleiss_items": 0,
        "fleiss_raters": None,
    }
    fixed = votes.head(0)
    if per_item.height:
        # Modal rater count; on a tie the larger count (more raters per item).
        modal = per_item.group_by("r").len().sort(["len", "r"], descending=True)["r"][0]
        items = per_item.filter(pl.col("r") == modal).select("item_key")
        fixed = votes.join(items, on="item_key", how="semi")
        kappa = fleiss_kappa(fixed) if modal >= 2 else None
        stats |= {
            "fleiss_kappa": _round(kappa),
            "fleiss_items": items.height,
            "fleiss_raters": int(modal),
        }
    pairs = cohen_kappas(votes)
    stats["cohen_kappa"] = [
        {"annotators": [row["annotator_a"], row["annotator_b"]], "items": row["items"],
         "kappa": _round(row["kappa"])}
        for row in pairs.iter_rows(named=True)
    ]  # fmt: skip
    defined = pairs.filter(pl.col("kappa").is_not_null())
    stats["cohen_kappa_mean"] = (
        _round(float((defined["kappa"] * defined["items"]).sum() / defined["items"].sum()))
        if defined.height
        else None
    )
    coded = (
        votes.with_columns(pl.col("label").cast(pl.Float64, strict=False).alias("value"))
        if numeric
        else label_codes(votes, label_order)
    )
    alpha = {"nominal": _round(krippendorff_alpha(coded, "nominal"))}
    if level != "nominal":
        alpha[level] = _round(krippendorff_alpha(coded, level))
    stats["krippendorff_alpha"] = alpha
    stats["alpha_level"] = level
    stats["alpha"] = alpha[level]
    usable = fixed if (stats["fleiss_raters"] or 0) >= 2 else votes.head(0)
    stats["per_label"] = _per_label(votes, usable)
    return stats


def _per_label(votes: pl.DataFrame, fixed: pl.DataFrame) -> dict[str, dict[str, float | None]]:
    """Per label: Fleiss' category kappa (fixed-rater items) and one-vs-rest nominal alpha."""
    per_category = fleiss_kappa_per_category(fixed) if fixed.height else {}
    out = {}
    for label in sorted(votes["label"].drop_nulls().unique().to_list()):
        binary = votes.with_columns((pl.col("label") == label).cast(pl.Float64).alias("value"))
        out[label] = {
            "fleiss_kappa": _round(per_category.get(label)),
            "krippendorff_alpha": _round(krippendorff_alpha(binary, "nominal")),
            "votes": int((votes["label"] == label).sum()),
        }
    return out


def multi_label_agreement(votes: pl.DataFrame) -> dict[str, Any]:
    """Multi-label votes (item_key, annotator, label; several labels per annotator): for each
    label, nominal alpha of "chose it or not" over the annotators of each item; ``alpha`` is
    their mean. Kappas assume one label per rater and are not reported."""
    raters = votes.select("item_key", "annotator").unique()
    per_label: dict[str, dict[str, float | int | None]] = {}
    for label in sorted(votes["label"].drop_nulls().unique().to_list()):
        chose = votes.filter(pl.col("label") == label).select("item_key", "annotator").unique()
        binary = raters.join(
            chose.with_columns(pl.lit(1.0).alias("value")), on=["item_key", "annotator"],
            how="left",
        ).with_columns(pl.col("value").fill_null(0.0))  # fmt: skip
        per_label[label] = {"krippendorff_alpha": _round(krippendorff_alpha(binary, "nominal")),
                            "votes": chose.height}  # fmt: skip
    defined = [v["krippendorff_alpha"] for v in per_label.values()
               if v["krippendorff_alpha"] is not None]  # fmt: skip
    alpha = _round(sum(defined) / len(defined)) if defined else None
    return {
        "items": raters["item_key"].n_unique(),
        "annotators": raters["annotator"].n_unique(),
        "votes": votes.height,
        "multi_label": True,
        "krippendorff_alpha": {"nominal": alpha},
        "alpha_level": "nominal",
        "alpha": alpha,
        "per_label": per_label,
    }
