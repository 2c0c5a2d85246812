"""The three RLHF steps on disjoint prompts: SFT, reward modelling / DPO, online RL.

With ``rlhf`` set on a preference recipe, every split group (the split stage's group: one
prompt id, duplicate cluster, same first prompt or near-duplicate prompts) goes to exactly one
step, so no prompt and no near-identical prompt is trained on in two steps. The cut works like
the split's: groups in the order of bytes 16-24 of ``sha256(f"{seed}:{group key}")`` (bytes the
split and the size target do not use), cut where the running count of prompts reaches the
configured shares (``assign._quota_split``), so each step's prompt share is the configured one
to the size of one group. Inside a step the train/validation/test split is the usual one: the
step is part of the stratum the split stage cuts at its ratios.
"""

from __future__ import annotations

import polars as pl

from ftdata_pipeline.config.models import RLHF_STEPS, RlhfConfig
from ftdata_pipeline.records import RECORD_ID, SPLITS
from ftdata_pipeline.stages.split.assign import _quota_split, unit_interval
from ftdata_pipeline.stages.split.leakage import crossing
from ftdata_pipeline.stages.split.slices import first_prompt, normalized

STEP = "rlhf_step"  # column of the split output: sft | reward | rl
STEP_OFFSET = 16  # sha256 bytes [16, 24) order groups for the step cut


def prompt_id() -> pl.Expr:
    """A pair's prompt: its prompt id (conversation_id), else the record itself."""
    return pl.coalesce(pl.col("conversation_id"), pl.col(RECORD_ID))


def assign_steps(df: pl.DataFrame, group_key: str, seed: int, cfg: RlhfConfig) -> pl.DataFrame:
    """Add STEP: one step per group, groups in hash order cut at the configured prompt shares."""
    groups = (
        df.group_by(group_key)
        .agg(prompt_id().n_unique().alias("_size"))
        .with_columns(unit_interval(seed, pl.col(group_key), offset=STEP_OFFSET).alias("_u"))
        .sort("_u", group_key)
    )
    steps = (
        _quota_split(groups, int(groups["_size"].sum()), {}, cfg.shares(), RLHF_STEPS)
        if groups.height else []
    )
    chosen = groups.select(group_key).with_columns(pl.Series(STEP, steps, pl.String))
    return df.drop(STEP, strict=False).join(chosen, on=group_key, how="left",
                                            maintain_order="left")


def step_leaks(df: pl.DataFrame, group_key: str | None = None) -> dict[str, int]:
    """Keys found in more than one step (all 0 = disjoint): prompt ids, duplicate clusters,
    content hashes, the same first prompt (normalized) and, when given, the split groups."""
    if STEP not in df.columns or df.is_empty():
        return {"prompt_ids": 0, "dup_cluster_ids": 0, "content_hashes": 0, "prompts": 0,
                "groups": 0}
    keyed = df.with_columns(
        pl.col("conversation_id").alias("_prompt_id"),
        normalized(first_prompt("preference")).alias("_prompt"),
    )
    return {
        "prompt_ids": crossing(keyed, "_prompt_id", STEP),
        "dup_cluster_ids": crossing(keyed, "dup_cluster_id", STEP),
        "content_hashes": crossing(keyed, "content_hash", STEP),
        "prompts": crossing(keyed.filter(pl.col("_prompt") != ""), "_prompt", STEP),
        "groups": crossing(keyed, group_key, STEP) if group_key else 0,
    }


def step_report(df: pl.DataFrame, cfg: RlhfConfig) -> dict:
    """Per step: prompts, pairs and prompts per split; configured vs actual prompt share."""
    counts = {step: {"prompts": 0, "pairs": dict.fromkeys(SPLITS, 0),
                     "prompts_per_split": dict.fromkeys(SPLITS, 0)} for step in RLHF_STEPS}
    for step, split, pairs, prompts in (
        df.group_by(STEP, "split").agg(pl.len(), prompt_id().n_unique()).iter_rows()
    ):
        counts[step]["pairs"][split] = int(pairs)
        counts[step]["prompts_per_split"][split] = int(prompts)
    for step, prompts in df.group_by(STEP).agg(prompt_id().n_unique()).iter_rows():
        counts[step]["prompts"] = int(prompts)
    total = sum(c["prompts"] for c in counts.values())
    shares = cfg.shares()
    for step, c in counts.items():
        c["configured_share"] = shares[step]
        c["actual_share"] = round(c["prompts"] / total, 4) if total else 0.0
    deviation = max(abs(c["actual_share"] - c["configured_share"]) for c in counts.values())
    return {
        "steps": counts,
        "prompts": total,
        "max_deviation": round(deviation, 4),
        "tolerance": cfg.tolerance,
        "within_tolerance": deviation <= cfg.tolerance + 1e-12,
    }
