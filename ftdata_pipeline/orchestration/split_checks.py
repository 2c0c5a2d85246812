"""Asset checks of the split stage beyond ``splits_disjoint``: what the stage measured, judged.

Each check reads the split stage's stats (computed by the pure stage, so no second pass over
the data) and is blocking or only reported as the recipe says. Metadata holds counts and
record ids, never text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

from ftdata_pipeline.config.models import RecipeConfig

NEAR_DUPLICATE_LEAKAGE = "near_duplicate_leakage"
PROMPT_LEAKAGE = "prompt_leakage"
SPLIT_RATIOS = "split_ratios"
CROSS_DATASET_SPLITS = "cross_dataset_splits"
SIZE_TARGET = "size_target"
REPRESENTATIVENESS = "representativeness"
BIAS_BALANCE = "bias_balance"
RLHF_STEPS_DISJOINT = "rlhf_steps_disjoint"
RLHF_SHARES = "rlhf_shares"


@dataclass(frozen=True)
class Outcome:
    """One judged check, independent of Dagster (what the tests read)."""

    name: str
    passed: bool
    blocking: bool
    description: str
    metadata: dict


def _checks(recipe: RecipeConfig) -> list[tuple[str, str, bool]]:
    """(name, description, blocking) of the split checks this recipe runs."""
    leak = recipe.split.leakage
    extra = []
    if recipe.reference is not None:
        extra.append((REPRESENTATIVENESS, f"Distribution (PSI, JS divergence), coverage and edge "
                      f"cases against the reference {recipe.reference.source!r}",
                      recipe.reference.block))
    if recipe.bias.attributes:
        extra.append((BIAS_BALANCE, "Sensitive attribute groups balanced within max_ratio in "
                      "every split", recipe.bias.block))
    if recipe.rlhf is not None:
        extra += [
            (RLHF_STEPS_DISJOINT, "No prompt id, duplicate cluster, content hash, first prompt "
             "or split group in two RLHF steps (SFT, reward, RL)", True),
            (RLHF_SHARES, f"Every RLHF step within {recipe.rlhf.tolerance:g} of its configured "
             "prompt share", False),
        ]
    return extra + [
        (SIZE_TARGET, f"At least split.min_records ({recipe.split.min_records}) examples",
         True),
        (NEAR_DUPLICATE_LEAKAGE,
         f"No train/held-out example pair at Jaccard >= {leak.near_duplicate_threshold} "
         f"(word {leak.shingle_words}-shingles)", leak.near_duplicates == "block"),
        (PROMPT_LEAKAGE, "No first user turn in train and in validation/test with different "
         "answers", leak.prompts == "block"),
        (SPLIT_RATIOS, f"Every split within {recipe.split.tolerance:g} of its configured share",
         False),
        (CROSS_DATASET_SPLITS, "No record is train here and test in another dataset reading "
         "its source (or the reverse)", leak.cross_dataset == "block"),
    ]


def split_check_specs(key: AssetKey, recipe: RecipeConfig | None) -> list[AssetCheckSpec]:
    if recipe is None:
        return []
    return [
        AssetCheckSpec(name, asset=key, description=description, blocking=blocking)
        for name, description, blocking in _checks(recipe)
    ]


def evaluate(recipe: RecipeConfig, stats: dict) -> list[Outcome]:
    """Judge the split stage's stats; one Outcome per check of ``_checks``."""
    blocking = {name: b for name, _d, b in _checks(recipe)}
    near = stats.get("near_duplicates") or {}
    prompts = stats.get("prompt_leakage") or {}
    ratios = stats.get("ratios") or {}
    cross = stats.get("cross_dataset") or {}
    held = near.get("eval_with_train_neighbour") or {}
    train_test = sum(v.get("train_test", 0) for v in cross.values())
    size = stats.get("size") or {}
    shortfall = size.get("shortfall", 0)
    extra = []
    if REPRESENTATIVENESS in blocking:
        rep = stats.get("representativeness") or {}
        errors, warnings = rep.get("errors", []), rep.get("warnings", [])
        cover = rep.get("coverage") or {}
        extra.append(Outcome(
            REPRESENTATIVENESS, not errors and not warnings, blocking[REPRESENTATIVENESS],
            ("errors: " + "; ".join(errors) + ". " if errors else "")
            + ("warnings: " + "; ".join(warnings) + ". " if warnings else "")
            + f"coverage {cover.get('coverage')} at similarity >= {cover.get('threshold')}",
            {"errors": len(errors), "warnings": len(warnings),
             "coverage": float(cover.get("coverage") or 0.0),
             "distribution": MetadataValue.json(
                 [{k: r[k] for k in ("attribute", "split", "psi", "js", "status")}
                  for r in rep.get("distribution", [])]),
             "edge_cases": MetadataValue.json(rep.get("edge_cases", []))},
        ))
    if RLHF_STEPS_DISJOINT in blocking:
        rlhf = stats.get("rlhf") or {}
        # no report at all is a failure: the steps were not assigned, so nothing is known
        leaks = rlhf.get("leaks") or {"missing_report": 1}
        steps = rlhf.get("steps") or {}
        extra += [
            Outcome(
                RLHF_STEPS_DISJOINT, not any(leaks.values()), blocking[RLHF_STEPS_DISJOINT],
                "keys in two RLHF steps: " + ", ".join(f"{k} {v}" for k, v in leaks.items()),
                {**{f"in_two_steps/{k}": v for k, v in leaks.items()},
                 **{f"prompts/{step}": c["prompts"] for step, c in steps.items()}},
            ),
            Outcome(
                RLHF_SHARES, bool(rlhf.get("within_tolerance", False)), blocking[RLHF_SHARES],
                f"largest deviation {rlhf.get('max_deviation', 0):.4f} (tolerance "
                f"{rlhf.get('tolerance')})",
                {"configured": MetadataValue.json({k: c["configured_share"]
                                                   for k, c in steps.items()}),
                 "actual": MetadataValue.json({k: c["actual_share"] for k, c in steps.items()}),
                 "max_deviation": float(rlhf.get("max_deviation", 0.0))},
            ),
        ]
    if BIAS_BALANCE in blocking:
        bias = stats.get("bias") or {}
        bad = [f"{a}/{s}: ratio {v['ratio']} > {spec['max_ratio']}"
               for a, spec in sorted(bias.items()) for s, v in spec["splits"].items()
               if v["status"] == "imbalanced"]
        extra.append(Outcome(
            BIAS_BALANCE, not bad, blocking[BIAS_BALANCE],
            "; ".join(bad) if bad else "every judged split within max_ratio",
            {"imbalanced": len(bad), "attributes": MetadataValue.json(bias)},
        ))
    return extra + [
        Outcome(
            SIZE_TARGET, shortfall == 0, blocking[SIZE_TARGET],
            f"{size.get('records')} examples, {shortfall} short of min_records "
            f"{size.get('min_records')}" if shortfall
            else f"{size.get('records')} examples (min_records {size.get('min_records')}, "
            f"max_records {size.get('max_records')})",
            {"records": size.get("records"), "min_records": size.get("min_records"),
             "shortfall": shortfall,
             "downsampled": (size.get("downsampling") or {}).get("dropped", 0)},
        ),
        Outcome(
            NEAR_DUPLICATE_LEAKAGE, near.get("pairs", 0) == 0, blocking[NEAR_DUPLICATE_LEAKAGE],
            f"{near.get('pairs', 0)} train/held-out pair(s) at Jaccard >= "
            f"{near.get('threshold')}"
            + (" (LSH candidates: at least this many)" if near.get("search") == "lsh" else "")
            + f"; held-out examples with a train neighbour: {held}",
            {"pairs": near.get("pairs", 0), "search": near.get("search", "exact"),
             **{f"{s}_with_train_neighbour": n for s, n in held.items()},
             "examples": MetadataValue.json(near.get("examples", []))},
        ),
        Outcome(
            PROMPT_LEAKAGE, prompts.get("prompts", 0) == 0, blocking[PROMPT_LEAKAGE],
            f"{prompts.get('prompts', 0)} first user turn(s) in train and held out with "
            "different answers",
            {"prompts": prompts.get("prompts", 0), "records": prompts.get("records", 0),
             "examples": MetadataValue.json(prompts.get("examples", []))},
        ),
        Outcome(
            SPLIT_RATIOS, bool(ratios.get("within_tolerance", True)), blocking[SPLIT_RATIOS],
            f"largest deviation {ratios.get('max_deviation', 0):.4f} "
            f"(tolerance {ratios.get('tolerance')})",
            {"configured": MetadataValue.json(ratios.get("configured", {})),
             "actual": MetadataValue.json(ratios.get("actual", {})),
             "max_deviation": float(ratios.get("max_deviation", 0.0))},
        ),
        Outcome(
            CROSS_DATASET_SPLITS, train_test == 0, blocking[CROSS_DATASET_SPLITS],
            f"{train_test} record(s) train in one dataset and test in another; "
            + ", ".join(f"{d}: {v['different_split']} of {v['shared_records']} shared records "
                        "in another split" for d, v in sorted(cross.items()))
            if cross else "no other materialized dataset shares a record with this one",
            {"train_test": train_test, "datasets": MetadataValue.json(cross)},
        ),
    ]


def split_check_results(recipe: RecipeConfig | None, stats: dict | None) -> Iterator[AssetCheckResult]:
    if recipe is None:
        return
    for outcome in evaluate(recipe, stats or {}):
        yield AssetCheckResult(
            check_name=outcome.name,
            passed=outcome.passed,
            severity=AssetCheckSeverity.ERROR if outcome.blocking else AssetCheckSeverity.WARN,
            description=outcome.description,
            metadata=outcome.metadata,
        )
