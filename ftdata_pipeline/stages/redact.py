"""Redacted stage: find PII with Presidio in every text of a record and replace it by placeholders.

Also holds ``residual_pii_counts``, an independent regex scan used as a blocking check that
nothing obvious slipped through. Nothing here logs or reports found values: only counts and
entity types leave this module.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.records import MESSAGE, TEXT_FIELDS, row_count
from ftdata_pipeline.stages.base import StageResult, concat_rejects, detached, reject
from ftdata_pipeline.stages.pii.engine import (  # noqa: F401  (re-exported for callers)
    NER_MODEL_CONFIGURATION,
    SPACY_MODELS,
    Detector,
    Span,
    analyzer_engine,
    detect_spans,
    detection_key,
    iter_span_frames,
)
from ftdata_pipeline.stages.pii import sentence_ner
from ftdata_pipeline.stages.pii import span_frames as sf
from ftdata_pipeline.stages.pii.span_frames import span_frame
from ftdata_pipeline.stages.pii.engine import luhn_ok, mod97_ok
from ftdata_pipeline.stages.pii.operators import Operators, key_fingerprint, read_pseudonym_key

STAGE = "redacted"
PII_COUNT_COLUMN = "pii_entities"
DENSITY_RULE = "pii_density"

MEMO_MAX_TEXTS = 500_000  # bound on memoized texts per detection config (memory, long runs)
APPLY_BATCH = 8192  # texts whose spans are Python tuples at one time while operators apply
# Records read, flattened, detected and redacted at one time: bounds the stage's working set
# (input rows, texts, spans, redacted texts) whatever the size of the input. Large enough that
# the pool's wind-down at the end of each batch (workers idle while the last chunks finish)
# costs little.
REDACT_ROWS = 50_000


class SpanMemo:
    """Detections of texts analyzed before in this process, per detection config.

    Keyed by a 128-bit BLAKE2b digest of the text, not the text itself, and each text's spans
    packed in a few bytes, so the memo holds neither a second copy of every text nor Python
    tuples per span: about 100 bytes per text. It is cleared when it reaches ``max_texts``.
    """

    _PACK = struct.Struct("<Hqqd")  # entity code, start, end, score
    _EMPTY = b""

    def __init__(self, max_texts: int = MEMO_MAX_TEXTS):
        self.max_texts = max_texts
        self._found: dict[bytes, bytes] = {}
        self._names: list[str] = []
        self._codes: dict[str, int] = {}

    @staticmethod
    def digest(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def __len__(self) -> int:
        return len(self._found)

    def __contains__(self, text: str) -> bool:
        return self.digest(text) in self._found

    def clear(self) -> None:
        self._found.clear()

    def get(self, digest: bytes) -> list[Span] | None:
        packed = self._found.get(digest)
        if packed is None:
            return None
        names = self._names
        return [(names[c], s, e, sc) for c, s, e, sc in self._PACK.iter_unpack(packed)]

    def put(self, digest: bytes, spans: list[Span]) -> None:
        if len(self._found) >= self.max_texts:
            self._found.clear()
        if not spans:
            self._found[digest] = self._EMPTY
            return
        codes = self._codes
        for entity, *_ in spans:
            if entity not in codes:
                codes[entity] = len(self._names)
                self._names.append(entity)
        self._found[digest] = b"".join(
            self._PACK.pack(codes[e], s, t, sc) for e, s, t, sc in spans)


_MEMOS: dict[str, SpanMemo] = {}


class PiiRedactor:
    """Presidio detection + the recipe's operators, configured once from a ``RedactConfig``."""

    def __init__(self, cfg: RedactConfig, key: bytes | None = None):
        self.cfg = cfg
        self.detector = Detector(cfg)
        self.operators = Operators(cfg, key if key is not None else read_pseudonym_key(cfg))
        # Shared by every redactor with the same detection settings (the same tickets feed
        # several datasets whose recipes differ only in operators or density limits).
        self._memo = _MEMOS.setdefault(detection_key(cfg), SpanMemo())

    def analyze(self, texts: list[str]):
        """Raw Presidio detections per text (in-process, batched through nlp.pipe)."""
        return self.detector.analyze(texts)

    def span_frame(self, texts: Sequence[str] | pl.Series) -> pl.DataFrame:
        """Spans of distinct ``texts`` as one span frame (``span_frames``), sorted by text.

        Each distinct text is analyzed once per process: the same ticket feeds several
        datasets and a re-run should not pay spaCy twice. Texts seen before are answered from
        the memo; the others stream through ``iter_span_frames`` (pool or cluster) in chunks,
        and only one batch of texts is a Python list at a time.
        """
        n = len(texts)
        digests: list[bytes] = []  # of the texts to analyze, in order
        missing: list[int] = []
        frames: list[pl.DataFrame] = []
        for start in range(0, n, APPLY_BATCH):
            batch = texts[start : start + APPLY_BATCH]
            found: list[list[Span]] = []
            rows: list[int] = []
            for k, text in enumerate(batch.to_list() if isinstance(batch, pl.Series) else batch):
                digest = SpanMemo.digest(text)
                spans = self._memo.get(digest)
                if spans is None:
                    missing.append(start + k)
                    digests.append(digest)
                else:
                    found.append(spans)
                    rows.append(start + k)
            if rows:
                frames.append(span_frame(found, index=rows))
        if len(missing) == n:
            todo = texts
        elif isinstance(texts, pl.Series):
            todo = texts.gather(missing)
        else:
            todo = [texts[i] for i in missing]
        where = pl.Series(sf.INDEX, missing, dtype=pl.UInt32)
        for offset, count, frame in iter_span_frames(self.detector, todo):
            for k, spans in enumerate(sf.span_lists(frame, count, offset)):
                self._memo.put(digests[offset + k], spans)
            frames.append(frame.with_columns(where.gather(frame[sf.INDEX])))
        out = pl.concat(frames) if frames else sf.empty()
        return out.sort(sf.INDEX, maintain_order=True)

    def spans(self, texts: list[str]) -> list[list[Span]]:
        """Replaced spans per text: (entity_type, start, end, score), original coordinates."""
        distinct = list(dict.fromkeys(texts))
        per_text = sf.span_lists(self.span_frame(distinct), len(distinct))
        where = dict(zip(distinct, per_text, strict=True))
        return [list(where[t]) for t in texts]

    def redact_texts(self, texts: list[str]) -> tuple[list[str], list[list[Span]]]:
        """Redacted texts, and per text the replaced (entity_type, start, end, score) spans.

        Spans are in the original text, sorted by start, without overlaps.
        """
        spans = self.spans(texts)
        redacted = [self.operators.apply(t, s) for t, s in zip(texts, spans, strict=True)]
        return redacted, spans


