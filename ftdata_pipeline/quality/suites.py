"""Default expectation suites: what every stage's output must satisfy, per dataset kind.

Recipes add their own expectations on top (``RecipeConfig.expectations``); these defaults are
the invariants the pipeline itself relies on, so they are all error severity.
"""

from __future__ import annotations

from ftdata_pipeline.config.models import ExpectationConfig, RecipeConfig
from ftdata_pipeline.records import KINDS, RECORD_ID, SOURCE, SOURCE_KEY, SPLITS

STAGE_ORDER = ("raw", "curated", "redacted", "labeled", "split")
# Computed by the runner from ``messages`` (list columns cannot be handed to GX).
N_MESSAGES = "n_messages"


def _exp(name: str, **kwargs) -> ExpectationConfig:
    return ExpectationConfig(expectation=name, kwargs=kwargs, severity="error")


def _non_empty(column: str) -> list[ExpectationConfig]:
    # GX value-length checks skip nulls, so non-empty needs both expectations.
    return [
        _exp("ExpectColumnValuesToNotBeNull", column=column),
        _exp("ExpectColumnValueLengthsToBeBetween", column=column, min_value=1),
    ]


def _content(stage: str, kind: str, recipe: RecipeConfig | None) -> list[ExpectationConfig]:
    if kind == "chat_sft":
        return [_exp("ExpectColumnValuesToBeBetween", column=N_MESSAGES, min_value=1)]
    if kind in ("classification", "pretraining"):
        return _non_empty("text")
    # preference: ranked responses only become chosen/rejected pairs at the labeled stage,
    # unless the source already delivers pairs.
    columns = ["prompt"]
    pairs_from_source = recipe is not None and recipe.label.method == "source"
    if stage in ("labeled", "split") or pairs_from_source:
        columns += ["chosen", "rejected"]
    return [e for c in columns for e in _non_empty(c)]


def default_expectations(
    stage: str, kind: str | None, recipe: RecipeConfig | None
) -> list[ExpectationConfig]:
    """The default suite for ``stage``'s output in a dataset of ``kind``."""
    if stage not in STAGE_ORDER:
        raise ValueError(f"unknown stage {stage!r}; expected one of {list(STAGE_ORDER)}")
    # a raw source feeds datasets of any kind, so only the raw suite may omit it
    if kind not in KINDS and stage != "raw":
        raise ValueError(f"unknown kind {kind!r}; expected one of {list(KINDS)}")
    at = STAGE_ORDER.index(stage)
    suite = [
        _exp("ExpectColumnValuesToNotBeNull", column=RECORD_ID),
        _exp("ExpectColumnValuesToBeUnique", column=RECORD_ID),
        _exp("ExpectColumnValuesToNotBeNull", column=SOURCE),
        _exp("ExpectColumnValuesToNotBeNull", column=SOURCE_KEY),
    ]
    if at >= STAGE_ORDER.index("curated"):
        suite += _content(stage, kind, recipe)
    # Later stages may legitimately drop rows but never re-introduce duplicates; checking once
    # where dedup happens keeps the suites short. Without dedup, duplicates are allowed.
    if stage == "curated" and (recipe is None or recipe.curate.dedup == "exact"):
        suite.append(_exp("ExpectColumnValuesToBeUnique", column="content_hash"))
    if kind == "classification" and at >= STAGE_ORDER.index("labeled"):
        suite.append(_exp("ExpectColumnValuesToNotBeNull", column="label"))
        if recipe is not None and recipe.label.label_set:
            label_set = list(recipe.label.label_set)
            suite.append(_exp("ExpectColumnValuesToBeInSet", column="label", value_set=label_set))
    if stage == "split":
        suite.append(_exp("ExpectColumnValuesToNotBeNull", column="split"))
        suite.append(_exp("ExpectColumnValuesToBeInSet", column="split", value_set=list(SPLITS)))
    return suite
