"""Filters measured on real text the project did not write: bounds on a sample of the corpus.

The full figures are in benchmarks/results/curation_filters.md (the benchmark script produces
them); these bounds sit just above them, so a filter that starts misfiring fails here.
"""

from __future__ import annotations

import polars as pl
import pytest

from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.stages.curate import curate
from ftdata_pipeline.stages.curation.regression_corpus import (
    BENIGN_TRIGGERS,
    false_positive_rate,
    measure_filters,
    package_descriptions,
    paragraphs,
    python_blocks,
    records,
)

FILTERS_ONLY = {"near_dedup": {"enabled": False}, "dedup": "none"}


@pytest.fixture(scope="module")
def docs() -> list[str]:
    texts = [t for _, t in package_descriptions()]
    assert len(texts) >= 30, "the locked environment has dozens of Markdown READMEs"
    return texts


def test_short_prose_false_positive_rate(docs):
    sample = paragraphs(docs)[::2]
    assert len(sample) >= 300
    measured = measure_filters(sample, FILTERS_ONLY, "para")
    assert false_positive_rate(measured) <= 0.025, measured["drops"]


def test_code_answers_are_not_dropped_by_prose_rules(docs):
    answers = [f"Here is how to do it:\n\n```python\n{b}```" for t in docs for b in python_blocks(t)]
    measured = measure_filters(answers[:150], FILTERS_ONLY, "code")
    assert false_positive_rate(measured) == 0, measured["drops"]
    # the same texts with the rules reading code as prose: the reason for the prose view
    from ftdata_pipeline.stages import curate as curate_module
    from ftdata_pipeline.stages.curation.views import ALL, PROSE

    original = curate_module.add_prose
    curate_module.add_prose = lambda df, all_is_code=False: df.with_columns(pl.col(ALL).alias(PROSE))
    try:
        whole = measure_filters(answers[:150], FILTERS_ONLY, "code")
    finally:
        curate_module.add_prose = original
    assert false_positive_rate(whole) > 0


def test_whole_readmes_false_positive_rate(docs):
    measured = measure_filters(docs[:60], FILTERS_ONLY, "doc")
    assert false_positive_rate(measured) <= 0.12, measured["drops"]


def test_language_never_drops_an_allowed_best_language(docs):
    sample = paragraphs(docs)
    recipe = RecipeConfig(name="r", kind="pretraining", sources=["p"],
                          exports={"formats": ["trl_text"]}, curate=FILTERS_ONLY)
    result = curate(records(sample, "p").lazy(), recipe)
    lang = result.rejected.filter(pl.col("rule") == "language_not_allowed")
    assert "lang=en" not in lang["detail"].to_list()
    assert lang.height <= 0.005 * len(sample)
    # weak guesses of another language are kept, with no verdict
    weak = result.kept.filter((pl.col("q_lang") != "en") & pl.col("q_lang").is_not_null())
    assert weak["q_lang_allowed"].null_count() == weak.height


def test_benign_texts_that_trip_the_harm_model_are_flagged_not_dropped():
    texts = [f"{t}. Thanks for the answer, that helps." for t in BENIGN_TRIGGERS]
    recipe = RecipeConfig(name="r", kind="pretraining", sources=["b"],
                          exports={"formats": ["trl_text"]},
                          curate={**FILTERS_ONLY, "language": {"enabled": False}})
    result = curate(records(texts, "b").lazy(), recipe)
    assert result.kept.height == len(texts)
    assert result.stats["harmful_flagged"] >= 2  # the model does score them as harmful