def clear_memos() -> None:
    """Forget every memoized detection (benchmarks; tests of the uncached path), the
    sentence-level NER memos of this process included."""
    for memo in _MEMOS.values():  # in place: live redactors hold these dicts
        memo.clear()
    sentence_ner.clear_all()


@functools.lru_cache(maxsize=8)
def _redactor_for(cfg_json: str, key_id: str) -> PiiRedactor:
    return PiiRedactor(RedactConfig.model_validate_json(cfg_json))


def get_redactor(cfg: RedactConfig) -> PiiRedactor:
    """A redactor per distinct config (and pseudonym key), built once per process."""
    return _redactor_for(cfg.model_dump_json(), key_fingerprint(read_pseudonym_key(cfg)))


# --------------------------------------------------------------------------------------------
# the stage
# --------------------------------------------------------------------------------------------

_ROW = "__row"
_FIELD = "__field"
_TURN = "__turn"
_TEXT = "__text"
_NEW = "__redacted"
_N = "__n_entities"
_WORDS = "__words"
_CHARS = "__redacted_chars"
_LEN = "__chars"
_DENSITY = "__pii_density"
_TID = "__text_id"
_SCAN_ONLY = "__scan_only"


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
    records: pl.LazyFrame,
    cfg: RedactConfig,
    redactor: PiiRedactor | None = None,
    scan_only_sources: frozenset[str] = frozenset(),
    *,
    batch_rows: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    spill: Path | None = None,
) -> StageResult:
    """Replace PII in all text fields and message contents; add ``pii_entities`` per record.

    With ``cfg.max_pii_density`` set, records denser in PII than that are rejected (rule
    ``pii_density``, score = the density): a text that is mostly identifiers teaches little once
    redacted and is the riskiest to keep. Rejected rows are stored redacted as well.

    Records of ``scan_only_sources`` (sources declared ``contains_pii: false``) are scanned but
    left as they are: what the scan finds there is counted per source and entity type and
    reported as a warning (the independent ``no_residual_pii`` check still applies to them).

    The records are read and processed ``batch_rows`` (``REDACT_ROWS``) at a time: only one
    batch's input rows, flattened texts, spans and redacted texts are in memory at once, next
    to the redacted records kept so far. Every record is redacted on its own, so the output
    is the same for any batch size; a text met again in a later batch is answered from the
    memo. ``progress(records_done, records_total)`` is called after each batch.

    With ``spill`` (an empty directory), each batch's redacted records are written there as
    they are made and ``kept`` is a scan of those files: the output is never in memory as a
    whole. The caller removes the directory once the output is stored.
    """
    redactor = redactor or get_redactor(cfg)
    size = max(1, batch_rows or REDACT_ROWS)
    rows_in = records.select(pl.len()).collect().item()
    kept: list[pl.DataFrame] = []
    parts: list[Path] = []
    template: pl.DataFrame | None = None  # the output's columns, for empty reject frames
    with_pii = 0
    rejects: list[pl.DataFrame] = []
    scanned = 0
    entities: Counter[str] = Counter()
    undeclared: dict[str, Counter[str]] = {}
    # one pass even over no rows: the empty output still has the stage's columns
    for start in range(0, max(rows_in, 1), size):
        # A slice of a Parquet scan (the stored curated stage) reads only that slice's rows.
        batch = _redact_batch(records.slice(start, size).collect(), cfg, redactor,
                              scan_only_sources)
        template = batch.kept.clear() if template is None else template
        with_pii += int((batch.kept[PII_COUNT_COLUMN] > 0).sum())
        if spill is None:
            kept.append(batch.kept)
        else:
            parts.append(spill / f"part-{len(parts):06d}.parquet")
            batch.kept.write_parquet(parts[-1], compression="zstd", statistics=False)
        # detached: a batch's few rejects would keep the whole batch's texts alive
        rejects.extend(detached(r) for r in batch.rejects)
        scanned += batch.texts_scanned
        entities.update(batch.entities)
        for source, found in batch.undeclared.items():
            undeclared.setdefault(source, Counter()).update(found)
        if progress is not None:
            progress(min(start + size, rows_in), rows_in)
    if spill is None:
        out = pl.concat(kept) if len(kept) > 1 else kept[0]
    else:
        out = pl.scan_parquet(parts)
    del kept

    stats = {
        "texts_scanned": scanned,
        "entities": dict(sorted(entities.items())),
        "operators": {e: redactor.operators.describe(e) for e in sorted(entities)},
        "records_with_pii": with_pii,
        "evaluation": evaluation_figures(cfg),
    }
    if scan_only_sources:
        stats["scan_only_sources"] = sorted(scan_only_sources)
        stats["undeclared_pii"] = {k: dict(sorted(v.items())) for k, v in sorted(undeclared.items())}
        stats["warnings"] = [
            f"source {src!r} is declared contains_pii: false but the scan found "
            f"{sum(found.values())} possible PII span(s) ("
            + ", ".join(f"{e}: {n}" for e, n in sorted(found.items()))
            + "); they were left unredacted as declared - review the source or set "
            "contains_pii: true"
            for src, found in sorted(undeclared.items())
        ]
    if cfg.max_pii_density is not None:
        stats["records_dropped_pii_density"] = sum(r.height for r in rejects)
    return StageResult(
        kept=out,
        rejected=concat_rejects(rejects, template),
        rows_in=rows_in,
        stats=stats,
    )


