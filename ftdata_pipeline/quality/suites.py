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
    if kind == "distillation":  # prompts until the teacher's answers join at the labeled stage
        if stage in ("labeled", "split"):
            return [_exp("ExpectColumnValuesToBeBetween", column=N_MESSAGES, min_value=2)]
        return _non_empty("prompt")
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
    if stage == "curated" and recipe is not None:
        suite += _curation_scores(recipe)
    if kind == "classification" and at >= STAGE_ORDER.index("labeled"):
        suite.append(_exp("ExpectColumnValuesToNotBeNull", column="label"))
        if recipe is not None and recipe.label.label_set:
            label_set = list(recipe.label.label_set)
            suite.append(_exp("ExpectColumnValuesToBeInSet", column="label", value_set=label_set))
    if stage == "split":
        suite.append(_exp("ExpectColumnValuesToNotBeNull", column="split"))
        suite.append(_exp("ExpectColumnValuesToBeInSet", column="split", value_set=list(SPLITS)))
    return suite


def _between(column: str, low: float | None, high: float | None, **extra) -> ExpectationConfig:
    kwargs = {"column": column, **extra}
    if low is not None:
        kwargs["min_value"] = low
    if high is not None:
        kwargs["max_value"] = high
    return _exp("ExpectColumnValuesToBeBetween", **kwargs)


def _curation_scores(recipe: RecipeConfig) -> list[ExpectationConfig]:
    """Post-conditions of the curate filters: every kept score is within the recipe's bounds.

    Only rules that apply to every kept row are expressed (GX skips nulls, so scores that are
    null where a rule does not apply, like q_lang on short texts, work). Rules gated by a
    minimum word count (repetition, ratios, stop words) cannot be stated without a row
    condition, which the runner does not support: for those only the score's range is checked.
    """
    cfg, kind = recipe.curate, recipe.kind
    out: list[ExpectationConfig] = []
    if cfg.quality.enabled:
        q = cfg.quality
        sides = [("prompt", q.prompt)]
        if kind in ("chat_sft", "preference"):
            sides.append(("response", q.response))
        for side, b in sides:
            if b.min_words or b.max_words is not None:
                out.append(_between(f"q_{side}_words", b.min_words, b.max_words))
            if b.min_chars or b.max_chars is not None:
                out.append(_between(f"q_{side}_chars", b.min_chars, b.max_chars))
        if kind in ("chat_sft", "preference") and q.drop_empty_response:
            out.append(_between("q_response_chars", 1, None))
        if kind in ("chat_sft", "preference") and q.drop_refusals and q.refusal_patterns:
            out.append(_exp("ExpectColumnValuesToBeInSet", column="q_refusal", value_set=[False]))
        for column in ("q_dup_line_frac", "q_top2gram_frac", "q_top3gram_frac", "q_top4gram_frac",
                       "q_alpha_frac", "q_quality"):
            out.append(_between(column, 0, 1))
    if cfg.language.enabled:
        # true: best language allowed; null: not judged or not confident; false is dropped
        out.append(_exp("ExpectColumnValuesToBeInSet", column="q_lang_allowed", value_set=[True]))
        out.append(_between("q_lang_score", 0, 1))
    if cfg.harmful.enabled and cfg.harmful.action == "drop":
        out.append(_between("q_harm", 0, cfg.harmful.threshold, strict_max=True))
    if cfg.near_dedup.enabled and cfg.dedup != "none":
        # one survivor per near-duplicate cluster
        out.append(_exp("ExpectColumnValuesToBeUnique", column="dup_cluster_id"))
    return out
