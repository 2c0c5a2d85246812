"""NER sentence by sentence: where texts are cut, what is read once, what stays whole.

The analyzer's entity recognizer reads each distinct sentence of a batch once per process and
places its entities back at their offsets; pattern recognizers and context words still read
the whole text. Recall against the whole-text mode on independent data is measured by
``benchmarks/pii_evaluation.py``; here the mechanics are pinned.
"""

from __future__ import annotations

import pytest

from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.stages.pii import engine
from ftdata_pipeline.stages.pii.engine import Detector
from ftdata_pipeline.stages.pii.sentence_ner import SentenceNer, sentences
from ftdata_pipeline.stages.redact import clear_memos


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi team,\nMy order is late. Please help!\n\nBest,\nLaura Wheeler",
         ["Hi team,", "My order is late.", "Please help!", "Best,", "Laura Wheeler"]),
        # a title or an initial before a period ends no sentence
        ("Ask Dr. Ng about it. Then call J. R. Smith today.",
         ["Ask Dr. Ng about it.", "Then call J. R. Smith today."]),
        # no capital after the period: one sentence (versions, decimals, "e.g. this")
        ("Use v1.2. then restart, e.g. the daemon", ["Use v1.2. then restart, e.g. the daemon"]),
        ("", []),
        ("\n\n  \n", []),
    ],
)
def test_sentences_cut_at_line_breaks_and_sentence_ends_only(text, expected):
    pieces = sentences(text)
    assert [s for _, s in pieces] == expected
    for offset, sentence in pieces:  # offsets point into the text
        assert text[offset : offset + len(sentence)] == sentence


def test_each_distinct_sentence_is_read_once_and_entities_land_at_their_offsets():
    nlp = engine.nlp_engine("en").get_nlp("en")
    ner = SentenceNer(nlp)
    sign_off = "Kind regards,\nMargaret Thompson"
    texts = [f"My router keeps dropping the line.\n{sign_off}",
             f"The invoice for March is wrong.\n{sign_off}",
             f"My router keeps dropping the line.\n{sign_off}"]
    found = ner.entities(texts, batch_size=8)
    assert ner.sentences_seen == 9
    assert ner.sentences_read == 4  # two openings, "Kind regards,", the name
    for text, ents in zip(texts, found, strict=True):
        persons = [text[a:b] for a, b, label in ents if label == "PERSON"]
        assert persons == ["Margaret Thompson"]
    # the same sentence alone gives the same entities
    alone = [(e.start_char, e.end_char, e.label_) for e in nlp("Margaret Thompson").ents]
    offset = texts[0].index("Margaret")
    assert [(a - offset, b - offset, label) for a, b, label in found[0]
            if a >= offset] == alone


def test_a_full_memo_drops_its_least_recent_sentences_without_changing_any_result():
    nlp = engine.nlp_engine("en").get_nlp("en")
    texts = [f"Please call Rebecca Fischer in Denver about order {i}.\nThanks, Tom"
             for i in range(12)]
    roomy = SentenceNer(nlp).entities(texts, batch_size=4)
    tight = SentenceNer(nlp, memo_chars=70)
    assert [tight.entities([t], batch_size=4)[0] for t in texts] == roomy
    assert sum(map(len, tight.memo)) <= 70
    assert "Thanks, Tom" in tight.memo  # used by every text: never the least recent
    assert tight.sentences_read == 13  # each order sentence, the sign-off once
    clear_memos()  # benchmarks compare runs from an empty memo
    assert not tight.memo
    assert tight.entities(texts[:1], batch_size=4) == roomy[:1]


def test_detection_reads_sentences_but_context_words_reach_across_lines():
    """A context word on the line before a value still raises its score: the pattern
    recognizers and the context enhancer read the whole text."""
    detector = Detector(RedactConfig(workers=1))
    with_word, without = (f"Account holder: Priya Raman\n{line}:\n536-90-4399"
                          for line in ("Social security number", "Reference"))
    scores = []
    for text in (with_word, without):
        spans = detector.spans([text])[0]
        assert [(text[a:b], kind) for kind, a, b, _ in spans] == [
            ("Priya Raman", "PERSON"), ("536-90-4399", "US_SSN")]
        scores.append(spans[1][3])
    assert scores[0] > scores[1]  # "security" two lines up counted
    whole = Detector(RedactConfig(workers=1, ner_scope="text"))
    assert not hasattr(whole.analyzer.nlp_engine, "_sentence_ner")
    # the same context score either way; read whole, the model runs the name into the next
    # line ("Priya Raman\nSocial"), read by line it does not
    by_text = whole.spans([with_word])[0]
    assert by_text[1] == detector.spans([with_word])[0][1]
    assert with_word[by_text[0][1] : by_text[0][2]] == "Priya Raman\nSocial"
    ner = detector.analyzer.nlp_engine._sentence_ner["en"]
    assert "Account holder: Priya Raman" in ner.memo