@dataclass
class _Redacted:
    """One batch of records redacted: the records kept, the dense ones set aside, and what
    was found (spans per entity type; per scan-only source and type)."""

    kept: pl.DataFrame
    rejects: list[pl.DataFrame]
    texts_scanned: int
    entities: dict[str, int]
    undeclared: dict[str, dict[str, int]]


def _redact_batch(
    df: pl.DataFrame, cfg: RedactConfig, redactor: PiiRedactor, scan_only_sources: frozenset[str]
) -> _Redacted:
    columns = df.columns
    text_fields = [f for f in TEXT_FIELDS if f in columns]
    with_messages = "messages" in columns
    df = df.with_row_index(_ROW)

    flat = _flatten_texts(df, text_fields, with_messages).sort(_ROW, _FIELD, _TURN)
    # Each distinct text is analyzed and redacted once; the flat rows point at it by index
    # and hold no text of their own: with large inputs every copy of the texts counts.
    distinct = flat.select(pl.col(_TEXT).unique(maintain_order=True)).with_row_index(_TID)
    flat = flat.join(distinct, on=_TEXT, how="left", maintain_order="left").drop(_TEXT)
    found = redactor.span_frame(distinct[_TEXT])
    per_text = _redact_distinct(redactor, distinct[_TEXT], found)
    del distinct
    flat = flat.with_columns(_scan_only_expr(df, flat, scan_only_sources)).join(
        per_text, on=_TID, how="left", maintain_order="left")
    del per_text
    # Records of scan-only sources keep their texts: no replacement, nothing counted as
    # redacted; what was found there is reported per source below. A null _NEW leaves the
    # original text in place.
    keep = pl.col(_SCAN_ONLY)
    flat = flat.with_columns(
        pl.when(keep).then(None).otherwise(pl.col(_NEW)).alias(_NEW),
        pl.when(keep).then(0).otherwise(pl.col(_N)).cast(pl.Int32).alias(_N),
        pl.when(keep).then(0).otherwise(pl.col(_CHARS)).cast(pl.Int64).alias(_CHARS),
    )
    entity_counts, undeclared = _entity_counts(df, flat, found)
    del found

    out = df
    del df
    for field in text_fields:
        # rows whose text is unchanged have a null _NEW, which ``update`` skips
        replaced = flat.filter((pl.col(_FIELD) == field) & pl.col(_NEW).is_not_null()).select(
            _ROW, pl.col(_NEW).alias(field))
        out = out.update(replaced, on=_ROW, how="left")
    if with_messages:
        out = _rebuild_messages(out, flat.filter(pl.col(_FIELD) == "messages"))

    per_row = flat.group_by(_ROW).agg(
        pl.col(_N).sum().cast(pl.Int32).alias(PII_COUNT_COLUMN),
        _density_expr(cfg).alias(_DENSITY),
    )
    out = (
        out.join(per_row, on=_ROW, how="left")
        .with_columns(
            pl.col(PII_COUNT_COLUMN).fill_null(0).cast(pl.Int32),
            pl.col(_DENSITY).fill_null(0.0),
        )
        .sort(_ROW)
    )

    rejects = []
    if cfg.max_pii_density is not None:
        dense = pl.col(_DENSITY) > cfg.max_pii_density
        rejects.append(
            reject(
                out.filter(dense).select(*columns, PII_COUNT_COLUMN, _DENSITY),
                stage=STAGE,
                rule=DENSITY_RULE,
                score=pl.col(_DENSITY),
                detail=f"{cfg.pii_density_measure} > {cfg.max_pii_density}",
            ).drop(_DENSITY)
        )
        out = out.filter(~dense)
    return _Redacted(
        kept=out.select(*columns, PII_COUNT_COLUMN),
        rejects=rejects,
        texts_scanned=flat.height,
        entities=entity_counts,
        undeclared=undeclared,
    )


