"""The generated PII test set and the recall targets the default redactor must meet on it."""

from __future__ import annotations

import pytest

from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.stages.pii.evaluation import (
    EVAL_ENTITIES,
    TARGETS,
    evaluate,
    generate_examples,
    render_report,
)
from ftdata_pipeline.stages.redact import get_redactor


@pytest.fixture(scope="module")
def examples():
    return generate_examples(320)


@pytest.fixture(scope="module")
def evaluation(examples):
    return evaluate(get_redactor(RedactConfig()), examples)


def test_generation_is_deterministic_and_labelled(examples):
    assert generate_examples(320) == examples
    assert generate_examples(320, seed=1) != examples
    types = {span[0] for ex in examples for span in ex.spans}
    assert types == set(EVAL_ENTITIES)
    assert sum(1 for ex in examples if not ex.spans) >= 30  # negatives
    for ex in examples:
        for _, start, end in ex.spans:
            assert 0 <= start < end <= len(ex.text) and ex.text[start:end].strip()


def test_recall_targets_met(evaluation):
    assert evaluation.failures() == []
    for entity, target in TARGETS.items():
        assert evaluation.per_entity[entity].recall >= target, entity


def test_precision_on_pattern_entities(evaluation):
    for entity in ("EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"):
        assert evaluation.per_entity[entity].precision >= 0.95, entity


def test_report_renders(evaluation):
    report = render_report(evaluation, "defaults")
    assert "| PERSON |" in report and "Matching:" in report
