"""The RLHF steps of the split stage: disjoint prompt groups, configured shares, determinism."""

from __future__ import annotations

import random

import polars as pl
import pytest

from ftdata_pipeline import records
from ftdata_pipeline.config.loader import ConfigError, load_recipe
from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.stages.split import split
from ftdata_pipeline.stages.split.rlhf import STEP, step_leaks

WORDS = ("account billing router password invoice camera firmware backup sync storage mail "
         "upload refund plan mesh hub login device export report limit region quota key "
         "token laptop phone order delivery address warranty screen battery cable").split()
SHARES = {"sft": 0.2, "reward": 0.5, "rl": 0.3}


def recipe(rlhf: dict | None = SHARES, **split_cfg) -> RecipeConfig:
    data = {"name": "demo", "kind": "preference", "sources": ["src"],
            "label": {"method": "rankings"}, "exports": {"formats": ["trl_preference"]},
            "split": split_cfg}
    if rlhf is not None:
        data["rlhf"] = rlhf
    return RecipeConfig.model_validate(data)


def pairs(n_prompts: int = 400, seed: int = 7) -> pl.DataFrame:
    """Pairs of n prompts (1 to 6 pairs each); every 25th prompt is asked again, reworded in
    case and punctuation only, under another prompt id."""
    rng = random.Random(seed)
    rows = []
    for p in range(n_prompts):
        text = " ".join(rng.sample(WORDS, 9)) + f" case {p}?"
        variants = [(f"p{p}", text)]
        if p % 25 == 0:
            variants.append((f"p{p}-again", text.upper().rstrip("?") + "!"))
        for pid, prompt in variants:
            k = rng.randint(2, 4)
            for i in range(k):
                for j in range(i + 1, k):
                    rows.append({
                        "record_id": f"{pid}-{i}-{j}", "source": "src",
                        "source_key": f"{pid}-r{i}>{pid}-r{j}", "conversation_id": pid,
                        "prompt": prompt, "chosen": f"answer {i} to {pid}",
                        "rejected": f"answer {j} to {pid}",
                    })
    return records.conform(pl.DataFrame(rows))


def test_every_prompt_and_group_in_exactly_one_step() -> None:
    data = pairs()
    result = split(data.lazy(), recipe())
    kept = result.kept
    assert kept[STEP].null_count() == 0 and set(kept[STEP]) == {"sft", "reward", "rl"}
    assert kept.group_by("conversation_id").agg(pl.col(STEP).n_unique()).filter(
        pl.col(STEP) > 1).height == 0
    # the reworded prompt asked again under another id sits in the same step (one group)
    steps = dict(kept.select("conversation_id", STEP).unique().iter_rows())
    again = [p for p in steps if p.endswith("-again")]
    assert len(again) == 16 and all(steps[p] == steps[p.removesuffix("-again")] for p in again)
    leaks = result.stats["rlhf"]["leaks"]
    assert leaks == {"prompt_ids": 0, "dup_cluster_ids": 0, "content_hashes": 0, "prompts": 0,
                     "groups": 0}
    # every pair of a prompt is in one split too
    assert kept.group_by("conversation_id").agg(pl.col("split").n_unique())["split"].max() == 1


def test_prompt_shares_within_tolerance_and_splits_inside_each_step() -> None:
    result = split(pairs().lazy(), recipe())
    report = result.stats["rlhf"]
    assert report["prompts"] == 416
    for step, share in SHARES.items():
        actual = report["steps"][step]["actual_share"]
        assert abs(actual - share) <= 0.01, (step, actual)
        assert report["steps"][step]["configured_share"] == share
    assert report["within_tolerance"]
    kept = result.kept
    for step in SHARES:
        part = kept.filter(pl.col(STEP) == step)
        train = part.filter(pl.col("split") == "train").height / part.height
        assert abs(train - 0.8) < 0.06, (step, train)
        assert set(part["split"]) == {"train", "validation", "test"}
        assert sum(report["steps"][step]["pairs"].values()) == part.height


def test_steps_are_deterministic_and_follow_the_seed() -> None:
    data = pairs()
    first = split(data.lazy(), recipe(seed=3)).kept
    shuffled = split(data.sample(fraction=1.0, shuffle=True, seed=1).lazy(), recipe(seed=3)).kept
    assert first.equals(shuffled)
    other = split(data.lazy(), recipe(seed=4)).kept
    moved = first.select("record_id", STEP).join(
        other.select("record_id", pl.col(STEP).alias("_other")), on="record_id")
    assert moved.filter(pl.col(STEP) != pl.col("_other")).height > 0


def test_without_rlhf_nothing_changes() -> None:
    data = pairs(120)
    result = split(data.lazy(), recipe(None))
    assert STEP not in result.kept.columns and "rlhf" not in result.stats


