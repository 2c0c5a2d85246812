"""Detection quality on data the project did not write: presidio-evaluator's generator and a
negative set of real package documentation. A small sample of each; the benchmark
(benchmarks/pii_evaluation.py) runs the full sets beside plain Presidio."""

from __future__ import annotations

import re

import pytest

from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.stages.pii import independent_eval as ie
from ftdata_pipeline.stages.redact import get_redactor

SAMPLE = 500
NEGATIVES = 300


@pytest.fixture(scope="module")
def redactor():
    return get_redactor(RedactConfig())


@pytest.fixture(scope="module")
def positives():
    return ie.presidio_evaluator_examples(SAMPLE, seed=ie.SEED + 1)  # not the benchmark's seed


@pytest.fixture(scope="module")
def scores(redactor, positives):
    redacted, spans = redactor.redact_texts([ex.text for ex in positives])
    return ie.score(positives, spans, redacted)


@pytest.fixture(scope="module")
def negatives():
    return ie.negative_examples(NEGATIVES, seed=ie.SEED + 1)


def test_generator_sample_is_deterministic_and_labelled(positives):
    again = ie.presidio_evaluator_examples(SAMPLE, seed=ie.SEED + 1)
    # the generator's DATE_TIME values follow the clock (an ignored type): compare the rest
    def masked(exs):
        return [(re.sub(r"\d", "0", ex.text), ex.spans) for ex in exs]

    assert masked(again) == masked(positives)
    types = {t for ex in positives for t, *_ in ex.spans}
    assert {"PERSON", "STREET_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD"} <= types
    for ex in positives:
        assert "\\n" not in ex.text  # the templates' literal \n became line breaks
        for _, start, end in ex.spans:
            assert 0 <= start < end <= len(ex.text)


def test_targets_on_presidio_evaluator_sample(scores):
    assert scores.failures() == []
    assert scores.recall(ie.PATTERN_ENTITIES) >= ie.TARGETS["pattern_recall"]
    assert scores.per_type["PERSON"].recall >= ie.TARGETS["PERSON"]
    assert scores.per_type["STREET_ADDRESS"].recall >= ie.TARGETS["STREET_ADDRESS"]
    # what an attacker reads: pattern values (and their digits) gone from the output
    assert scores.leak_free(ie.PATTERN_ENTITIES) >= 0.98


def test_targets_on_negative_sample(redactor, negatives):
    assert any("```" in t or "    " in t for t in negatives)  # real code is in the set
    _, spans = redactor.redact_texts(negatives)
    neg = ie.score_negative(negatives, spans)
    assert neg.failures() == []
    assert neg.words_kept_share >= ie.TARGETS["negative_words_kept"]
    assert neg.untouched_share >= ie.TARGETS["negative_records_untouched"]


def test_scoring_counts_leaks_and_ignores_unscored_types():
    ex = ie.Example(
        "Call Jan Novak on 0612 345 67 89 at Acme Corp.",
        (("PERSON", 5, 14), ("PHONE_NUMBER", 18, 32), (ie.IGNORED, 36, 45)),
    )
    text = ex.text
    # the name is found but only half replaced; the phone's digits survive reformatted
    spans = [[("PERSON", 5, 8, 0.9), ("ORGANIZATION", 36, 45, 0.9)]]
    redacted = ["Call <PERSON> Novak on 06-12-34-56-789 at <ORGANIZATION>."]
    sc = ie.score([ex], spans, redacted)
    assert sc.per_type["PERSON"].recall == 1.0 and sc.per_type["PERSON"].leaked == 1
    assert sc.per_type["PHONE_NUMBER"].recall == 0.0 and sc.per_type["PHONE_NUMBER"].leaked == 1
    assert "ORGANIZATION" not in sc.per_type  # an ignored gold type: not a false positive
    assert ie.leaked(text, 5, 14, "Call <PERSON> on <PHONE_NUMBER>") is False


def test_negative_scoring_counts_words_and_records():
    texts = ["Deploy to eu-central-1 now", "plain words here"]
    spans = [[("LOCATION", 10, 22, 0.8)], []]
    neg = ie.score_negative(texts, spans)
    assert (neg.words, neg.words_kept, neg.records, neg.untouched) == (7, 6, 2, 1)
    assert neg.placeholders == {"LOCATION": 1}
