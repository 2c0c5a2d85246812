"""The project's recognizers and refinement rules, one class of input each: national phone
layouts, card brands, whole names, addresses, dates of birth, code, nested JSON, long texts."""

from __future__ import annotations

import polars as pl
import pytest

from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.stages.pii.recognizers import card_brand_ok, luhn_ok
from ftdata_pipeline.stages.pii.segments import MAX_PIECE_CHARS, split_texts
from ftdata_pipeline.stages.redact import get_redactor, redact, residual_pii_counts


@pytest.fixture(scope="module")
def red():
    return get_redactor(RedactConfig())


def _one(red, text: str) -> str:
    return red.redact_texts([text])[0][0]


@pytest.mark.parametrize(
    "number",
    [
        "0612 345 67 89",  # NL mobile, national
        "06 12 34 56 78",  # FR
        "030 901820",  # DE Berlin
        "020 7946 0958",  # UK London
        "07700 900123",  # UK mobile
        "(212) 555-0143",  # US
        "+1 212 555 0143",
        "+44 20 7946 0958",
        "+49 (0)30 901820",
        "(11) 3456-7890",  # BR São Paulo
        "55 1234 5678",  # MX
        "98765 43210",  # IN mobile
        "+91 98765 43210",
        "03-1234-5678",  # JP Tokyo
        "010-1234-5678",  # KR mobile
        "9615 9032",  # 8 digits (HK/SG layout)
        "431 51 143",
    ],
)
def test_national_phone_layouts_after_a_context_word(red, number):
    out = _one(red, f"Phone: {number}. Please call me back.")
    assert number not in out and "<PHONE_NUMBER>" in out, out


@pytest.mark.parametrize(
    ("text", "number", "phone"),
    [
        # no numbering plan validates these ('00' is no country code here), a phone word
        # names them: redacted
        ("My mobile number is 0001480591 if that's easier.", "0001480591", True),
        ("whatsapp: 0024462704", "0024462704", True),
        ("Call me on 0024462704 tomorrow", "0024462704", True),
        # the same digits after words that name any number: ids, kept
        ("Order number 0001480591 was never shipped.", "0001480591", False),
        ("Ticket no. 00024462704 is still open", "00024462704", False),
        ("the call 0001480591 returned an error", "0001480591", False),
    ],
)
def test_bare_digit_runs_are_phones_only_after_a_phone_word(red, text, number, phone):
    out = _one(red, text)
    assert (number not in out and "<PHONE_NUMBER>" in out) if phone else out == text, out


@pytest.mark.parametrize(
    "text",
    [
        "Logged at 19:29:05.147508 by the worker",
        "Released 2024-05-01 as version 10.2.3.4",
        "Order total 1,249.99 for 12 seats",
        "Request took 1234567 microseconds",
        "Build 20240501.3 passed",
    ],
)
def test_timestamps_versions_and_amounts_are_not_phones(red, text):
    assert "<PHONE_NUMBER>" not in _one(red, text)


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",  # Visa 16
        "4222222222222",  # Visa 13
        "5555 5555 5555 4444",  # Mastercard
        "2223 0031 2200 3222",  # Mastercard 2-series
        "3782 822463 10005",  # Amex 4-6-5
        "6011 1111 1111 1117",  # Discover
        "3530 1113 3330 0000",  # JCB
        "3056 9309 0259 04",  # Diners 14
        "6759 6498 2643 8453",  # Maestro 16
        "6304 0000 0000 0000 00",  # Maestro 18
        "6200 0000 0000 0005",  # UnionPay
        "4000 0000 0000 0000 006",  # Visa 19
    ],
)
def test_every_card_brand_with_luhn(red, card):
    assert luhn_ok(card)
    out = _one(red, f"Please refund to {card} today.")
    assert card not in out and "<CREDIT_CARD>" in out, out


def test_twelve_digit_maestro_needs_card_context(red):
    number = "501234567896"  # Luhn-valid, 12 digits
    assert luhn_ok(number) and card_brand_ok(number)
    assert "<CREDIT_CARD>" in _one(red, f"Charge my Maestro card {number} please")
    # a Luhn-invalid neighbour is no card
    assert "<CREDIT_CARD>" not in _one(red, "Charge my card 501234567893 please")