def test_zero_share_step_stays_empty() -> None:
    result = split(pairs(200).lazy(), recipe({"sft": 0.0, "reward": 0.6, "rl": 0.4}))
    assert "sft" not in set(result.kept[STEP])
    assert result.stats["rlhf"]["steps"]["sft"]["prompts"] == 0


def test_step_leaks_counts_a_prompt_in_two_steps() -> None:
    kept = split(pairs(100).lazy(), recipe()).kept
    assert not any(step_leaks(kept).values())
    # one pair of a reward prompt moved to the SFT step: its prompt id and text now leak
    several = pl.len().over("conversation_id") > 1
    victim = kept.filter((pl.col(STEP) == "reward") & several)["record_id"][0]
    broken = kept.with_columns(
        pl.when(pl.col("record_id") == victim).then(pl.lit("sft")).otherwise(pl.col(STEP))
        .alias(STEP))
    leaks = step_leaks(broken)
    assert leaks["prompt_ids"] == 1 and leaks["prompts"] == 1


@pytest.mark.parametrize(
    ("rlhf", "kind", "message"),
    [
        ({"sft": 0.2, "reward": 0.5, "rl": 0.2}, "preference",
         "rlhf: shares sft + reward + rl must sum to 1, got 0.9"),
        ({"sft": -0.1, "reward": 0.8, "rl": 0.3}, "preference", "rlhf.sft:"),
        ({"sft": 0.2, "reward": 0.5, "rl": 0.3, "rl_formats": ["trl_messages"]}, "preference",
         "rlhf.rl_formats: trl_messages cannot express a prompt alone"),
        ({"sft": 0.2, "reward": 0.5, "rl": 0.3, "sft_formats": ["trl_preference"]},
         "preference", "rlhf.sft_formats"),
        ({"sft": 0.2, "reward": 0.5, "rl": 0.3, "ppo": 0.1}, "preference", "rlhf.ppo: unknown key"),
        (SHARES, "chat_sft", "rlhf: the RLHF steps split the prompts of a preference dataset"),
    ],
)
def test_config_errors_name_the_key(tmp_path, rlhf, kind, message) -> None:
    import yaml

    path = tmp_path / "demo.yaml"
    label = {"method": "rankings"} if kind == "preference" else {"method": "source"}
    fmt = "trl_preference" if kind == "preference" else "trl_messages"
    path.write_text(yaml.safe_dump({"kind": kind, "sources": ["src"], "label": label,
                                    "exports": {"formats": [fmt]}, "rlhf": rlhf}))
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_blocking_check_fails_when_a_prompt_is_in_two_steps() -> None:
    from ftdata_pipeline.orchestration.split_checks import (
        RLHF_SHARES,
        RLHF_STEPS_DISJOINT,
        evaluate,
    )

    cfg = recipe()
    result = split(pairs(100).lazy(), cfg)
    outcomes = {o.name: o for o in evaluate(cfg, result.stats)}
    assert outcomes[RLHF_STEPS_DISJOINT].passed and outcomes[RLHF_STEPS_DISJOINT].blocking
    assert outcomes[RLHF_SHARES].passed and not outcomes[RLHF_SHARES].blocking

    kept = result.kept
    # the near-identical prompt asked again under another id, put in another step
    again = kept.filter(pl.col("conversation_id") == "p0-again")[STEP][0]
    other = next(s for s in ("sft", "reward", "rl") if s != again)
    broken = kept.with_columns(
        pl.when(pl.col("conversation_id") == "p0-again").then(pl.lit(other))
        .otherwise(pl.col(STEP)).alias(STEP))
    stats = {**result.stats, "rlhf": {**result.stats["rlhf"], "leaks": step_leaks(broken)}}
    failed = {o.name: o for o in evaluate(cfg, stats)}[RLHF_STEPS_DISJOINT]
    assert not failed.passed and "prompts 1" in failed.description
    assert failed.metadata["in_two_steps/prompts"] == 1
    # no report at all (the steps were never assigned) fails too
    missing = {k: v for k, v in result.stats.items() if k != "rlhf"}
    assert not {o.name: o for o in evaluate(cfg, missing)}[RLHF_STEPS_DISJOINT].passed
    # without rlhf the checks are not there
    assert RLHF_STEPS_DISJOINT not in {o.name for o in evaluate(recipe(None), result.stats)}


def test_shares_check_warns_outside_tolerance() -> None:
    from ftdata_pipeline.orchestration.split_checks import RLHF_SHARES, evaluate

    cfg = recipe({**SHARES, "tolerance": 0.0})
    # 12 prompts cannot be cut at exactly 20/50/30 %
    result = split(pairs(12).lazy(), cfg)
    outcome = {o.name: o for o in evaluate(cfg, result.stats)}[RLHF_SHARES]
    assert not outcome.passed and result.stats["rlhf"]["max_deviation"] > 0
