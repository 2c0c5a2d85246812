"""What each RLHF step exports: its records and formats, written under ``<step>/``.

``reward``: the step's preference pairs in the recipe's ``exports.formats``. ``sft``: one chat
example per prompt, the prompt answered by its best response (most pair wins minus losses
among the prompt's pairs, then most wins, then text order), in ``rlhf.sft_formats``. ``rl``:
the same example per prompt in ``rlhf.rl_formats``, which keep the prompt alone. An SFT/RL
example carries the provenance of the pair whose chosen side it answers with; when it breaks a
trainer rule, the prompt is left out with all its pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from ftdata_pipeline.config.models import RLHF_STEPS, RecipeConfig
from ftdata_pipeline.formats import FORMATS_BY_NAME
from ftdata_pipeline.records import RECORD_ID
from ftdata_pipeline.stages.split.rlhf import STEP, prompt_id


@dataclass(frozen=True)
class Part:
    """One directory of an export: its records, their kind and the formats written."""

    prefix: str  # "" (no steps) or "<step>/"
    step: str | None
    kind: str
    formats: list[Any]
    records: pl.DataFrame
    # (record_id of a written record, record_id of a pair it stands for); None: itself
    owners: pl.DataFrame | None = None


def best_responses(pairs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(one chat record per prompt: the pair answering with its best response, the prompt's
    pairs per record), see the module docstring."""
    keyed = pairs.with_columns(prompt_id().alias("_p"))
    wins = keyed.group_by("_p", pl.col("chosen").alias("_r")).agg(
        pl.len().cast(pl.Int64).alias("_w"), pl.col(RECORD_ID).min().alias("_pair")
    )
    losses = keyed.group_by("_p", pl.col("rejected").alias("_r")).agg(
        pl.len().cast(pl.Int64).alias("_l")
    )
    best = (
        wins.join(losses, on=["_p", "_r"], how="left")
        .with_columns((pl.col("_w") - pl.col("_l").fill_null(0)).alias("_score"))
        .sort(["_p", "_score", "_w", "_r"], descending=[False, True, True, False])
        .group_by("_p", maintain_order=True)
        .first()
        .select("_p", pl.col("_pair").alias(RECORD_ID))
    )
    chosen = keyed.join(best.select(RECORD_ID), on=RECORD_ID, how="semi")
    records = chosen.with_columns(pl.col("chosen").alias("response")).drop("_p").sort(RECORD_ID)
    owners = best.join(keyed.select("_p", pl.col(RECORD_ID).alias("pair_id")), on="_p").select(
        RECORD_ID, "pair_id"
    )
    return records, owners


def _formats(names: list[str]) -> list[Any]:
    return [FORMATS_BY_NAME[n] for n in names]


def step_parts(df: pl.DataFrame, recipe: RecipeConfig, pair_formats: list[Any]) -> list[Part]:
    """The export's parts, one per RLHF step with prompts, in step order."""
    if STEP not in df.columns:
        raise ValueError(
            f"{recipe.name}: recipe sets rlhf but the split output has no '{STEP}' column; "
            "materialize the split stage again"
        )
    cfg = recipe.rlhf
    parts = []
    for step in RLHF_STEPS:
        pairs = df.filter(pl.col(STEP) == step)
        if pairs.is_empty():
            continue
        if step == "reward":
            parts.append(Part(f"{step}/", step, recipe.kind, pair_formats, pairs))
            continue
        records, owners = best_responses(pairs)
        names = cfg.sft_formats if step == "sft" else cfg.rl_formats
        parts.append(Part(f"{step}/", step, "chat_sft", _formats(names), records, owners))
    return parts
