"""Every blocking stage check fails when its invariant is broken: a lost row, a residual e-mail,
split leakage, a disallowed licence, and preference pairs that lose a response."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from ftdata_pipeline.config.models import RecipeConfig, SourceConfig
from ftdata_pipeline.orchestration.assets import stage_key
from ftdata_pipeline.orchestration.checks import (
    LICENCES_ALLOWED,
    NO_RESIDUAL_PII,
    ROWS_ACCOUNTED,
    SPLITS_DISJOINT,
    CheckPlan,
    run_checks,
)
from ftdata_pipeline.records import conform
from ftdata_pipeline.stages.curate import curate
from ftdata_pipeline.stages.label import label
from ftdata_pipeline.stages.redact import residual_pii_counts

RECIPE = RecipeConfig.model_validate(
    {"name": "docs", "kind": "pretraining", "sources": ["kb"],
     "curate": {"min_chars": 5, "min_words": 1},
     "governance": {"allowed_licences": ["cc-by-4.0"]},
     "exports": {"formats": ["trl_text"]}}
)
TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank today.",
    "Open the settings page and choose a new password for your account please.",
    "Invoices are sent on the first day of every month to the billing contact.",
    "Backups run every night and are kept for thirty days in another region.",
    "Our support team answers tickets within one business day on weekdays.",
]


def _records(n: int = 5, source: str = "kb") -> pl.DataFrame:
    return conform(pl.DataFrame({
        "record_id": [f"r{i}" for i in range(n)], "source": [source] * n,
        "source_key": [str(i) for i in range(n)], "text": TEXTS[:n],
        "created_at": [datetime(2026, 1, 1, tzinfo=UTC)] * n,
    }))


def _result(plan: CheckPlan, df: pl.DataFrame, **kwargs) -> dict:
    return {r.check_name: r for r in run_checks(plan, df, **kwargs)}


def _plan(stage: str, recipe: RecipeConfig = RECIPE) -> CheckPlan:
    return CheckPlan(key=stage_key(recipe.name, stage), stage=stage, recipe=recipe,
                     kind=recipe.kind)


def _source(licence: str) -> SourceConfig:
    return SourceConfig(kind="file", path="x.jsonl", format="jsonl", mapping={"text": "t"},
                        owner="o@example.com", licence=licence, classification="public",
                        contains_pii=False)


def test_rows_accounted_fails_on_a_lost_row():
    result = curate(_records().lazy(), RECIPE, {"kb": _source("cc-by-4.0")})
    good = _result(_plan("curated"), result.kept, rows_in=result.rows_in,
                   rows_rejected=result.rows_rejected, stats=result.stats)
    assert good[ROWS_ACCOUNTED].passed
    lost = result.kept.head(result.kept.height - 1)  # a row neither kept nor rejected
    bad = _result(_plan("curated"), lost, rows_in=result.rows_in,
                  rows_rejected=result.rows_rejected, stats=result.stats)
    assert not bad[ROWS_ACCOUNTED].passed
    assert bad[ROWS_ACCOUNTED].severity.value == "ERROR"


def test_no_residual_pii_fails_on_a_residual_email():
    df = _records(2).with_columns(
        pl.Series("text", ["Write to ann.lee@example.com for help.", "No personal data."]))
    residual = residual_pii_counts(df)
    assert residual["EMAIL_ADDRESS"] == 1
    bad = _result(_plan("redacted"), df, rows_in=2, residual_pii=residual)
    assert not bad[NO_RESIDUAL_PII].passed
    clean = df.with_columns(pl.col("text").str.replace("ann.lee@example.com", "<EMAIL_ADDRESS>",
                                                       literal=True))
    good = _result(_plan("redacted"), clean, rows_in=2, residual_pii=residual_pii_counts(clean))
    assert good[NO_RESIDUAL_PII].passed


def test_splits_disjoint_fails_on_a_conversation_in_two_splits():
    df = _records(4).with_columns(
        pl.Series("conversation_id", ["c1", "c1", "c2", "c3"]),
        pl.Series("split", ["train", "test", "train", "validation"]),
    )
    bad = _result(_plan("split"), df, rows_in=4)
    assert not bad[SPLITS_DISJOINT].passed
    good = _result(_plan("split"), df.with_columns(pl.Series("split", ["train", "train",
                                                                        "test", "validation"])),
                   rows_in=4)
    assert good[SPLITS_DISJOINT].passed


def test_licences_allowed_fails_on_a_disallowed_licence():
    result = curate(_records().lazy(), RECIPE, {"kb": _source("proprietary-scraped")})
    assert result.kept.is_empty()
    bad = _result(_plan("curated"), result.kept, rows_in=result.rows_in,
                  rows_rejected=result.rows_rejected, stats=result.stats)
    assert not bad[LICENCES_ALLOWED].passed
    assert "source 'kb' has licence 'proprietary-scraped'" in bad[LICENCES_ALLOWED].description
    assert bad[ROWS_ACCOUNTED].passed  # the refused rows are rejected, not lost


def test_rankings_accounting_fails_when_a_response_is_lost():
    recipe = RecipeConfig.model_validate(
        {"name": "prefs", "kind": "preference", "sources": ["ranked"],
         "label": {"method": "rankings"}, "exports": {"formats": ["trl_preference"]}})
    responses = conform(pl.DataFrame({
        "record_id": [f"p{i}" for i in range(7)], "source": ["ranked"] * 7,
        "source_key": [f"k{i}" for i in range(7)],
        "conversation_id": ["q1", "q1", "q1", "q2", "q2", "q3", "q4"],
        "prompt": ["Q1"] * 3 + ["Q2"] * 2 + ["Q3", "Q4"],
        "response": [f"answer {i}" for i in range(7)],
        "rank": [1, 2, 3, 1, 2, 1, None],
    }))
    result = label(responses.lazy(), recipe)
    assert result.rows_kept == 5 and result.rows_rejected == 2  # measured, not derived
    plan = _plan("labeled", recipe)
    good = _result(plan, result.kept, rows_in=result.rows_in,
                   rows_rejected=result.rows_rejected, one_row_per_input=False)
    assert good[ROWS_ACCOUNTED].passed
    # drop the only pair of q2: its two responses are now in no pair and not rejected
    lost = result.kept.filter(~pl.col("source_key").str.contains("k3"))
    bad = _result(plan, lost, rows_in=result.rows_in, rows_rejected=result.rows_rejected,
                  one_row_per_input=False)
    assert not bad[ROWS_ACCOUNTED].passed
    assert bad[ROWS_ACCOUNTED].metadata["responses_in_pairs"].value == 3
