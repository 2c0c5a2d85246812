"""Tests of the configurable parts of redaction: context words, custom recognizers from YAML,
operators per entity (placeholder, mask, keyed pseudonym), PII-density drops, every text field,
and parallel analysis giving the in-process result."""

from __future__ import annotations

import re
import textwrap

import polars as pl
import pytest
from pydantic import ValidationError

from ftdata_pipeline.config.loader import ConfigError, load_recipe
from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.records import MESSAGE, TEXT_FIELDS, conform
from ftdata_pipeline.stages.pii.operators import PseudonymKeyMissing
from ftdata_pipeline.stages.pii import engine
from ftdata_pipeline.stages.pii.engine import Detector, detect_spans, luhn_ok, mod97_ok
from ftdata_pipeline.stages.redact import PiiRedactor, clear_memos, get_redactor, redact

EMAIL = "jane.doe@example.com"
KEY_ENV = "FTDATA_TEST_PSEUDONYM_KEY"

CUSTOM = RedactConfig(
    entities=["PERSON", "EMAIL_ADDRESS", "CREDIT_CARD"],
    recognizers=[
        {
            "name": "employee_id",
            "entity": "EMPLOYEE_ID",
            # weak on its own (0.3 < 0.4): needs a context word nearby
            "patterns": [{"name": "E + 6 digits", "regex": r"\bE\d{6}\b", "score": 0.3}],
            "context": ["employee", "staff"],
        },
        {
            "name": "loyalty_card",
            "entity": "LOYALTY_CARD",
            "patterns": [{"regex": r"\bLC\d{8}\b", "score": 0.6}],
            "checksum": "luhn",
        },
        {
            "name": "partner_account",
            "entity": "PARTNER_ACCOUNT",
            "patterns": [{"regex": r"\bPA\d{2}[A-Z0-9]{8}\b", "score": 0.6}],
            "checksum": "mod97",
        },
        {"name": "projects", "entity": "PROJECT", "deny_list": ["Project Bluebird", "Nightjar"]},
    ],
    operators={
        "EMAIL_ADDRESS": {"type": "mask", "chars_to_keep": 4, "masking_char": "#"},
        "PERSON": {"type": "pseudonym", "length": 8},
        "PROJECT": {"type": "placeholder", "value": "[codename]"},
    },
    pseudonym_key_env=KEY_ENV,
)


@pytest.fixture(scope="module")
def custom(request) -> PiiRedactor:
    mp = pytest.MonkeyPatch()
    mp.setenv(KEY_ENV, "5d0c8e9b1a7f3246" "e1b9c07d4a2f8365" "90ab3cd1e27f4856" "b3a8c1d0e9f27465")
    request.addfinalizer(mp.undo)
    return get_redactor(CUSTOM)


def _luhn_tail(prefix: str, n_digits: int) -> str:
    """prefix + n digits whose last digit makes the digits Luhn-valid."""
    body = "1234567"[: n_digits - 1]
    for d in "0123456789":
        if luhn_ok(body + d):
            return prefix + body + d
    raise AssertionError


# --- context words ---------------------------------------------------------------------------


def test_context_word_lifts_weak_builtin_match_over_threshold():
    cfg = RedactConfig(entities=["PHONE_NUMBER"], score_threshold=0.5)
    red = get_redactor(cfg)
    with_context, without = "My phone: 0987654321.", "Batch 0987654321 shipped."
    raw = red.detector.analyzer.analyze(without, "en", entities=["PHONE_NUMBER"])
    assert raw and max(r.score for r in raw) < 0.5  # found, but weak without context
    redacted, _ = red.redact_texts([with_context, without])
    assert redacted == ["My phone: <PHONE_NUMBER>.", without]


def test_context_enhancer_scores_as_presidios_own(custom):
    """The enhancer that hands Presidio only the results it can change gives every text the
    detections and scores Presidio's own enhancer gives."""
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

    texts = [
        "The employee E123456 left.", "Part E123456 is out of stock.",
        "Mail jane.doe@example.com or call +44 20 7946 0958, server 10.0.0.1.",
        "Wire to IBAN DE89 3704 0044 0532 0130 00 for John Smith in Berlin.",
        "ssn 078-05-1120 and url https://example.org/x?y=1", "nothing here at all",
    ]
    analyzer = custom.detector.analyzer
    assert isinstance(analyzer.context_aware_enhancer, engine.ContextEnhancer)

    def detections():
        return [sorted((r.entity_type, r.start, r.end, round(r.score, 6)) for r in found)
                for found in custom.detector.analyze(texts)]

    ours = detections()
    analyzer.context_aware_enhancer = LemmaContextAwareEnhancer()
    try:
        presidio = detections()
    finally:
        analyzer.context_aware_enhancer = engine.ContextEnhancer()
    assert ours == presidio
    assert any(e == "EMPLOYEE_ID" and score >= 0.6 for e, _, _, score in ours[0])