@pytest.mark.parametrize(
    "text,name",
    [
        ("Lina Okafor wrote to us yesterday about the delay.", "Okafor"),
        ("Name: Jan Novák\nIssue: cannot log in", "Novák"),
        ("Customer: Jan Novák", "Jan"),
        ("User: Jan Novák", "Novák"),
        ("Please follow up with Sigrún Pálsdóttir about the refund.", "Pálsdóttir"),
        ("Thanks for the help.\n\nBest regards,\nTyler Lynch", "Lynch"),
        ("hi maria, the export works now", "maria"),
        ("Dear Eddie Beasley, your refund is on its way.", "Beasley"),
        ("Kind regards,\nLeigha C Mackay\nSupport lead", "Mackay"),
    ],
)
def test_whole_names_in_field_chat_and_signature_positions(red, text, name):
    out = _one(red, text)
    assert name not in out and "<PERSON>" in out, out


def test_a_name_never_keeps_a_neighbouring_token(red):
    out = _one(red, "I spoke with Nomvula Okafor and later Okafor called again.")
    assert "Okafor" not in out and "Nomvula" not in out, out


@pytest.mark.parametrize(
    "text",
    [
        "Broken on arrival",
        "Switch to annual billing",
        "Update payment method",
        "Deploy to eu-central-1 with Python, GraphQL and Linux on AI hardware",
        "await asyncio.sleep(1); return self.items",
        "Call `requests.get(url)` and then df.groupby(key).agg(total)",
        "Set user_name and config.max_retries in settings.py",
    ],
)
def test_subject_lines_tech_vocabulary_and_code_untouched(red, text):
    assert _one(red, text) == text


def test_pii_inside_code_and_logs_is_still_redacted(red):
    text = (
        "```python\n# ask Jan Novák before merging\nuser = load_user(user_id)\n"
        'payload = {"name": "Maria Garcia"}\nprint(self.items)\n```\n'
        "2026-01-05T10:00:00Z ERROR login failed for jan.novak@example.com"
    )
    out = _one(red, text)
    for value in ("Novák", "Maria Garcia", "jan.novak@example.com"):
        assert value not in out, out
    for code in ("load_user(user_id)", "print(self.items)", "user ="):
        assert code in out, out


def test_urls_need_a_scheme_or_a_real_domain(red):
    out = _one(red, "Docs at https://docs.example.com/x and example.org; see self.items")
    assert out == "Docs at <URL> and <URL>; see self.items"


@pytest.mark.parametrize(
    "address",
    [
        "676 Maple Landing Suite 954",
        "22 Pollen Crescent",
        "1600 Pennsylvania Avenue NW",
        "Via Pasquale Scura 127",
        "12 rue de la Paix",
        "Calle Mayor, 5",
        "Hauptstraße 5",
        "Kerkstraat 12a",
        "Rua Augusta 274",
        "PO Box 1234",
        "Postfach 10 20",
    ],
)
def test_street_addresses(red, address):
    out = _one(red, f"Please ship it to {address} as soon as possible.")
    assert address not in out and "<STREET_ADDRESS>" in out, out


def test_address_block_with_city_and_postcode(red):
    text = "Helena Carlsen\n\n637 Strojírenská 1006\n Suite 026\n Svratka\n Czech Republic 45098"
    out = _one(red, text)
    for value in ("637", "Strojírenská", "026", "Svratka", "45098", "Helena", "Carlsen"):
        assert value not in out, out


def test_labelled_date_of_birth(red):
    out = _one(red, "DOB: 04/07/1986, born on 3 May 1990. Order placed 2024-05-01.")
    assert out.count("<DATE_OF_BIRTH>") == 2 and "2024-05-01" in out, out


def test_json_object_in_a_text_field_is_scanned_value_by_value(red):
    text = '{"customer": {"name": "Jan Novák", "phone": "0612 345 67 89"}, "items": [1, 2]}'
    out = _one(red, text)
    assert "Novák" not in out and "345 67 89" not in out, out
    assert out.startswith('{"customer": {"name": "') and '"items": [1, 2]}' in out


def test_long_texts_are_split_for_ner_and_offsets_hold(red):
    filler = ("The sync client uploads files in the background. " * 400 + "\n")
    text = filler * 6 + "Contact Jan Novák at jan.novak@example.com\n" + filler
    assert len(text) > 1_000_000 // 8 and len(text) > MAX_PIECE_CHARS
    pieces = split_texts([text])
    assert len(pieces) > 1 and "".join(p.text for p in pieces) == text
    out = _one(red, text)
    assert "jan.novak@example.com" not in out and "Novák" not in out
    assert len(out) < len(text) and out.count("The sync client") == text.count("The sync client")


def test_text_over_spacy_limit_does_not_fail(red):
    text = ("word " * 220_000) + "mail jan.novak@example.com"  # 1.1 million characters
    out = _one(red, text)
    assert out.endswith("mail <EMAIL_ADDRESS>")


