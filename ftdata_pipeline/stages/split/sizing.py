"""Size targets: at most ``max_records`` (whole groups, stratified downsampling), at least
``min_records`` (a blocking check reports the shortfall).

Downsampling over ``downsample_by`` attributes keeps each combination of their values at its
target share of ``max_records``: the share given in ``target_proportions`` (one attribute's
shares; several attributes are combined assuming independence), else its current share.
Within a combination, groups are kept in a hash order independent of the split assignment
(bytes 8-16 of the group's hash), until the combination's quota is reached.
"""

from __future__ import annotations

import polars as pl

from ftdata_pipeline.config.models import SplitConfig

COMBO = "_combo"


def _targets(df: pl.DataFrame, cfg: SplitConfig) -> dict[str, float]:
    """Target share of each combination of the downsampling attributes."""
    combos = df.group_by(COMBO, *[f"_slice_{a}" for a in cfg.downsample_by]).len()
    total = df.height
    weights = {}
    for row in combos.iter_rows(named=True):
        weight = row["len"] / total
        for attr in cfg.downsample_by:
            wanted = cfg.target_proportions.get(attr)
            if not wanted:
                continue
            value = row[f"_slice_{attr}"]
            current = df.filter(pl.col(f"_slice_{attr}") == value).height / total
            if value in wanted:
                share = wanted[value]
            else:  # values without a target share what the listed ones leave, in proportion
                unlisted = df.filter(~pl.col(f"_slice_{attr}").is_in(list(wanted))).height / total
                share = max(1.0 - sum(wanted.values()), 0.0) * (current / unlisted if unlisted else 0)
            weight *= share / current if current else 0.0
        weights[row[COMBO]] = weight
    norm = sum(weights.values()) or 1.0
    return {k: v / norm for k, v in sorted(weights.items())}


def downsample(
    df: pl.DataFrame, cfg: SplitConfig, group_key: str, priority: str
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Keep at most ``cfg.max_records`` records, whole groups; returns (kept, dropped, report).

    Needs ``_slice_<attr>`` columns for the downsampling attributes and COMBO.
    """
    budget = cfg.max_records
    targets = _targets(df, cfg) if cfg.downsample_by else {"all": 1.0}
    before = dict(df.group_by(COMBO).len().iter_rows())
    groups = (
        df.group_by(group_key)
        .agg(pl.len().alias("_size"), pl.col(priority).first(),
             pl.col(COMBO).sort().mode().sort().first())
        .sort(priority, group_key)
        .with_columns(pl.col("_size").cum_sum().over(COMBO).alias("_running"))
    )
    quotas = pl.DataFrame(
        {COMBO: list(targets), "_quota": [round(t * budget) for t in targets.values()]},
        schema={COMBO: pl.String, "_quota": pl.Int64},
    )
    if not cfg.downsample_by:
        quotas = quotas.with_columns(pl.lit(budget, dtype=pl.Int64).alias("_quota"))
    keep = groups.join(quotas, on=COMBO, how="left").filter(
        pl.col("_running") <= pl.col("_quota").fill_null(0)
    )
    kept_keys = keep.select(group_key)
    running = groups.select(group_key, "_running")
    df = df.join(running, on=group_key, how="left", maintain_order="left")
    kept = df.join(kept_keys, on=group_key, how="semi", maintain_order="left")
    dropped = df.join(kept_keys, on=group_key, how="anti", maintain_order="left")
    after = dict(kept.group_by(COMBO).len().iter_rows())
    report = {
        "attributes": list(cfg.downsample_by),
        "proportions": {
            c: {
                "before": round(before.get(c, 0) / df.height, 4) if df.height else 0.0,
                "target": round(t, 4),
                "after": round(after.get(c, 0) / kept.height, 4) if kept.height else 0.0,
            }
            for c, t in targets.items()
        },
        "dropped": dropped.height,
    }
    return kept.drop("_running"), dropped, report


def size_report(n: int, cfg: SplitConfig, downsampling: dict | None) -> dict:
    """Records after the size target, the configured bounds and the shortfall (0 = enough)."""
    return {
        "records": n,
        "min_records": cfg.min_records,
        "max_records": cfg.max_records,
        "shortfall": max((cfg.min_records or 0) - n, 0),
        "downsampling": downsampling,
    }
