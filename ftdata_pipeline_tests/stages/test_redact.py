"""Tests of the redacted stage (Presidio) and the residual PII scan."""

from __future__ import annotations

import polars as pl
import pytest
from presidio_analyzer.predefined_recognizers import NhsRecognizer

from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.records import MESSAGE, conform
from ftdata_pipeline.stages.redact import (
    RESIDUAL_TYPES,
    PiiRedactor,
    get_redactor,
    redact,
    residual_pii_counts,
)

EMAIL = "jane.doe@example.com"
PHONE = "(212) 555-0143"
CARD = "4111 1111 1111 1111"  # Luhn-valid test Visa
SSN = "536-22-8415"
IBAN = "GB82 WEST 1234 5698 7654 32"  # the standard valid example IBAN
IP = "192.168.10.20"
# A phone-like number that passes the NHS checksum (the trap the UK_NHS recognizer falls into).
NHS_VALID_PHONE = "415 555 0016"

PLANTED = [EMAIL, PHONE, CARD, SSN, IBAN, IP, "John Smith", "Maria Garcia"]


def _frame() -> pl.DataFrame:
    rows = {
        "record_id": ["r1", "r2", "r3", "r4"],
        "source": ["s"] * 4,
        "source_key": ["1", "2", "3", "4"],
        "text": [
            f"My name is John Smith, email {EMAIL}.",
            "Translate this sentence today, please.",
            None,
            "",
        ],
        "prompt": [None, f"Call me on {PHONE} about card {CARD}.", None, None],
        "response": [None, f"Your SSN {SSN} is on file.", None, None],
        "messages": [
            None,
            None,
            [
                {"role": "user", "content": "Hi, I'm Maria Garcia."},
                {"role": "assistant", "content": "How can I help?"},
                {"role": "user", "content": f"Refund to {IBAN} please, from {IP}."},
                {"role": "assistant", "content": None},
            ],
            [],
        ],
    }
    return conform(
        pl.DataFrame(rows, schema_overrides={"messages": pl.List(MESSAGE)})
    )


def _all_text(df: pl.DataFrame) -> str:
    """Every string in the frame, joined, for "is this value anywhere" assertions."""
    return str(df.to_dicts())


@pytest.fixture(scope="module")
def cfg() -> RedactConfig:
    return RedactConfig()


@pytest.fixture(scope="module")
def redactor(cfg) -> PiiRedactor:
    return get_redactor(cfg)


@pytest.fixture(scope="module")
def result(cfg, redactor):
    return redact(_frame().lazy(), cfg, redactor)


def test_planted_values_are_replaced_everywhere(result):
    text = _all_text(result.kept)
    for value in PLANTED:
        assert value not in text, value
    kept = result.kept
    assert kept["text"][0] == "My name is <PERSON>, email <EMAIL_ADDRESS>."
    assert kept["prompt"][1] == "Call me on <PHONE_NUMBER> about card <CREDIT_CARD>."
    assert kept["response"][1] == "Your SSN <US_SSN> is on file."
    turns = kept["messages"][2].to_list()
    assert turns[0] == {"role": "user", "content": "Hi, I'm <PERSON>."}
    assert turns[1] == {"role": "assistant", "content": "How can I help?"}
    assert turns[2]["content"] == "Refund to <IBAN_CODE> please, from <IP_ADDRESS>."
    assert turns[3] == {"role": "assistant", "content": None}


def test_ordinary_words_untouched(result):
    assert result.kept["text"][1] == "Translate this sentence today, please."


def test_shape_nulls_and_accounting(result):
    original = _frame()
    kept = result.kept
    assert kept.columns == [*original.columns, "pii_entities"]
    assert kept.drop("pii_entities").schema == original.schema
    assert kept["record_id"].to_list() == original["record_id"].to_list()
    assert kept["text"][2] is None and kept["text"][3] == ""
    assert kept["messages"][0] is None and kept["messages"][3].to_list() == []
    assert result.rows_in == 4 and result.rows_rejected == 0
    assert result.rows_in == result.rows_kept + result.rows_rejected
    assert {"stage", "rule", "score", "detail"} <= set(result.rejected.columns)


def test_entity_counts(result):
    assert result.kept["pii_entities"].dtype == pl.Int32
    assert result.kept["pii_entities"].to_list() == [2, 3, 3, 0]
    assert result.stats == {
        "texts_scanned": 7,  # empty strings, null texts and null contents are not scanned
        "entities": {
            "CREDIT_CARD": 1,
            "EMAIL_ADDRESS": 1,
            "IBAN_CODE": 1,
            "IP_ADDRESS": 1,
            "PERSON": 2,
            "PHONE_NUMBER": 1,
            "US_SSN": 1,
        },
        "operators": {
            e: f"placeholder <{e}>"
            for e in ("CREDIT_CARD", "EMAIL_ADDRESS", "IBAN_CODE", "IP_ADDRESS", "PERSON",
                      "PHONE_NUMBER", "US_SSN")
        },
        "records_with_pii": 3,
        "evaluation": result.stats["evaluation"],
    }
    assert result.stats["evaluation"]["status"] in ("measured", "not evaluated")
    stats_text = str(result.stats)
    assert not any(value in stats_text for value in PLANTED)


def test_deterministic(cfg, redactor, result):
    again = redact(_frame().lazy(), cfg, redactor)
    assert again.kept.equals(result.kept)
    assert again.stats == result.stats


