"""GX layer: expectation resolution, the runner's counts-only outcomes, default suites, leakage."""

from __future__ import annotations

import json

import great_expectations.expectations as gxe
import polars as pl

from ftdata_pipeline.records import row_count
import pytest

from ftdata_pipeline.config.models import ExpectationConfig, RecipeConfig
from ftdata_pipeline.quality.expectations import resolve_expectation
from ftdata_pipeline.quality.leakage import leakage_expectations, leaking_keys, split_leakage
from ftdata_pipeline.quality.runner import run_expectations
from ftdata_pipeline.quality.suites import default_expectations
from ftdata_pipeline.records import MESSAGE

SENTINEL = "alice@example.com"


def _exp(name, severity="error", **kwargs):
    return ExpectationConfig(expectation=name, kwargs=kwargs, severity=severity)


def _outcome(suite, i):
    return suite.to_metadata()["results"][i]


# ---- resolve_expectation ------------------------------------------------------------------


def test_class_and_snake_case_names_resolve_to_the_same_expectation():
    a = resolve_expectation("ExpectColumnValuesToNotBeNull", {"column": "text"})
    b = resolve_expectation("expect_column_values_to_not_be_null", {"column": "text"})
    assert type(a) is type(b) is gxe.ExpectColumnValuesToNotBeNull
    assert a.column == b.column == "text"


def test_unknown_name_raises_value_error():
    with pytest.raises(ValueError, match="unknown expectation 'ExpectColumnToBeNice'"):
        resolve_expectation("ExpectColumnToBeNice", {"column": "text"})


def test_invalid_kwargs_raise_value_error():
    with pytest.raises(ValueError, match="invalid arguments for ExpectColumnValuesToNotBeNull"):
        resolve_expectation("ExpectColumnValuesToNotBeNull", {"colum": "text"})


# ---- run_expectations ---------------------------------------------------------------------


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "record_id": ["a", "b", "c", "d"],
            "text": ["ok", SENTINEL, None, SENTINEL],
            "label": ["x", "y", "x", "z"],
            "messages": [
                [{"role": "user", "content": SENTINEL}, {"role": "assistant", "content": "hi"}],
                [],
                None,
                [{"role": "user", "content": "q"}],
            ],
        },
        schema_overrides={"messages": pl.List(MESSAGE)},
    )


def test_passing_and_failing_expectations_with_exact_counts():
    suite = run_expectations(
        _frame(),
        [
            _exp("ExpectColumnValuesToBeUnique", column="record_id"),
            _exp("expect_column_values_to_not_be_null", column="text"),
            _exp("ExpectColumnValuesToNotMatchRegex", column="text", regex="@"),
            _exp("ExpectColumnValuesToBeInSet", column="label", value_set=["x", "y"]),
            _exp("ExpectColumnValuesToBeBetween", column="n_messages", min_value=1),
        ],
        suite_name="t",
    )
    assert not suite.success
    assert [(r.success, r.element_count, r.unexpected_count) for r in suite.results] == [
        (True, 4, 0),
        (False, 4, 1),
        (False, 4, 2),
        (False, 4, 1),
        (False, 4, 2),  # [] and null messages both count as zero turns
    ]
    assert suite.results[1].unexpected_percent == 25.0
    assert suite.results[1].expectation == "expect_column_values_to_not_be_null"
    assert suite.results[4].column == "n_messages"


def test_columns_go_to_gx_a_group_at_a_time(monkeypatch):
    """Each expectation reads its own columns: never every referenced column in one pandas
    frame (strings there are Python objects, GX's metrics copy them); same outcomes."""
    from ftdata_pipeline.quality import runner

    exps = [
        _exp("ExpectColumnValuesToBeUnique", column="record_id"),
        _exp("ExpectColumnValuesToNotBeNull", column="text"),
        _exp("ExpectColumnValuesToNotBeNull", column="record_id"),
        _exp("ExpectColumnPairValuesToBeEqual", column_A="label", column_B="text"),
        _exp("ExpectTableRowCountToBeBetween", min_value=1),
    ]
    handed: list[list[str]] = []
    real = runner._value_frame
    monkeypatch.setattr(runner, "_value_frame",
                        lambda df, columns: handed.append(columns) or real(df, columns))
    suite = run_expectations(_frame().lazy(), exps, suite_name="t")
    assert sorted(set(map(tuple, handed))) == [(), ("label", "text"), ("record_id",), ("text",)]
    assert [(r.success, r.element_count, r.unexpected_count) for r in suite.results] == [
        (True, 4, 0), (False, 4, 1), (True, 4, 0), (False, 4, 4), (True, None, None),
    ]