def test_recognizers_skipped_where_they_cannot_match_change_no_detection():
    """Presidio's pattern recognizers run only on texts holding the characters their patterns
    need; on independent data (presidio-evaluator's generator, package docs with code) and the
    project's labelled sentences that skips texts and changes no detection."""
    from ftdata_pipeline.stages.pii import independent_eval as ie
    from ftdata_pipeline.stages.pii.evaluation import generate_examples

    texts = [ex.text for ex in ie.presidio_evaluator_examples(300, seed=11)]
    texts += [ex.text for ex in generate_examples(200, seed=5)] + ie.negative_examples(200)
    detector = Detector(RedactConfig(workers=1))
    gated = [r for r in detector.analyzer.registry.recognizers if "analyze" in vars(r)]
    assert {type(r).__name__ for r in gated} >= {"EmailRecognizer", "UrlRecognizer",
                                                "IpRecognizer", "UsSsnRecognizer"}
    skipped = sum(1 for t in texts if "@" not in t)
    assert skipped > 100  # the gate does skip work on real texts

    def detections():
        return [sorted((r.entity_type, r.start, r.end, round(r.score, 6)) for r in found)
                for found in detector.analyze(texts)]

    ours = detections()
    saved = {id(r): vars(r).pop("analyze") for r in gated}
    try:
        ungated = detections()
    finally:
        for r in gated:
            r.analyze = saved[id(r)]
    assert ours == ungated
    assert any(e == "EMAIL_ADDRESS" for found in ours for e, *_ in found)


def test_context_word_lifts_custom_pattern(custom):
    (hit, miss), (spans, no_spans) = custom.redact_texts(
        ["The employee E123456 left.", "Part E123456 is out of stock."]
    )
    assert hit == "The employee <EMPLOYEE_ID> left."
    assert spans[0][0] == "EMPLOYEE_ID" and spans[0][3] >= 0.4
    assert miss == "Part E123456 is out of stock." and no_spans == []


# --- custom recognizers ------------------------------------------------------------------------


def test_luhn_checksum_recognizer(custom):
    valid = _luhn_tail("LC", 8)
    invalid = valid[:-1] + str((int(valid[-1]) + 1) % 10)
    redacted, _ = custom.redact_texts([f"loyalty {valid}", f"loyalty {invalid}"])
    assert redacted == ["loyalty <LOYALTY_CARD>", f"loyalty {invalid}"]


def test_mod97_checksum_recognizer(custom):
    body = "PA00ABCD1234"
    candidates = (body[:2] + f"{c:02d}" + body[4:] for c in range(100))
    valid = next(c for c in candidates if mod97_ok(c))
    invalid = valid[:2] + f"{(int(valid[2:4]) + 1) % 100:02d}" + valid[4:]
    assert not mod97_ok(invalid)
    redacted, _ = custom.redact_texts([f"acct {valid} ok", f"acct {invalid} ok"])
    assert redacted == ["acct <PARTNER_ACCOUNT> ok", f"acct {invalid} ok"]


def test_deny_list_and_placeholder_override(custom):
    redacted, _ = custom.redact_texts(["Status of Project Bluebird and nightjar?"])
    assert redacted == ["Status of [codename] and [codename]?"]


def test_custom_recognizers_do_not_leak_into_other_configs(custom):
    plain = get_redactor(RedactConfig(entities=["PERSON", "EMAIL_ADDRESS"]))
    assert plain.redact_texts(["Project Bluebird"])[0] == ["Project Bluebird"]


def test_bad_regex_is_an_error_naming_the_key(tmp_path):
    recipe = tmp_path / "bad_recipe.yaml"
    recipe.write_text(
        textwrap.dedent(
            """\
            kind: pretraining
            sources: [kb_articles]
            redact:
              recognizers:
                - name: broken
                  entity: ORDER_NUMBER
                  patterns: [{regex: "ACM-(\\\\d{6}", score: 0.5}]
            """
        )
    )
    with pytest.raises(ConfigError) as err:
        load_recipe(recipe)
    assert "redact.recognizers.0.patterns.0.regex" in str(err.value)
    assert "invalid regular expression" in str(err.value)


