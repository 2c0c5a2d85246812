"""Asset checks: which checks each stage asset declares, and how their results are produced.

Checks run inside the asset's own step (declared as ``check_specs``), on the frame the stage just
produced, so there is no second read of the data and a failing ERROR check blocks downstream
assets in the same run. Check metadata carries counts only, never values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey

from ftdata_pipeline.config.models import ExpectationConfig, RecipeConfig
from ftdata_pipeline.orchestration.split_checks import split_check_results, split_check_specs
from ftdata_pipeline.quality.leakage import leakage_expectations, split_leakage
from ftdata_pipeline.quality.runner import run_expectations
from ftdata_pipeline.records import row_count
from ftdata_pipeline.quality.suites import default_expectations

DEFAULT_SUITE = "default_suite"
RECIPE_SUITE = "recipe_expectations"
ROWS_ACCOUNTED = "rows_accounted"
NO_RESIDUAL_PII = "no_residual_pii"
SPLITS_DISJOINT = "splits_disjoint"
LICENCES_ALLOWED = "licences_allowed"
INPUT_NOT_SHRUNK = "input_not_shrunk"
LABEL_AGREEMENT = "label_agreement"

# An annotation names its record and annotator; its answer may be a label, a rating or a rank,
# and a cancelled one has none (the labeled stage counts those).
ANNOTATION_EXPECTATIONS = [
    ExpectationConfig(expectation="ExpectColumnValuesToNotBeNull", kwargs={"column": c})
    for c in ("item_key", "annotator")
]
TEACHER_EXPECTATIONS = [
    ExpectationConfig(expectation="ExpectColumnValuesToNotBeNull", kwargs={"column": c})
    for c in ("item_key", "teacher_model")
]


@dataclass(frozen=True)
class CheckPlan:
    """The checks one asset runs."""

    key: AssetKey
    stage: str
    recipe: RecipeConfig | None
    kind: str
    annotations: bool = False
    teacher_outputs: bool = False
    # a partitioned asset's checks run per partition and carry its partitions definition
    partitions_def: Any = None

    def default_expectations(self) -> list[ExpectationConfig]:
        if self.annotations:
            return ANNOTATION_EXPECTATIONS
        if self.teacher_outputs:
            return TEACHER_EXPECTATIONS
        return default_expectations(self.stage, self.kind, self.recipe)

    def recipe_expectations(self) -> list[ExpectationConfig]:
        if self.recipe is None:
            return []
        return list(self.recipe.expectations.get(self.stage, []))

    def specs(self) -> list[AssetCheckSpec]:
        def spec(name: str, description: str, blocking: bool = True) -> AssetCheckSpec:
            return AssetCheckSpec(name, asset=self.key, description=description, blocking=blocking,
                                  partitions_def=self.partitions_def)

        specs = [spec(DEFAULT_SUITE, f"Default Great Expectations suite for the {self.stage} stage")]
        if self.stage != "raw":
            specs.append(spec(ROWS_ACCOUNTED, "rows in = rows kept + rows rejected"))
        else:
            specs.append(spec(INPUT_NOT_SHRUNK, "The source has rows, and not far fewer than at "
                              "the previous accepted run (max_drop_fraction)"))
        recipe_exps = self.recipe_expectations()
        if recipe_exps:
            blocking = any(e.severity == "error" for e in recipe_exps)
            specs.append(spec(RECIPE_SUITE, "Expectations declared in the recipe", blocking))
        if self.stage == "redacted":
            specs.append(
                spec(NO_RESIDUAL_PII, "Independent regex scan finds no PII left after redaction")
            )
        if self.stage == "split":
            specs.append(spec(SPLITS_DISJOINT, "No conversation or duplicate cluster in two splits"))
            specs.extend(split_check_specs(self.key, self.recipe))
        if self.stage == "curated":
            specs.append(
                spec(LICENCES_ALLOWED, "Every source's licence is in governance.allowed_licences")
            )
        if self.stage == "labeled" and _min_alpha(self.recipe) is not None:
            specs.append(
                spec(LABEL_AGREEMENT, "Krippendorff's alpha is at least label.agreement.min_alpha")
            )
        return specs


def _suite_result(
    name: str, df: pl.DataFrame, expectations: list[ExpectationConfig], suite_name: str
) -> AssetCheckResult:
    outcome = run_expectations(df, expectations, suite_name=suite_name)
    failed_errors = [r for r in outcome.results if not r.success and r.severity == "error"]
    failed_warns = [r for r in outcome.results if not r.success and r.severity != "error"]
    passed = not failed_errors and not failed_warns
    return AssetCheckResult(
        check_name=name,
        passed=passed,
        severity=AssetCheckSeverity.ERROR if failed_errors else AssetCheckSeverity.WARN,
        metadata={
            "expectations": len(outcome.results),
            "failed": len(failed_errors) + len(failed_warns),
            **outcome.to_metadata(),
        },
    )


def run_checks(
    plan: CheckPlan,
    df: pl.DataFrame | pl.LazyFrame,
    *,
    rows_in: int | None = None,
    rows_rejected: int = 0,
    one_row_per_input: bool = True,
    residual_pii: dict[str, int] | None = None,
    stats: dict | None = None,
    input_guard=None,
) -> Iterator[AssetCheckResult]:
    suite_prefix = "_".join(plan.key.path)
    yield _suite_result(DEFAULT_SUITE, df, plan.default_expectations(), f"{suite_prefix}_default")
    if plan.stage != "raw":
        if one_row_per_input:
            rows_out = row_count(df)
            accounted = rows_in == rows_out + rows_rejected
            meta = {"rows_in": rows_in, "rows_out": rows_out, "rows_rejected": rows_rejected}
        else:
            # Outputs are preference pairs: every input response is in a pair or rejected.
            # The responses used are counted from the pairs themselves (their source keys).
            used = pairs_inputs(df)
            accounted = rows_in == used + rows_rejected
            meta = {"rows_in": rows_in, "responses_in_pairs": used,
                    "rows_rejected": rows_rejected, "rows_out": df.height}
        yield AssetCheckResult(
            check_name=ROWS_ACCOUNTED,
            passed=bool(accounted),
            severity=AssetCheckSeverity.ERROR,
            metadata=meta,
        )
    if plan.stage == "raw" and input_guard is not None:  # a sources.guard.GuardResult
        yield AssetCheckResult(
            check_name=INPUT_NOT_SHRUNK,
            passed=input_guard.passed,
            severity=AssetCheckSeverity.ERROR,
            description=input_guard.reason,
            metadata=input_guard.metadata(),
        )
    recipe_exps = plan.recipe_expectations()
    if recipe_exps:
        yield _suite_result(RECIPE_SUITE, df, recipe_exps, f"{suite_prefix}_recipe")
    if plan.stage == "redacted":
        counts = residual_pii or {}
        yield AssetCheckResult(
            check_name=NO_RESIDUAL_PII,
            passed=sum(counts.values()) == 0,
            severity=AssetCheckSeverity.ERROR,
            metadata={f"residual_{k.lower()}": v for k, v in sorted(counts.items())},
        )
    if plan.stage == "curated":
        yield _licence_result(plan, (stats or {}).get("governance", {}))
    if plan.stage == "labeled" and _min_alpha(plan.recipe) is not None:
        yield agreement_result(plan.recipe, stats or {})
    if plan.stage == "split":
        leakage = split_leakage(df)
        yield _suite_result(SPLITS_DISJOINT, leakage, leakage_expectations(), f"{suite_prefix}_leak")
        yield from split_check_results(plan.recipe, stats)


def pairs_inputs(pairs: pl.DataFrame) -> int:
    """Distinct input rows (source, source_key) that a frame of preference pairs was built
    from; a pair's ``source_key`` is ``"<chosen key>><rejected key>"``."""
    if pairs.is_empty():
        return 0
    return (
        pairs.select(pl.col("source"), pl.col("source_key").str.split(">"))
        .explode("source_key")
        .unique()
        .height
    )


