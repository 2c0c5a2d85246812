"""Run a list of expectations against a Polars frame with Great Expectations, keeping only counts.

GX has no Polars engine, so only the columns the expectations reference go to pandas (through
Arrow). Results keep counts and percentages, never values: GX is asked for no unexpected-value
samples and exception messages (which can quote values) are withheld, because these outcomes
end up in the Dagster event log, readable by everyone with the UI.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import great_expectations as gx
import pandas as pd
import polars as pl

from ftdata_pipeline.config.models import ExpectationConfig
from ftdata_pipeline.quality.expectations import resolve_expectation, snake_name
from ftdata_pipeline.quality.suites import N_MESSAGES
from ftdata_pipeline.records import row_count

RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
COLUMN_KWARGS = ("column", "column_A", "column_B")
# Expectations about the table's columns themselves: every column name must be present.
SCHEMA_EXPECTATIONS = frozenset(
    {
        "expect_column_to_exist",
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
    }
)
# Columns the runner can derive when an expectation references them and the frame lacks them.
DERIVED_COLUMNS = {N_MESSAGES: ("messages", pl.col("messages").list.len().fill_null(0))}
INDEX_KEY = "ftdata_index"
# Expectations whose verdict on a row depends on that row alone: run GX_ROWS rows at a time.
ROW_WISE = frozenset({
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_value_lengths_to_be_between",
    "expect_column_value_lengths_to_equal",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
    "expect_column_values_to_match_regex_list",
    "expect_column_values_to_not_match_regex_list",
    "expect_column_values_to_match_like_pattern",
    "expect_column_values_to_not_match_like_pattern",
    "expect_column_values_to_match_strftime_format",
    "expect_column_values_to_be_dateutil_parseable",
    "expect_column_values_to_be_json_parseable",
    "expect_column_pair_values_to_be_equal",
    "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_column_pair_values_to_be_in_set",
    "expect_select_column_values_to_be_unique_within_record",
    "expect_multicolumn_sum_to_equal",
})
GX_ROWS = 100_000
WITHHELD = "exception while evaluating (message withheld: it may quote data values)"


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str  # snake_case GX type name
    column: str | None  # referenced column(s), comma-joined; None for table-level expectations
    severity: str
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: float | int | None = None  # numeric observations only (row counts, means)
    error: str | None = None


@dataclass
class SuiteOutcome:
    suite_name: str
    success: bool  # every error-severity expectation passed; warnings never fail a suite
    results: list[ExpectationOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [r for r in self.results if not r.success]

    def to_metadata(self) -> dict[str, Any]:
        """JSON-able summary: suite, success, counts, and one flat dict per expectation."""
        return {
            "suite": self.suite_name,
            "success": self.success,
            "evaluated": len(self.results),
            "failed_error": sum(1 for r in self.failed if r.severity == "error"),
            "failed_warn": sum(1 for r in self.failed if r.severity == "warn"),
            "results": [asdict(r) for r in self.results],
        }


# --------------------------------------------------------------------------------------------
# one ephemeral GX context per process
# --------------------------------------------------------------------------------------------

_lock = threading.Lock()
_batch_definition = None


def _get_batch_definition():
    global _batch_definition
    if _batch_definition is None:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = context.data_sources.add_pandas("ftdata").add_dataframe_asset("frame")
        _batch_definition = asset.add_batch_definition_whole_dataframe("whole_frame")
    return _batch_definition


# --------------------------------------------------------------------------------------------


def _referenced(kwargs: dict[str, Any]) -> list[str]:
    cols = [kwargs[k] for k in COLUMN_KWARGS if isinstance(kwargs.get(k), str)]
    if isinstance(kwargs.get("column_list"), list):
        cols += [c for c in kwargs["column_list"] if isinstance(c, str)]
    return cols


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _value_frame(df: pl.DataFrame | pl.LazyFrame, columns: list[str]) -> pd.DataFrame:
    # only these columns are read (of a LazyFrame: from its files)
    names = df.collect_schema().names()
    exprs = [
        pl.col(c) if c in names else DERIVED_COLUMNS[c][1].alias(c) for c in columns
    ]
    if not exprs:
        return pd.DataFrame(index=pd.RangeIndex(row_count(df)))
    return df.lazy().select(exprs).collect().to_pandas()


def _schema_frame(df: pl.DataFrame | pl.LazyFrame) -> pd.DataFrame:
    # Column-name checks need the columns, not their contents: null stand-ins keep content
    # (and list columns GX cannot handle) out of GX entirely.
    names, height = df.collect_schema().names(), row_count(df)
    if not names:
        return pd.DataFrame(index=pd.RangeIndex(height))
    return pl.select(pl.repeat(None, height).alias(c) for c in names).to_pandas()


def _validate(pdf: pd.DataFrame, expectations: list, suite_name: str):
    with _lock:
        # The suite resolves the active context when expectations are added, so the context
        # must exist first.
        batch_definition = _get_batch_definition()
        suite = gx.ExpectationSuite(name=suite_name)
        for expectation in expectations:
            suite.add_expectation(expectation)
        batch = batch_definition.get_batch(batch_parameters={"dataframe": pdf})
        return batch.validate(suite, result_format=RESULT_FORMAT).results


def _raised(exception_info: dict | None) -> bool:
    # GX nests exception info per metric when a metric fails, flat otherwise.
    info = exception_info or {}
    if info.get("raised_exception"):
        return True
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


def _verdicts(results) -> dict[int, tuple[bool, dict, bool]]:
    """Per expectation index: (success, result dict, raised)."""
    return {
        int(res.expectation_config.meta[INDEX_KEY]):
            (bool(res.success), res.result or {}, _raised(res.exception_info))
        for res in results
    }


def _row_wise(
    df: pl.DataFrame | pl.LazyFrame, columns: list[str], group: list, suite_name: str
) -> dict[int, tuple[bool, dict, bool]]:
    """Expectations whose verdict on a row depends on that row alone, ``GX_ROWS`` rows at a
    time: counts are summed and the percentage and ``mostly`` applied to the sums, as GX
    does over the whole column."""
    parts: dict[int, list] = {}
    height = row_count(df)
    for start in range(0, max(height, 1), GX_ROWS):
        rows = _value_frame(df.lazy().slice(start, GX_ROWS), columns)
        for res in _validate(rows, group, suite_name):
            parts.setdefault(int(res.expectation_config.meta[INDEX_KEY]), []).append(res)
    out = {}
    for i, results in parts.items():
        total = {k: sum((r.result or {}).get(k) or 0 for r in results)
                 for k in ("element_count", "unexpected_count", "missing_count")}
        considered = total["element_count"] - total["missing_count"]
        mostly = results[0].expectation_config.kwargs.get("mostly")
        if mostly is None or mostly >= 1 or considered == 0:
            success = all(r.success for r in results)
        else:
            success = (considered - total["unexpected_count"]) / considered >= mostly
        result = {
            "element_count": total["element_count"],
            "unexpected_count": total["unexpected_count"],
            "unexpected_percent": (
                total["unexpected_count"] / considered * 100 if considered else None
            ),
        }
        out[i] = (success, result, any(_raised(r.exception_info) for r in results))
    return out


def run_expectations(
    df: pl.DataFrame | pl.LazyFrame, expectations: list[ExpectationConfig], *, suite_name: str
) -> SuiteOutcome:
    """Validate ``df`` against ``expectations`` with GX; return counts-only outcomes.

    A referenced column missing from the frame fails that expectation (naming the column)
    instead of raising. ``row_condition`` columns are not converted, so conditions are not
    supported.
    """
    names = df.collect_schema().names()
    available = set(names) | {
        name for name, (source, _) in DERIVED_COLUMNS.items() if source in names
    }
    outcomes: dict[int, ExpectationOutcome] = {}
    # value expectations by the columns they read: one group's columns go to pandas at a time
    value_exps: dict[tuple[str, ...], list] = {}
    schema_exps: list = []
    for i, cfg in enumerate(expectations):
        exp_type = snake_name(cfg.expectation)
        cols = _referenced(cfg.kwargs)
        is_schema = exp_type in SCHEMA_EXPECTATIONS
        missing = [] if is_schema else [c for c in cols if c not in available]
        if missing:
            outcomes[i] = ExpectationOutcome(
                expectation=exp_type,
                column=",".join(cols),
                severity=cfg.severity,
                success=False,
                error=f"column(s) not in frame: {', '.join(missing)}",
            )
            continue
        expectation = resolve_expectation(cfg.expectation, cfg.kwargs)
        # GX may reorder results; the index in meta matches them back to their configs.
        expectation.meta = {**(expectation.meta or {}), INDEX_KEY: i}
        if is_schema:
            schema_exps.append(expectation)
        else:
            value_exps.setdefault(tuple(dict.fromkeys(cols)), []).append(expectation)

    # Column by column: pandas holds strings as Python objects, and GX's metrics copy them;
    # every referenced column at once cost ~2x the frame on a split of half a million records.
    # Expectations judging each row on its own run GX_ROWS rows at a time (counts summed).
    verdicts: dict[int, tuple[bool, dict, bool]] = {}
    for columns, group in value_exps.items():
        row_wise = [e for e in group if snake_name(type(e).__name__) in ROW_WISE]
        whole = [e for e in group if snake_name(type(e).__name__) not in ROW_WISE]
        if row_wise:
            verdicts |= _row_wise(df, list(columns), row_wise, suite_name)
        if whole:
            verdicts |= _verdicts(_validate(_value_frame(df, list(columns)), whole, suite_name))
    if schema_exps:
        verdicts |= _verdicts(_validate(_schema_frame(df), schema_exps, f"{suite_name}.schema"))
    for i, (success, result, raised) in verdicts.items():
        cfg = expectations[i]
        outcomes[i] = ExpectationOutcome(
            expectation=snake_name(cfg.expectation),
            column=",".join(_referenced(cfg.kwargs)) or None,
            severity=cfg.severity,
            success=success and not raised,
            element_count=result.get("element_count"),
            unexpected_count=result.get("unexpected_count"),
            unexpected_percent=result.get("unexpected_percent"),
            observed_value=_number(result.get("observed_value")),
            error=WITHHELD if raised else None,
        )

    ordered = [outcomes[i] for i in range(len(expectations))]
    success = all(r.success for r in ordered if r.severity == "error")
    return SuiteOutcome(suite_name=suite_name, success=success, results=ordered)