@pytest.mark.parametrize("pattern", [r"(?<=order )\d{6}", r"(\d)\1{5}"])
def test_recognizer_pattern_the_linear_engine_cannot_run_is_a_config_error(pattern):
    with pytest.raises(ValidationError) as err:
        RedactConfig(recognizers=[{"name": "x", "entity": "X", "patterns": [{"regex": pattern}]}])
    assert "recognizers.0.patterns.0.regex" in str(err.value)
    assert "linear time" in str(err.value)


def test_catastrophic_recognizer_pattern_runs_in_linear_time():
    """``(a|aa)+$`` against a run of a's takes a backtracking engine exponential time (in
    Presidio's ``regex`` it runs into the timeout, and the pattern is skipped silently, its
    real match included); the recipe's patterns never run there."""
    cfg = RedactConfig(
        entities=["PERSON"],
        recognizers=[{"name": "evil", "entity": "EVIL",
                      "patterns": [{"regex": r"(a|aa)+$|\bZX\d{4}\b", "score": 0.9}]}],
    )
    text = "a" * 40 + "! ZX1234"
    results = engine.build_custom_recognizer(cfg.recognizers[0], "en").analyze(text, ["EVIL"])
    assert [(r.start, r.end) for r in results] == [(text.index("ZX"), len(text))]


def test_config_validation():
    with pytest.raises(ValidationError, match="patterns' or 'deny_list'"):
        RedactConfig(recognizers=[{"name": "x", "entity": "X"}])
    with pytest.raises(ValidationError, match="NOT_CONFIGURED"):
        RedactConfig(operators={"NOT_CONFIGURED": {"type": "mask"}})
    with pytest.raises(ValidationError, match="duplicate recognizer"):
        RedactConfig(recognizers=[{"name": "x", "entity": "X", "deny_list": ["a"]}] * 2)
    with pytest.raises(ValidationError):
        RedactConfig(recognizers=[{"name": "x", "entity": "lower", "deny_list": ["a"]}])
    with pytest.raises(ValidationError):
        RedactConfig(
            recognizers=[{"name": "x", "entity": "X", "deny_list": ["a"], "checksum": "crc"}]
        )


# --- operators -----------------------------------------------------------------------------------


def test_mask_keeps_last_chars(custom):
    redacted, _ = custom.redact_texts([f"mail {EMAIL} now"])
    assert redacted == ["mail " + "#" * (len(EMAIL) - 4) + ".com now"]


def test_pseudonym_is_consistent_and_keyed(custom, monkeypatch):
    texts = [
        "My name is John Smith.",
        "Dear John Smith, thanks.",
        "Dear John  Smith, thanks.",  # same person, other spacing: same pseudonym
        "Dear Maria Garcia, thanks.",
    ]
    redacted, _ = custom.redact_texts(texts)
    tokens = [re.findall(r"<PERSON_[0-9a-f]{8}>", r) for r in redacted]
    assert all(len(t) == 1 for t in tokens), redacted
    assert tokens[0] == tokens[1] == tokens[2] != tokens[3]
    ops = custom.operators
    assert ops.replacement("PERSON", "JOHN smith") == ops.replacement("PERSON", "John Smith")
    # the entity type is part of the HMAC input: equal values of two types do not collide
    other_type = ops.replacement("LOCATION", "x").replace("LOCATION", "PERSON")
    assert ops.replacement("PERSON", "x") != other_type
    assert "John" not in "".join(redacted) and "Maria" not in "".join(redacted)
    # another key gives other pseudonyms (a redactor is cached per key, never per value)
    monkeypatch.setenv(KEY_ENV, "a1b2c3d4e5f60718293a4b5c6d7e8f90" "0f9e8d7c6b5a49382716a5b4c3d2e1f0")
    other = get_redactor(CUSTOM)
    assert other is not custom
    assert other.redact_texts(texts[:1])[0] != redacted[:1]


def test_pseudonym_without_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("FTDATA_PSEUDONYM_KEY", raising=False)
    cfg = RedactConfig(operators={"PERSON": {"type": "pseudonym"}})
    with pytest.raises(PseudonymKeyMissing, match="FTDATA_PSEUDONYM_KEY"):
        get_redactor(cfg)
    monkeypatch.setenv("FTDATA_PSEUDONYM_KEY", "")
    with pytest.raises(PseudonymKeyMissing, match="FTDATA_PSEUDONYM_KEY"):
        PiiRedactor(cfg)