def test_row_wise_expectations_run_in_row_batches_with_the_whole_frame_s_outcome(monkeypatch):
    """Expectations that judge each row alone see GX_ROWS rows at a time; summed counts,
    percentages and ``mostly`` give exactly the whole column's outcome. Uniqueness needs the
    whole column and gets it."""
    from ftdata_pipeline.quality import runner

    df = pl.DataFrame({
        "record_id": [f"r{i % 9}" for i in range(11)],
        "text": ["ok", None, "a", "longer", None, "b", "cc", "ddd", None, "e", "ffff"],
        "label": ["x", "y", "x", "z", "x", "x", "y", None, "x", "x", "y"],
    })
    exps = [
        _exp("ExpectColumnValuesToNotBeNull", column="text"),
        _exp("ExpectColumnValueLengthsToBeBetween", column="text", min_value=2),
        _exp("ExpectColumnValueLengthsToBeBetween", column="text", min_value=2, mostly=0.5),
        _exp("ExpectColumnValueLengthsToBeBetween", column="text", min_value=2, mostly=0.4),
        _exp("ExpectColumnValuesToBeInSet", column="label", value_set=["x", "y"]),
        _exp("ExpectColumnValuesToBeUnique", column="record_id"),
        _exp("ExpectColumnPairValuesToBeEqual", column_A="label", column_B="text"),
    ]
    whole = run_expectations(df, exps, suite_name="t")
    handed: list[int] = []
    real = runner._value_frame
    monkeypatch.setattr(runner, "_value_frame",
                        lambda frame, columns: handed.append(row_count(frame)) or real(frame, columns))
    monkeypatch.setattr(runner, "GX_ROWS", 3)
    batched = run_expectations(df.lazy(), exps, suite_name="t")
    assert batched.results == whole.results
    assert [r.success for r in whole.results] == [False, False, True, True, False, False, False]
    assert max(handed) == df.height  # uniqueness: the whole column
    assert sorted(handed).count(3) >= 3 * 3  # the rest: batches of 3 rows


def test_metadata_never_contains_values():
    suite = run_expectations(
        _frame(),
        [
            _exp("ExpectColumnValuesToNotMatchRegex", column="text", regex="@"),
            _exp("ExpectColumnValuesToBeInSet", column="text", value_set=["ok"]),
            _exp("ExpectColumnMostCommonValueToBeInSet", column="text", value_set=["ok"]),
            _exp("ExpectColumnValuesToBeUnique", column="text"),
            _exp("ExpectColumnMeanToBeBetween", column="text", min_value=0),  # raises inside GX
        ],
        suite_name="pii",
    )
    metadata = suite.to_metadata()
    dumped = json.dumps(metadata)
    assert SENTINEL not in dumped
    assert "alice" not in dumped
    assert metadata["failed_error"] == 5
    assert metadata["results"][4]["error"].startswith("exception while evaluating")


def test_warn_severity_does_not_fail_the_suite():
    suite = run_expectations(
        _frame(),
        [
            _exp("ExpectColumnValuesToBeUnique", column="record_id"),
            _exp("ExpectColumnValuesToNotBeNull", severity="warn", column="text"),
        ],
        suite_name="w",
    )
    assert suite.success
    assert suite.to_metadata()["failed_warn"] == 1


def test_missing_column_is_a_failed_outcome_naming_it():
    suite = run_expectations(
        _frame(),
        [
            _exp("ExpectColumnValuesToNotBeNull", column="record_id"),
            _exp("ExpectColumnValuesToNotBeNull", column="split"),
        ],
        suite_name="m",
    )
    assert not suite.success
    assert suite.results[0].success
    assert _outcome(suite, 1) == {
        "expectation": "expect_column_values_to_not_be_null",
        "column": "split",
        "severity": "error",
        "success": False,
        "element_count": None,
        "unexpected_count": None,
        "unexpected_percent": None,
        "observed_value": None,
        "error": "column(s) not in frame: split",
    }