def test_overlapping_url_and_email_resolved(redactor):
    text = "Visit https://john.smith@example.com/path today"
    results = redactor.analyze([text])[0]
    types = {r.entity_type for r in results}
    assert {"URL", "EMAIL_ADDRESS"} <= types  # the detections really overlap
    (redacted,), (spans,) = redactor.redact_texts([text])
    assert "<EMAIL_ADDRESS>" in redacted
    for fragment in ("john", "smith", "example", "path"):
        assert fragment not in redacted
    assert redacted.endswith(" today")
    ordered = sorted((start, end) for _, start, end, _ in spans)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(ordered, ordered[1:]))
    assert all(text[start:end] for _, start, end, _ in spans)


def test_redact_texts_spans_point_into_original(redactor):
    texts = [f"Write to {EMAIL} now", "nothing here"]
    redacted, spans = redactor.redact_texts(texts)
    assert redacted == ["Write to <EMAIL_ADDRESS> now", "nothing here"]
    ((etype, start, end, score),) = spans[0]
    assert (etype, texts[0][start:end]) == ("EMAIL_ADDRESS", EMAIL)
    assert score == pytest.approx(1.0)
    assert spans[1] == []


def test_uk_nhs_does_not_fire_on_phone_like_number():
    text = f"My number is {NHS_VALID_PHONE}."
    # The number really is NHS-checksum valid: the built-in recognizer would tag it.
    assert NhsRecognizer().analyze(text, ["UK_NHS"])
    with_nhs = get_redactor(RedactConfig(entities=["UK_NHS", "PHONE_NUMBER"]))
    found = [r.entity_type for r in with_nhs.analyze([text])[0]]
    assert "UK_NHS" not in found
    assert "PHONE_NUMBER" in found


def test_get_redactor_cached_per_config(cfg, redactor):
    assert get_redactor(RedactConfig()) is redactor
    assert get_redactor(RedactConfig(placeholder="[{entity}]")) is not redactor


def test_placeholder_format(cfg):
    other = get_redactor(RedactConfig(placeholder="[{entity}]"))
    assert other.redact_texts([f"mail {EMAIL}"])[0] == ["mail [EMAIL_ADDRESS]"]


def test_residual_counts_planted_then_zero(result):
    before = residual_pii_counts(_frame())
    assert before == {
        "CREDIT_CARD": 1,
        "EMAIL_ADDRESS": 1,
        "IBAN_CODE": 1,
        "IP_ADDRESS": 1,
        "PHONE_NUMBER": 1,
        "STREET_ADDRESS": 0,
        "US_SSN": 1,
    }
    assert residual_pii_counts(result.kept) == dict.fromkeys(RESIDUAL_TYPES, 0)


def test_residual_ignores_placeholders_and_invalid_numbers():
    df = pl.DataFrame(
        {
            "text": [
                "<EMAIL_ADDRESS> <PHONE_NUMBER> <CREDIT_CARD> <US_SSN> <IBAN_CODE> <IP_ADDRESS>",
                "card 4111 1111 1111 1112 fails Luhn",
                "IBAN GB82 WEST 1234 5698 7654 33 fails mod 97",
                "SSN 000-12-3456 and 123-45-6789 are never real; version 1.2.3 is no IP; 555-0143",
            ]
        }
    )
    assert residual_pii_counts(df) == dict.fromkeys(RESIDUAL_TYPES, 0)


def test_residual_layouts():
    df = pl.DataFrame(
        {
            "text": [
                "+1-791-492-2001x192 and 415.555.0143 and +44 20 7946 0958",
                "5555555555554444 then 3782 822463 10005",  # Mastercard, Amex (4-6-5)
            ],
            "messages": [[{"role": "user", "content": "ip 10.0.0.1, mail a.b@c.io"}], None],
        },
        schema_overrides={"messages": pl.List(MESSAGE)},
    )
    counts = residual_pii_counts(df)
    assert counts["PHONE_NUMBER"] == 3
    assert counts["CREDIT_CARD"] == 2
    assert counts["IP_ADDRESS"] == 1
    assert counts["EMAIL_ADDRESS"] == 1


def test_spacy_org_labels_ignored():
    # spaCy's sm model tags ORG freely ("Translate", product names); the shipped Presidio NER
    # configuration ignores ORG, so even a config asking for ORGANIZATION gets nothing from NER.
    text = "I work at Microsoft in the sales team."
    org = get_redactor(RedactConfig(entities=["ORGANIZATION", "PERSON"]))
    assert org.redact_texts([text]) == ([text], [[]])


def test_phone_layouts_libphonenumber_rejects_are_still_redacted(redactor):
    texts = [
        "Call me at +1-791-492-2001x192 please.",  # unassigned area code, extension
        "My mobile number is +49(0)0814 22125 today.",
        "Ring +441154960486 after lunch.",
        "Version +1.2 and score +12 are not phones.",
    ]
    redacted, _ = redactor.redact_texts(texts)
    assert redacted[:3] == [
        "Call me at <PHONE_NUMBER> please.",
        "My mobile number is <PHONE_NUMBER> today.",
        "Ring <PHONE_NUMBER> after lunch.",
    ]
    assert redacted[3] == texts[3]
    assert residual_pii_counts(pl.DataFrame({"text": redacted}))["PHONE_NUMBER"] == 0


def test_allow_list_keeps_terms():
    text = "I updated Firefox, ask Maria Garcia."
    plain = get_redactor(RedactConfig(entities=["PERSON"]))
    allowed = get_redactor(RedactConfig(entities=["PERSON"], allow_list=["Firefox"]))
    # the sm model calls "Firefox" a PERSON; the tech vocabulary keeps it even without a list
    assert plain.redact_texts([text])[0] == ["I updated Firefox, ask <PERSON>."]
    assert allowed.redact_texts([text])[0] == ["I updated Firefox, ask <PERSON>."]
    product = "Ask Maria Garcia about the invoice."
    listed = get_redactor(RedactConfig(entities=["PERSON"], allow_list=["Maria Garcia"]))
    assert listed.redact_texts([product])[0] == [product]