def _scan_only_expr(df: pl.DataFrame, flat: pl.DataFrame, sources: frozenset[str]) -> pl.Expr:
    """Per flat text: whether its record comes from a source declared free of PII."""
    if not sources or "source" not in df.columns:
        return pl.lit(False).alias(_SCAN_ONLY)
    marked = df.select(pl.col("source").is_in(sorted(sources)).fill_null(False))
    return marked.to_series().gather(flat[_ROW]).alias(_SCAN_ONLY)


_PER_TEXT = {_TID: pl.UInt32, _NEW: pl.String, _N: pl.Int32, _CHARS: pl.Int64,
             _WORDS: pl.Int64, _LEN: pl.Int64}


def _redact_distinct(
    redactor: PiiRedactor, texts: pl.Series, found: pl.DataFrame
) -> pl.DataFrame:
    """Per distinct text (``_TID``): the redacted text (null when nothing was replaced), spans
    replaced, characters replaced and words, batch by batch: the operators need Python
    strings and span tuples, held for one batch at a time."""
    parts = []
    for start in range(0, texts.len(), APPLY_BATCH):
        batch = texts.slice(start, APPLY_BATCH).to_list()
        spans = sf.span_lists(sf.rows_of(found, start, start + len(batch)), len(batch), start)
        parts.append(pl.DataFrame(
            {
                _TID: pl.int_range(start, start + len(batch), dtype=pl.UInt32, eager=True),
                _NEW: [redactor.operators.apply(t, s) if s else None
                       for t, s in zip(batch, spans, strict=True)],
                _N: [len(s) for s in spans],
                _CHARS: [sum(e - b for _, b, e, _ in s) for s in spans],
                _WORDS: [len(t.split()) for t in batch],
                _LEN: [len(t) for t in batch],
            },
            schema=_PER_TEXT,
        ))
    return pl.concat(parts) if parts else pl.DataFrame(schema=_PER_TEXT)


