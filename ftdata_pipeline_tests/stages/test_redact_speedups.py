"""Shortcuts in detection that must find exactly what the plain route finds.

Each shortcut (numpy's BLAS for the NER's products, one BLAS thread per detecting process, a
bisection for Presidio's token lookup, a set behind the keyword list, one word scan for name
propagation) is compared with the route it replaced, on text the project did not write
(presidio-evaluator's sentences, the installed packages' long descriptions) as well as its own.
"""

from __future__ import annotations

import contextlib
import re

import pytest
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer import RecognizerResult
from thinc.api import NumpyOps
from threadpoolctl import threadpool_info

from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.stages.pii import engine, independent_eval, sentence_ner
from ftdata_pipeline.stages.pii.engine import (
    ContextEnhancer,
    Detector,
    multiply_with,
    nlp_engine,
)
from ftdata_pipeline.stages.pii.evaluation import generate_examples
from ftdata_pipeline.stages.pii.refine import _propagate


@pytest.fixture(scope="module")
def independent_texts() -> list[str]:
    texts = [ex.text for ex in independent_eval.presidio_evaluator_examples(150)]
    texts += independent_eval.package_text_blocks()[:150]
    texts += [ex.text for ex in generate_examples(50, seed=5)]
    return [t for t in dict.fromkeys(texts) if t.strip()]


def _ner_nodes():
    return list(nlp_engine("en").get_nlp("en").get_pipe("ner").model.walk())


@contextlib.contextmanager
def _blis():
    """The NER on thinc's default BLIS for the block, then back on the stage's ops."""
    nlp = nlp_engine("en").get_nlp("en")
    stage_ops = _ner_nodes()[0].ops
    multiply_with(nlp, NumpyOps(use_blis=True))
    try:
        yield
    finally:
        multiply_with(nlp, stage_ops)


def _entities(nlp, texts):
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


def test_ner_multiplies_with_numpy_and_finds_what_blis_finds(independent_texts):
    nodes = _ner_nodes()
    assert nodes and all(isinstance(n.ops, NumpyOps) and not n.ops.use_blis for n in nodes)
    nlp = nlp_engine("en").get_nlp("en")
    sentences = list(dict.fromkeys(s for t in independent_texts for _, s in
                                   sentence_ner.sentences(t)))
    with_numpy = _entities(nlp, sentences)
    with _blis():
        with_blis = _entities(nlp, sentences)
    assert sum(map(len, with_numpy)) > 100  # the sample holds entities to compare
    assert with_numpy == with_blis


def _blas_threads() -> list[int]:
    """Threads of numpy's BLAS, the one thinc's numpy ops multiply with (scipy, loaded by
    other stages, brings its own OpenBLAS, which detection does not use)."""
    return [i["num_threads"] for i in threadpool_info()
            if i["user_api"] == "blas" and "numpy" in i["filepath"]]


def test_detection_runs_with_one_blas_thread(monkeypatch):
    """One detecting process per core: BLAS threads on top would share the cores."""
    seen: list[list[int]] = []
    entities = sentence_ner.SentenceNer.entities

    def spy(self, texts, batch_size):
        seen.append(_blas_threads())
        return entities(self, texts, batch_size)

    monkeypatch.setattr(sentence_ner.SentenceNer, "entities", spy)
    sentence_ner.clear_all()
    before = _blas_threads()
    Detector(RedactConfig(workers=1)).spans(["Hi Jan Novak, call me on 020 7946 0958."])
    assert seen == [[1] * len(before)] and before
    # the limit is lifted after detection: other work in the process keeps its threads
    assert _blas_threads() == before


def _artifacts(text: str) -> NlpArtifacts:
    return nlp_engine("en").process_text(text, "en")


def test_token_lookup_is_presidios_walk(independent_texts):
    """Every offset of every text, word starts, insides, blanks and the end: the bisection
    returns Presidio's token or raises where Presidio raises."""
    checked = raised = 0
    for text in independent_texts[:120] + ["", "   ", "x", "  padded  text  "]:
        art = _artifacts(text)
        for start in range(len(text) + 2):
            args = ("w", start, art.tokens, art.tokens_indices)
            try:
                want = LemmaContextAwareEnhancer._find_index_of_match_token(*args)
            except ValueError:
                with pytest.raises(ValueError):
                    ContextEnhancer._find_index_of_match_token(*args)
                raised += 1
                continue
            assert ContextEnhancer._find_index_of_match_token(*args) == want, (text, start)
            checked += 1
    assert checked > 10_000 and raised > 100


def test_keywords_answer_membership_like_the_list(independent_texts):
    for text in independent_texts[:60]:
        art = _artifacts(text)
        plain = NlpArtifacts.set_keywords(art.nlp_engine, art.lemmas, "en")
        assert list(art.keywords) == plain
        for word in {*art.lemmas, *(w.lower() for w in art.lemmas), "", "zzz-not-a-word"}:
            assert (word in art.keywords) == (word in plain)


def _propagated_by_pattern(text: str, people: list[RecognizerResult], words: list[str]):
    """The former route: one pattern compiled for the text's names."""
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(words))) + r")\b", re.I)
    covered = [(r.start, r.end) for r in people]
    return [
        (m.start(), m.end()) for m in pattern.finditer(text)
        if not any(a <= m.start() and m.end() <= b for a, b in covered)
    ]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Lina Okafor wrote. okafor said OKAFOR_x and Okafor2 and Okafor. (Okafor)", "Lina Okafor"),
        ("Kateřina Dvořáková called; KATEŘINA will call back, dvořákové not.", "Kateřina Dvořáková"),
        ("Zoë Kowalczyk: ask zoë or Kowalczyk-Smith, not Kowalczyks.", "Zoë Kowalczyk"),
    ],
)
def test_name_propagation_finds_what_a_whole_word_pattern_finds(text, name):
    start = text.index(name)
    person = RecognizerResult("PERSON", start, start + len(name), 0.85, None,
                              {"recognizer_name": "SpacyRecognizer"})
    found = [(r.start, r.end) for r in _propagate(text, [person])]
    words = [w for w in re.findall(r"[^\W\d_]{3,}", name)]
    assert found == _propagated_by_pattern(text, [person], words)
    assert found  # each case has other occurrences to find


def test_detector_is_unchanged_by_the_shortcuts_on_independent_text(independent_texts):
    """The whole detector with every shortcut against the same detector with the replaced
    routes put back (BLIS, Presidio's token walk, a plain keyword list)."""
    cfg = RedactConfig(workers=1)
    fast = Detector(cfg).spans(independent_texts)
    saved = (ContextEnhancer.__dict__["_find_index_of_match_token"], engine._Keywords)
    with _blis():
        try:
            ContextEnhancer._find_index_of_match_token = staticmethod(
                LemmaContextAwareEnhancer._find_index_of_match_token)
            engine._Keywords = list
            sentence_ner.clear_all()
            slow = Detector(cfg).spans(independent_texts)
        finally:
            ContextEnhancer._find_index_of_match_token, engine._Keywords = saved
            sentence_ner.clear_all()
    assert sum(map(len, fast)) > 200
    assert fast == slow