@pytest.mark.parametrize(
    "weak",
    [
        "k",  # one character: found by trying 100 candidates
        "correct horse battery",  # a short passphrase
        "0" * 64,  # 64 hex digits but one repeated character
        "abcdef0123" * 3,  # 30 hex digits: 120 bits
        "c2VjcmV0LWtleQ==",  # base64 of 10 bytes
    ],
)
def test_weak_pseudonym_key_refused_naming_the_variable(monkeypatch, weak):
    monkeypatch.setenv("FTDATA_PSEUDONYM_KEY", weak)
    cfg = RedactConfig(operators={"PERSON": {"type": "pseudonym"}})
    with pytest.raises(PseudonymKeyMissing, match="FTDATA_PSEUDONYM_KEY.*256") as info:
        PiiRedactor(cfg)
    assert len(weak) < 4 or weak not in str(info.value)  # the message never repeats the key


@pytest.mark.parametrize(
    "strong",
    [
        "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b",  # hex, 32 bytes
        "q2Jx0Zr8cJ5mC9vA1nE7sT4uW6yB3dF8gH0kL2pR5tY=",  # base64 of 32 bytes
        "Vq7#pL2!xR9@mK4$tW8&zB1^cN6*hJ3%dF5(gS0)yU",  # 42 random printable characters
    ],
)
def test_strong_pseudonym_key_accepted(monkeypatch, strong):
    from ftdata_pipeline.key_strength import key_bits

    monkeypatch.setenv("FTDATA_PSEUDONYM_KEY", strong)
    assert key_bits(strong) >= 256
    cfg = RedactConfig(operators={"PERSON": {"type": "pseudonym"}})
    assert PiiRedactor(cfg).operators.replacement("PERSON", "Jan").startswith("<PERSON_")


# --- records: density drop and every text field ----------------------------------------------------


PAD = " Be kind, precise and brief in every answer you give." * 6


def _records() -> pl.DataFrame:
    rows = {
        "record_id": ["dense", "light", "chat"],
        "source": ["s"] * 3,
        "source_key": ["1", "2", "3"],
        "text": [f"John Smith {EMAIL} 4111 1111 1111 1111", "A long calm text " * 10, None],
        "system": [None, None, "You help Maria Garcia." + PAD],
        "prompt": [None, "Ask Maria Garcia", None],
        "response": [None, f"Write to {EMAIL}", None],
        "chosen": [None, "Dear John Smith, done.", None],
        "rejected": [None, f"Mail {EMAIL}", None],
        "messages": [None, None, [{"role": "user", "content": f"I'm John Smith, {EMAIL}"}]],
    }
    return conform(pl.DataFrame(rows, schema_overrides={"messages": pl.List(MESSAGE)}))


def test_every_text_field_is_redacted():
    cfg = RedactConfig()
    result = redact(_records().lazy(), cfg, get_redactor(cfg))
    kept = result.kept
    for field in TEXT_FIELDS:
        values = [v for v in kept[field].to_list() if v]
        assert values, field  # the fixture fills every field somewhere
        for value in values:
            assert "John" not in value and "Maria" not in value and EMAIL not in value, field
    assert kept["system"][2] == "You help <PERSON>." + PAD
    assert kept["chosen"][1] == "Dear <PERSON>, done."
    assert kept["rejected"][1] == "Mail <EMAIL_ADDRESS>"
    assert kept["messages"][2].to_list() == [
        {"role": "user", "content": "I'm <PERSON>, <EMAIL_ADDRESS>"}
    ]


@pytest.mark.parametrize(
    ("measure", "threshold"), [("entities_per_100_words", 20.0), ("redacted_char_share", 0.5)]
)
def test_pii_density_drops_dense_records(measure, threshold):
    cfg = RedactConfig(max_pii_density=threshold, pii_density_measure=measure)
    result = redact(_records().lazy(), cfg, get_redactor(cfg))
    assert result.kept["record_id"].to_list() == ["light", "chat"]
    rej = result.rejected
    assert rej["record_id"].to_list() == ["dense"]
    assert rej["stage"].to_list() == ["redacted"] and rej["rule"].to_list() == ["pii_density"]
    assert rej["score"][0] > threshold
    # rejected rows are stored redacted too, and the detail names no value
    assert EMAIL not in str(rej.to_dicts()) and "John" not in str(rej.to_dicts())
    assert result.rows_in == result.rows_kept + result.rows_rejected == 3
    assert result.stats["records_dropped_pii_density"] == 1


def test_no_density_limit_keeps_everything():
    cfg = RedactConfig()
    result = redact(_records().lazy(), cfg, get_redactor(cfg))
    assert result.rows_rejected == 0 and "records_dropped_pii_density" not in result.stats


# --- parallel ------------------------------------------------------------------------------------