def _entity_counts(
    df: pl.DataFrame, flat: pl.DataFrame, found: pl.DataFrame
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Spans per entity type over every flat text that was redacted, and per source and type
    over the texts of scan-only sources (a text counts once per place it occurs)."""
    occurrences = flat.group_by(_TID, _SCAN_ONLY, _ROW).len("__times")
    if "source" in df.columns:
        occurrences = occurrences.join(df.select(_ROW, "source"), on=_ROW, how="left")
    else:
        occurrences = occurrences.with_columns(pl.lit(None, dtype=pl.String).alias("source"))
    per = (
        found.group_by(sf.INDEX, "entity").len("__spans")
        .join(occurrences, left_on=sf.INDEX, right_on=_TID, how="inner")
        .group_by(_SCAN_ONLY, "source", "entity")
        .agg((pl.col("__spans") * pl.col("__times")).sum().alias("__n"))
    )
    entity_counts: dict[str, int] = {}
    undeclared: dict[str, dict[str, int]] = {}
    for scan_only, source, entity, n in per.sort("source", "entity").iter_rows():
        if scan_only:
            undeclared.setdefault(source, {})[entity] = int(n)
        else:
            entity_counts[entity] = entity_counts.get(entity, 0) + int(n)
    return entity_counts, undeclared


def evaluation_figures(cfg: RedactConfig) -> dict:
    """The recorded evaluation of this detection configuration, or a note that there is none.

    ``ftdata pii evaluate`` records, per detection configuration (hash of the settings that
    decide which spans are found), the figures measured on the independent sets; the card and
    the stage metadata show the ones of the configuration that actually ran.
    """
    from ftdata_pipeline.stages.pii.eval_record import lookup

    return lookup(cfg)


def _density_expr(cfg: RedactConfig) -> pl.Expr:
    """A record's PII density over all its texts (aggregation over its flat text rows)."""
    if cfg.pii_density_measure == "redacted_char_share":
        return (pl.col(_CHARS).sum() / pl.col(_LEN).sum().clip(1)).cast(pl.Float64)
    return (pl.col(_N).sum() * 100.0 / pl.col(_WORDS).sum().clip(1)).cast(pl.Float64)


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
_HEX = r"[0-9A-Fa-f]{1,4}"
# IPv6: the full eight groups, or a "::"-compressed form with at least three groups. Clock
# times ("10:30") and MAC-like pairs never have a "::" or eight groups.
_IPV6 = (
    rf"(?:\b(?:{_HEX}:){{7}}{_HEX}\b"
    rf"|\b(?:{_HEX}:){{1,6}}:{_HEX}(?::{_HEX}){{0,5}}\b)"
)

RESIDUAL_TYPES = (
    "CREDIT_CARD",
    "EMAIL_ADDRESS",
    "IBAN_CODE",
    "IP_ADDRESS",
    "PHONE_NUMBER",
    "STREET_ADDRESS",
    "US_SSN",
)


_HTTP_STATUS = (
    r"(?i:\bHTTP(?:/[\d.]+)?\s+[1-5]\d\d(?:\s+\p{Lu}[\p{L}-]*){0,3})"
    r"|\b[1-5]\d\d\s+(?i:bad\s+gateway|gateway\s+time-?out)\b"
)


def _street_patterns() -> list[str]:
    """Street addresses in Polars' (Rust) regex syntax: a house number, one to four name
    words and a street-type word (the USPS suffixes and their abbreviations); a European street
    word before the name and a house number after it; a compound street name ("...straße 5");
    PO boxes. Written apart from the recognizer's patterns, so the two do not share a gap."""
    from ftdata_pipeline.stages.pii.lexicon import street_suffixes

    types = "|".join(street_suffixes()) + "|st|ave|rd|blvd|ln|dr|ct|pl|pkwy|hwy|ter|sq|cres"
    word = r"\p{Lu}[\p{L}'.-]*"
    return [
        rf"\b\d{{1,5}}[A-Za-z]?\s+(?:{word}\s+){{1,4}}(?i:{types})\b",
        rf"(?i:\b(?:rue|via|viale|corso|piazza|calle|avenida|avda\.|rua|carrer|paseo|plaza|"
        rf"ulica|ul\.|chemin|boulevard|avenue))\s+(?:{word}\s+|(?i:de|del|la|le|da|do|di|des|"
        rf"du)\s+){{1,4}}\d{{1,5}}\b",
        r"\b\p{Lu}\p{Ll}+(?i:straße|strasse|weg|gasse|platz|allee|straat|laan|gracht|vej|gade|"
        r"gatan|vägen|veien)\s+\d{1,5}\b",
        r"(?i)\b(?:p\.?\s?o\.?\s?box|postfach|apartado|postbus)\s*#?\s*\d{1,6}\b",
    ]


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


def residual_pii_counts(
    df: pl.DataFrame | pl.LazyFrame, batch_rows: int | None = None
) -> dict[str, int]:
    """Regex count of obvious PII left in a (redacted) frame, per type; all types present.

    Independent of Presidio on purpose, so a blind spot of one is not a blind spot of both.
    IP addresses are IPv4 and IPv6; street addresses are numbered streets and PO boxes.
    Placeholders such as ``<EMAIL_ADDRESS>`` never match.

    Counted ``batch_rows`` records at a time (default ``REDACT_ROWS``) and summed: every
    pass below copies the texts, so a whole frame at once cost several copies of all of them.
    """
    batch_rows = batch_rows or REDACT_ROWS
    lazy = df.lazy()
    total = row_count(lazy)
    counts = dict.fromkeys(RESIDUAL_TYPES, 0)
    for start in range(0, total, batch_rows):
        for pii_type, n in _residual_in(lazy.slice(start, batch_rows).collect()).items():
            counts[pii_type] += n
    return counts


def _residual_in(df: pl.DataFrame) -> dict[str, int]:
    texts = _all_texts(df)
    counts: dict[str, int] = {}

    counts["EMAIL_ADDRESS"] = int(texts.str.count_matches(_EMAIL).sum() or 0)
    texts = texts.str.replace_all(_EMAIL, " ")

    counts["IBAN_CODE"] = _count_valid(texts.str.extract_all(_IBAN), mod97_ok)
    texts = texts.str.replace_all(_IBAN, " ")

    counts["CREDIT_CARD"] = _count_valid(texts.str.extract_all(_CARD), luhn_ok)
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

    counts["STREET_ADDRESS"] = 0
    # HTTP status lines ("HTTP 502 Bad Gateway", "504 Gateway Timeout") have the shape of a
    # numbered street with a street-type word; they are not addresses.
    texts = texts.str.replace_all(_HTTP_STATUS, " ")
    for pattern in _street_patterns():
        counts["STREET_ADDRESS"] += int(texts.str.count_matches(pattern).sum() or 0)
        texts = texts.str.replace_all(pattern, " ")

    ipv6 = texts.str.extract_all(_IPV6).explode().drop_nulls()
    n_ipv6 = int((ipv6.str.count_matches(_HEX) >= 3).sum()) if ipv6.len() else 0
    texts = texts.str.replace_all(_IPV6, " ")
    counts["IP_ADDRESS"] = int(texts.str.count_matches(_IPV4).sum() or 0) + n_ipv6
    return {t: counts[t] for t in RESIDUAL_TYPES}