def _licence_result(plan: CheckPlan, governance: dict) -> AssetCheckResult:
    """Fails when the curate stage refused a source for its licence (names, never data)."""
    refused: dict[str, str] = governance.get("refused_sources", {})
    allowed = governance.get("allowed_licences")
    if refused:
        listed = ", ".join(f"source {s!r} has licence {lic!r}" for s, lic in sorted(refused.items()))
        description = f"{listed}; not in governance.allowed_licences {allowed}; its records "
        description += "were rejected (rule licence_not_allowed)"
    elif allowed is None:
        description = "no licence allow-list in the recipe: every licence is allowed"
    else:
        description = f"every source's licence is in {allowed}"
    return AssetCheckResult(
        check_name=LICENCES_ALLOWED,
        passed=not refused,
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "refused_sources": len(refused),
            **{f"refused/{s}": lic for s, lic in sorted(refused.items())},
            "allowed_licences": ", ".join(allowed) if allowed else "any",
            "sources_checked": bool(governance.get("sources_checked", False)),
        },
    )


def _min_alpha(recipe: RecipeConfig | None) -> float | None:
    return None if recipe is None else recipe.label.agreement.min_alpha


def agreement_result(recipe: RecipeConfig, stats: dict) -> AssetCheckResult:
    """Fails when annotator agreement (Krippendorff's alpha) is under the recipe's bar, or
    cannot be measured: labels nobody can reproduce should not reach training."""
    agreement = stats.get("agreement") or {}
    cfg = recipe.label.agreement
    alpha = agreement.get("alpha")
    passed = alpha is not None and alpha >= cfg.min_alpha
    if alpha is None:
        description = "Krippendorff's alpha could not be measured (too few overlapping votes)"
    else:
        relation = ">=" if passed else "<"
        description = f"alpha ({cfg.level}) = {alpha:.4f} {relation} min_alpha {cfg.min_alpha}"
    return AssetCheckResult(
        check_name=LABEL_AGREEMENT,
        passed=bool(passed),
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "alpha": alpha,
            "level": cfg.level,
            "min_alpha": cfg.min_alpha,
            "fleiss_kappa": agreement.get("fleiss_kappa"),
            "cohen_kappa_mean": agreement.get("cohen_kappa_mean"),
            "items": agreement.get("items", 0),
            "review_queue": stats.get("review_queue", 0),
        },
    )