def test_parallel_equals_in_process():
    from ftdata_pipeline.stages.pii.evaluation import generate_examples

    texts = [ex.text for ex in generate_examples(400, seed=3)]
    serial = PiiRedactor(RedactConfig(workers=1))
    parallel_cfg = RedactConfig(workers=2, parallel_min_texts=1, batch_size=32)
    expected = serial.redact_texts(texts)
    clear_memos()  # same detection settings share a memo: make the pool do the work
    with engine.worker_pools():
        detector = Detector(parallel_cfg)
        analyzed_here: list[int] = []
        in_process = detector.spans
        detector.spans = lambda chunk: analyzed_here.append(len(chunk)) or in_process(chunk)
        pool_spans = detect_spans(detector, texts)
        assert len(engine._SCOPE.get()) == 1  # the pool really ran
        # this process took the chunks no worker had begun while the pool started; the
        # workers took the rest
        assert 0 < sum(analyzed_here) < len(texts)
        assert pool_spans == expected[1]
        assert PiiRedactor(parallel_cfg).redact_texts(texts) == expected


def test_memo_shared_across_operator_settings():
    clear_memos()
    texts = [f"write to {EMAIL}"]
    placeholder = PiiRedactor(RedactConfig(workers=1))
    masked = PiiRedactor(RedactConfig(operators={"EMAIL_ADDRESS": {"type": "mask"}}))
    assert placeholder.redact_texts(texts)[0] == ["write to <EMAIL_ADDRESS>"]
    assert masked._memo is placeholder._memo and texts[0] in masked._memo
    assert masked.redact_texts(texts)[0] == ["write to " + "*" * (len(EMAIL) - 4) + ".com"]


# --- residual scan ----------------------------------------------------------------------------------


def test_residual_scan_counts_ipv6_and_ignores_times():
    from ftdata_pipeline.stages.redact import residual_pii_counts

    df = pl.DataFrame(
        {
            "text": [
                "from 2001:db8::8a2e:370:7334 and e03e:911b:3b99:2b58:51ac:314c:9c8:1bf5",
                "meeting at 10:30:15, ratio 3:2, <IP_ADDRESS>",
            ]
        }
    )
    assert residual_pii_counts(df)["IP_ADDRESS"] == 2
    cfg = RedactConfig()
    redacted = redact(conform(df).lazy(), cfg, get_redactor(cfg)).kept
    assert residual_pii_counts(redacted)["IP_ADDRESS"] == 0


# --- deliberate false-positive handling ---------------------------------------------------------


def test_ner_false_positives_dropped_and_pattern_types_kept():
    red = get_redactor(RedactConfig())
    texts = [
        "The dashboard shows 0 GB used although we store 1.5 TB.",  # units are no PERSON
        "Charge 5180547375267003 for the annual plan.",  # NER "Charge 5180..." as PERSON
        "Please whitelist 77.62.132.175 for the VPN.",  # NER IP as PERSON
    ]
    redacted, spans = red.redact_texts(texts)
    assert redacted == [
        texts[0],
        "Charge <CREDIT_CARD> for the annual plan.",
        "Please whitelist <IP_ADDRESS> for the VPN.",
    ]


def test_names_in_salutations_and_signatures():
    red = get_redactor(RedactConfig())
    texts = [
        "Dear Eddie Beasley, thank you for contacting support.",
        "Thank you for your help.\nTyler Lynch\n\nSending this again.",
        "Mit freundlichen Grüßen, Siegried Carsten",
        "Hi Team, the sync is down.",  # a role, not a name
    ]
    redacted, _ = red.redact_texts(texts)
    assert redacted[0] == "Dear <PERSON>, thank you for contacting support."
    assert redacted[1] == "Thank you for your help.\n<PERSON>\n\nSending this again."
    assert redacted[2].endswith(", <PERSON>") and "Carsten" not in redacted[2]
    assert redacted[3] == texts[3]


@pytest.mark.parametrize("template", ["<{entity}-{oops}>", "<{0}>", "<{entity", "{entity.upper}>"])
def test_placeholder_with_unknown_fields_is_a_config_error(template):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="placeholder") as info:
        RedactConfig(placeholder=template)
    assert "placeholder" in str(info.value)
    with pytest.raises(ValidationError, match="operators.PERSON.value"):
        RedactConfig(operators={"PERSON": {"type": "placeholder", "value": template}})


def test_placeholder_with_entity_and_literal_braces_is_valid():
    cfg = RedactConfig(placeholder="{{{entity}}}")
    assert get_redactor(cfg).redact_texts(["mail jane@example.com"])[0] == [
        "mail {EMAIL_ADDRESS}"
    ]