def test_table_level_and_schema_expectations():
    suite = run_expectations(
        _frame(),
        [
            _exp("ExpectTableRowCountToEqual", value=4),
            _exp(
                "ExpectTableColumnsToMatchSet",
                column_set=["record_id", "text", "label", "messages"],
            ),
            _exp("ExpectColumnToExist", column="split"),
        ],
        suite_name="s",
    )
    assert [r.success for r in suite.results] == [True, True, False]
    assert suite.results[0].observed_value == 4


def test_default_suite_passes_on_a_valid_split_frame():
    recipe = RecipeConfig.model_validate(
        {
            "name": "tickets",
            "kind": "classification",
            "sources": ["tickets"],
            "label": {
                "method": "rules",
                "rules": [{"label": "billing", "pattern": "card"}],
                "label_set": ["billing", "other"],
            },
            "exports": {"formats": ["classification_jsonl"]},
        }
    )
    df = pl.DataFrame(
        {
            "record_id": ["1", "2", "3"],
            "source": ["s"] * 3,
            "source_key": ["1", "2", "3"],
            "text": ["a", "b", "c"],
            "label": ["billing", "other", "spam"],
            "split": ["train", "test", "dev"],
        }
    )
    exps = default_expectations("split", "classification", recipe)
    suite = run_expectations(df, exps, suite_name="d")
    failed = [(r.column, r.expectation, r.unexpected_count) for r in suite.results if not r.success]
    assert failed == [
        ("label", "expect_column_values_to_be_in_set", 1),
        ("split", "expect_column_values_to_be_in_set", 1),
    ]


# ---- default suites -----------------------------------------------------------------------


def _names(exps):
    return [(e.expectation, e.kwargs.get("column")) for e in exps]


def test_default_suites_per_stage_and_kind():
    base = [
        ("ExpectColumnValuesToNotBeNull", "record_id"),
        ("ExpectColumnValuesToBeUnique", "record_id"),
        ("ExpectColumnValuesToNotBeNull", "source"),
        ("ExpectColumnValuesToNotBeNull", "source_key"),
    ]
    assert _names(default_expectations("raw", "chat_sft", None)) == base
    assert _names(default_expectations("curated", "chat_sft", None)) == base + [
        ("ExpectColumnValuesToBeBetween", "n_messages"),
        ("ExpectColumnValuesToBeUnique", "content_hash"),
    ]
    assert _names(default_expectations("redacted", "preference", None)) == base + [
        ("ExpectColumnValuesToNotBeNull", "prompt"),
        ("ExpectColumnValueLengthsToBeBetween", "prompt"),
    ]
    split = _names(default_expectations("split", "preference", None))
    assert ("ExpectColumnValueLengthsToBeBetween", "chosen") in split
    assert ("ExpectColumnValueLengthsToBeBetween", "rejected") in split
    assert split[-1] == ("ExpectColumnValuesToBeInSet", "split")
    assert all(e.severity == "error" for e in default_expectations("split", "pretraining", None))
    for exp in default_expectations("split", "classification", None):
        resolve_expectation(exp.expectation, exp.kwargs)
    with pytest.raises(ValueError, match="unknown stage"):
        default_expectations("exports", "chat_sft", None)


# ---- leakage ------------------------------------------------------------------------------


def test_leakage_frame_catches_a_group_in_two_splits():
    df = pl.DataFrame(
        {
            "record_id": ["1", "2", "3", "4"],
            "conversation_id": ["c1", "c1", "c2", None],
            "dup_cluster_id": ["1", "2", "3", "3"],
            "content_hash": ["h1", "h2", "h3", "h4"],
            "split": ["train", "test", "train", "train"],
        }
    )
    leakage = split_leakage(df)
    assert leakage.filter(pl.col("n_splits") > 1).rows() == [("conversation_id", "c1", 2)]
    assert leakage.height == 2 + 3 + 4
    assert leaking_keys(leakage) == {"conversation_id": 1, "dup_cluster_id": 0, "content_hash": 0}
    suite = run_expectations(leakage, leakage_expectations(), suite_name="leak")
    assert not suite.success
    assert (suite.results[0].element_count, suite.results[0].unexpected_count) == (9, 1)

    clean = run_expectations(
        split_leakage(df.with_columns(pl.lit("train").alias("split"))),
        leakage_expectations(),
        suite_name="leak",
    )
    assert clean.success