def test_residual_scan_finds_addresses():
    df = pl.DataFrame({"text": ["Send it to 676 Maple Landing Suite 954 please",
                                "Hauptstraße 5, PO Box 1234", "<STREET_ADDRESS> ok",
                                "Version 2 Release Notes", "HTTP 502 Bad Gateway",
                                "got a 504 Gateway Timeout from 12 Harbor Gateway"]})
    assert residual_pii_counts(df)["STREET_ADDRESS"] == 4


def test_contains_pii_false_source_is_scanned_not_redacted(red):
    cfg = RedactConfig()
    df = pl.DataFrame({
        "record_id": ["a", "b"],
        "source": ["docs", "tickets"],
        "text": ["Ask Jan Novák at jan.novak@example.com", "Ask Jan Novák at jan@example.com"],
    })
    result = redact(df.lazy(), cfg, red, scan_only_sources=frozenset({"docs"}))
    kept = result.kept["text"].to_list()
    assert kept[0] == df["text"][0]  # declared free of PII: left as is
    assert "jan@example.com" not in kept[1]
    assert result.stats["undeclared_pii"]["docs"]["EMAIL_ADDRESS"] == 1
    assert "docs" in result.stats["warnings"][0] and "contains_pii: false" in result.stats[
        "warnings"][0]
    assert "jan.novak" not in str(result.stats)  # counts only, never values


def test_operators_reported_per_entity(red):
    cfg = RedactConfig(operators={"CREDIT_CARD": {"type": "mask", "chars_to_keep": 4}})
    df = pl.DataFrame({"record_id": ["a"], "text": ["card 4111 1111 1111 1111, ask Jan Novák"]})
    result = redact(df.lazy(), cfg, get_redactor(cfg))
    assert result.stats["operators"]["CREDIT_CARD"].startswith("mask")
    assert result.stats["operators"]["PERSON"] == "placeholder <PERSON>"
    assert result.kept["text"][0].startswith("card ***************1111")


def test_presidio_recognizers_skip_only_texts_they_cannot_match():
    """A Presidio recognizer is skipped on a text its gate rejects: the gate must hold for
    every text the recognizer matches (URLs, IPv4 and every IPv6 layout, e-mails, IBANs,
    SSNs from presidio-evaluator's generator), and reject ordinary prose."""
    from presidio_analyzer.predefined_recognizers import (
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        UrlRecognizer,
        UsSsnRecognizer,
    )

    from ftdata_pipeline.stages.pii.engine import _PRESIDIO_NEEDS, _offline_tldextract
    from ftdata_pipeline.stages.pii.independent_eval import presidio_evaluator_examples

    _offline_tldextract()

    texts = [ex.text for ex in presidio_evaluator_examples(600)] + [
        "server at 2001:db8::8a2e:370:7334 and fe80::1%eth0", "bind to ::",
        "::ffff:192.0.2.128 mapped", "1:2:3:4:5:6:7:8", "64:ff9b::192.0.2.33", "::1",
        "go to EXAMPLE.COM/path", "see shop.acme.io", "10.0.0.1/24", "a..co.uk",
        "IBAN GB82 WEST 1234 5698 7654 32 please", "DE89-3704-0044-0532-0130-00",
        "pay to FR1420041010050500013M02606.", "iban: nl91abna0417164300",
    ]
    recognizers = [EmailRecognizer(), UrlRecognizer(), IpRecognizer(), IbanRecognizer(),
                   UsSsnRecognizer()]
    matched = dict.fromkeys(type(r).__name__ for r in recognizers)
    for recognizer in recognizers:
        gate = _PRESIDIO_NEEDS[type(recognizer).__name__]
        for text in texts:
            if recognizer.analyze(text, [recognizer.supported_entities[0]], None):
                matched[type(recognizer).__name__] = text
                assert gate.search(text), (type(recognizer).__name__, text)
    assert all(matched.values()), matched  # each recognizer was put to the test
    prose = "Thanks. See you e.g. tomorrow at 10:30.\nNote: the plan (v2) is fine!"
    for name in ("UrlRecognizer", "IpRecognizer"):
        assert not _PRESIDIO_NEEDS[name].search(prose)
    # order numbers, dates and amounts do not wake the IBAN recognizer
    assert not _PRESIDIO_NEEDS["IbanRecognizer"].search(
        "Order 40012345 of 12/03/2026, $1,299.00, ticket #5521 (v2)")
