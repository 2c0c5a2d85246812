"""Typed, documented models of ``configs/sources.yaml`` and ``configs/datasets/<name>.yaml``.

Every model forbids unknown keys, so a typo in YAML is an error rather than a silently ignored
setting. Secrets (database URLs with passwords) come from environment variables named in the
config (``url_env``), never from the YAML itself.
"""

from __future__ import annotations

import string
from datetime import date
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from ftdata_pipeline.config.safe_regex import check_regex, check_regexes
from ftdata_pipeline.formats import FORMAT_NAMES, FORMATS_BY_NAME
from ftdata_pipeline.records import (
    ANNOTATION_ANSWER_FIELDS,
    ANNOTATION_MAPPABLE_FIELDS,
    ANNOTATION_REQUIRED_FIELDS,
    KINDS,
    MAPPABLE_FIELDS,
    RECORD_SCHEMA,
    SPLITS,
    TEACHER_MAPPABLE_FIELDS,
    TEACHER_REQUIRED_FIELDS,
)
from ftdata_pipeline.stages.pii.phone_regions import DEFAULT_PHONE_REGIONS

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, description="lower_snake_case identifier")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------
# sources.yaml
# --------------------------------------------------------------------------------------------


class TurnsMapping(Strict):
    """How to assemble chat ``messages`` from one-row-per-turn data."""

    group: str = Field(description="column holding the conversation id")
    order: str = Field(description="column giving the turn order within a conversation")
    role: str = Field(description="column holding the speaker role")
    content: str = Field(description="column holding the turn text")
    role_map: dict[str, Literal["system", "user", "assistant"]] = Field(
        default_factory=dict,
        description="map source role values onto system/user/assistant (e.g. customer: user)",
    )


CHAT_ROLES = ("system", "user", "assistant")
ChatRole = Literal["system", "user", "assistant"]

# Role values of the usual chat export shapes, mapped onto the canonical roles.
SHAREGPT_ROLE_MAP: dict[str, str] = {
    "system": "system", "human": "user", "user": "user", "gpt": "assistant",
    "assistant": "assistant", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant",
}


class MessagesMapping(Strict):
    """Chat ``messages`` from one column (or nested path) that holds a whole conversation.

    ``shape``:
    - ``strings``: a list of texts; roles follow ``roles`` in turn (user, assistant, user...),
      after an optional leading system prompt (``leading_system``);
    - ``role_content``: a list of objects with a role and a content key (OpenAI style,
      ``{"role": "user", "content": "..."}``); ``role_key``/``content_key`` rename them;
    - ``sharegpt``: a list of ``{"from": "human"|"gpt"|"system", "value": "..."}`` objects.
    """

    column: str = Field(description="column or nested path holding the list, e.g. turns, "
                        "conversations, data.messages")
    shape: Literal["strings", "role_content", "sharegpt"]
    roles: list[Literal["user", "assistant"]] = Field(
        default_factory=lambda: ["user", "assistant"],
        min_length=1,
        description="strings: the role pattern, repeated over the list",
    )
    leading_system: bool | Literal["auto"] = Field(
        False,
        description="strings: the first text is a system prompt (true), never (false), or when "
        "the list has an odd length, i.e. one more than complete user/assistant pairs (auto)",
    )
    role_key: str | None = Field(None, description="objects: key of the role "
                                 "(default: role; sharegpt: from)")
    content_key: str | None = Field(None, description="objects: key of the text "
                                    "(default: content; sharegpt: value)")
    role_map: dict[str, Literal["system", "user", "assistant", "skip"]] = Field(
        default_factory=dict,
        description="objects: source role value -> system/user/assistant, or skip to leave "
        "such turns out (tool calls, function results); added to the shape's defaults: the "
        "canonical names, and human/gpt for sharegpt",
    )

    @property
    def keys(self) -> tuple[str, str]:
        if self.shape == "sharegpt":
            return self.role_key or "from", self.content_key or "value"
        return self.role_key or "role", self.content_key or "content"

    @property
    def full_role_map(self) -> dict[str, str]:
        base = SHAREGPT_ROLE_MAP if self.shape == "sharegpt" else {r: r for r in CHAT_ROLES}
        return {**base, **self.role_map}

    @model_validator(mode="after")
    def _shape_fields(self) -> MessagesMapping:
        if self.shape == "strings" and (self.role_key or self.content_key or self.role_map):
            raise ValueError("shape 'strings' takes no role_key, content_key or role_map")
        if self.shape != "strings" and self.leading_system is not False:
            raise ValueError("leading_system applies to shape 'strings' only")
        return self

TOOL_EXPORT_FORMATS = ("label_studio", "argilla")


class ToolExportConfig(Strict):
    """How an annotation tool's export points back at records and which answers to read."""

    item_source_field: str = Field(
        "source", description="task data / record field naming the annotated record's source"
    )
    item_key_field: str = Field(
        "source_key", description="task data / record field holding the record's source_key"
    )
    questions: list[str] = Field(
        default_factory=list,
        description="Label Studio control names (from_name) / Argilla question names to read; "
        "empty: every question",
    )
    left_key_field: str = Field(
        "left_key", description="pairwise: task data field with the left response's key"
    )
    right_key_field: str = Field(
        "right_key", description="pairwise: task data field with the right response's key"
    )
    rankings: list[str] = Field(
        default_factory=list,
        description="argilla: questions whose list values are rankings (best first) of "
        "response keys, not multi-label answers",
    )
    ranking_option_key: str = Field(
        "{option}_key",
        description="argilla: the record field or metadata holding the key of the response a "
        "ranking option stands for ({option} is the option's name; Argilla's ranking options "
        "are fixed per dataset, e.g. response_1..response_4); a record without that field "
        "ranks the option names themselves as keys",
    )


class FilePartitioning(Strict):
    """One partition per file: ``path`` is a folder (every file of the source's format in it)
    or a glob pattern; the partition key is the file's path below the folder."""

    by: Literal["file"]


class DayPartitioning(Strict):
    """One partition per UTC day of a canonical timestamp field."""

    by: Literal["day"]
    field: str = Field(description="canonical timestamp field the day is taken from (mapped "
                       "by the source, e.g. created_at)")
    start: date = Field(description="first day (YYYY-MM-DD) of the partitions")


# The partition kinds: one model each, and the one list every other module derives from.
PARTITION_MODELS: dict[str, type[Strict]] = {"file": FilePartitioning, "day": DayPartitioning}
PARTITION_KINDS: tuple[str, ...] = tuple(PARTITION_MODELS)
AnyPartitioning = Annotated[FilePartitioning | DayPartitioning, Field(discriminator="by")]
# Canonical fields a day partition may be taken from: the record's timestamp fields.
TIMESTAMP_FIELDS: tuple[str, ...] = tuple(
    f for f in MAPPABLE_FIELDS if isinstance(RECORD_SCHEMA.get(f), pl.Datetime)
)


class SourceConfig(Strict):
    """One raw source: where it lives, how it maps onto the canonical record, who owns it.

    This is the part every kind shares; each kind adds its own fields in a subclass
    (``FileSourceConfig``, ``SqlSourceConfig``), and sources.yaml is validated as a union
    discriminated on ``kind``. ``SourceConfig(...)`` and ``SourceConfig.model_validate(...)``
    build the model of the given kind.
    """

    description: str = ""
    kind: Literal["file", "sql"]
    role: Literal["records", "annotations", "reference", "teacher_outputs"] = Field(
        "records",
        description="records become training candidates; annotations are human labels for "
        "records of another source (item_key, annotator, label | rating | rank); reference is "
        "a sample of production inputs datasets are compared with (text, label), never trained "
        "on; teacher_outputs are a teacher model's responses to prompt records (item_key, "
        "teacher_model, teacher_version, response, score) for distillation",
    )
    # mapping onto the canonical record
    key: str | None = Field(
        None, description="column holding the row's unique key (default: the row number)"
    )
    mapping: dict[str, str] = Field(
        default_factory=dict,
        description="canonical field -> source column, or a template such as '{subject}: {body}'",
    )
    turns: TurnsMapping | None = None
    messages: MessagesMapping | None = Field(
        None, description="chat messages from a column holding the whole conversation"
    )
    max_drop_fraction: float | None = Field(
        0.5,
        ge=0,
        le=1,
        description="the raw input may not shrink by more than this share of the previous "
        "materialization's rows (0 rows always fails); null disables the size guard. "
        "FTDATA_ALLOW_SHRINK=<source>[,...] (or '*') accepts an intended shrink for one run",
    )
    annotates: Name | None = Field(
        None,
        description="annotations: the records source whose keys item_key holds (unless an "
        "item_source column is mapped); annotations join records on (source, key)",
    )
    # governance facts
    owner: str
    licence: str
    classification: Literal["public", "internal", "confidential", "restricted"]
    contains_pii: bool
    retention_days: int | None = Field(None, gt=0)
    subject_field: str | None = Field(
        None,
        description="raw column identifying the data subject (customer id, e-mail); erasure "
        "requests by subject id match it (ftdata erasure request --subject-id)",
    )
    partition: AnyPartitioning | None = Field(
        None,
        description="process the source incrementally: {by: file} (one partition per file "
        "in the folder or glob of 'path') or {by: day, field: created_at, start: YYYY-MM-DD}; "
        "a recipe reads either only partitioned sources or none",
    )

    @field_validator("partition")
    @classmethod
    def _partition_fits_source(cls, partition, info):
        if partition is None:
            return partition
        data = info.data
        if data.get("role", "records") != "records":
            raise ValueError("partition: only sources with role 'records' can be partitioned")
        if partition.by == "file" and data.get("kind") != "file":
            raise ValueError("partition.by: 'file' needs a file source (kind: file)")
        if partition.by == "day":
            if partition.field not in TIMESTAMP_FIELDS:
                raise ValueError(
                    f"partition.field: {partition.field!r} is not a timestamp field of the "
                    f"record (one of {list(TIMESTAMP_FIELDS)})"
                )
            if partition.field not in data.get("mapping", {}):
                raise ValueError(
                    f"partition.field: {partition.field!r} is not mapped by this source "
                    f"(add mapping.{partition.field})"
                )
        return partition

    @field_validator("mapping")
    @classmethod
    def _known_targets(cls, mapping: dict[str, str]) -> dict[str, str]:
        allowed = set(MAPPABLE_FIELDS) | set(ANNOTATION_MAPPABLE_FIELDS) | set(TEACHER_MAPPABLE_FIELDS)
        unknown = sorted(set(mapping) - allowed)
        if unknown:
            raise ValueError(
                f"unknown canonical field(s) {unknown}; allowed: {sorted(allowed)}"
            )
        return mapping

    @model_validator(mode="after")
    def _mapping_fits_role(self) -> SourceConfig:
        if self.turns is not None and self.messages is not None:
            raise ValueError("'turns' (one row per turn) and 'messages' (one row per "
                             "conversation) exclude each other")
        if self.tool_export and (self.role != "annotations" or self.mapping):
            raise ValueError(
                f"format {getattr(self, 'format', None)!r} is an annotation tool's export: it "
                "needs role: annotations and takes no 'mapping' (see 'tool')"
            )
        if self.role == "teacher_outputs":
            missing = [f for f in TEACHER_REQUIRED_FIELDS if f not in self.mapping]
            if missing:
                raise ValueError(f"a teacher_outputs source must map {missing}")
            stray = sorted(set(self.mapping) - set(TEACHER_MAPPABLE_FIELDS))
            if stray or self.turns or self.messages:
                raise ValueError(f"a teacher_outputs source maps only {list(TEACHER_MAPPABLE_FIELDS)}")
            return self
        if self.role == "annotations":
            missing = [f for f in ANNOTATION_REQUIRED_FIELDS if f not in self.mapping]
            if missing and not self.tool_export:
                raise ValueError(f"an annotations source must map {missing}")
            if not self.tool_export and not any(f in self.mapping for f in ANNOTATION_ANSWER_FIELDS):
                raise ValueError(
                    f"an annotations source must map one of {list(ANNOTATION_ANSWER_FIELDS)}"
                )
            if self.turns or self.messages:
                raise ValueError("an annotations source takes no 'turns' or 'messages'")
        else:
            stray = [
                f for f in (*ANNOTATION_MAPPABLE_FIELDS, *TEACHER_MAPPABLE_FIELDS)
                if f in self.mapping and f not in MAPPABLE_FIELDS
            ]
            if stray:
                raise ValueError(f"{stray} can only be mapped by an annotations source")
            if self.annotates:
                raise ValueError("'annotates' is for annotations sources")
        return self


    @property
    def tool_export(self) -> bool:
        """True for annotation tools' own export files (Label Studio, Argilla)."""
        return getattr(self, "format", None) in TOOL_EXPORT_FORMATS

    def __new__(cls, *args: Any, **data: Any):
        # SourceConfig(kind="file", ...) builds a FileSourceConfig (Python then runs its
        # __init__, which validates); subclasses construct themselves.
        if cls is SourceConfig:
            kind_cls = SOURCE_CONFIG_KINDS.get(data.get("kind"))
            if kind_cls is not None:
                return super().__new__(kind_cls)
        return super().__new__(cls)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any):  # type: ignore[override]
        if cls is SourceConfig:
            return _SOURCE_ADAPTER.validate_python(obj, **kwargs)
        return super().model_validate(obj, **kwargs)


class FileSourceConfig(SourceConfig):
    """A JSONL, CSV or Parquet file, or an annotation tool's JSON export."""

    kind: Literal["file"]
    path: str = Field(description="file path, relative to the project root")
    format: Literal["jsonl", "csv", "parquet", "label_studio", "argilla"] = Field(
        description="jsonl | csv | parquet; annotations may also be a Label Studio JSON export "
        "(label_studio) or Argilla 2.x flattened records as JSON/JSONL (argilla)",
    )
    tool: ToolExportConfig | None = Field(
        None, description="label_studio / argilla: where the record's key and answers are"
    )
    on_bad_rows: Literal["fail", "quarantine"] = Field(
        "fail",
        description="file sources: a malformed JSONL line, a non-UTF-8 line or a CSV row with "
        "the wrong number of fields fails the source (fail) or is set aside in the restricted "
        "zone with file, line and reason (quarantine)",
    )

    @model_validator(mode="after")
    def _tool_fits_format(self) -> FileSourceConfig:
        if self.tool is not None and not self.tool_export:
            raise ValueError("'tool' is only for formats label_studio and argilla")
        return self


class SqlSourceConfig(SourceConfig):
    """A query run through SQLAlchemy."""

    kind: Literal["sql"]
    url: str | None = Field(
        None, description="SQLAlchemy URL without secrets (relative sqlite paths allowed)"
    )
    url_env: str | None = Field(
        None, description="environment variable holding the SQLAlchemy URL; wins over url"
    )
    query: str

    @model_validator(mode="after")
    def _has_url(self) -> SqlSourceConfig:
        if not (self.url or self.url_env):
            raise ValueError("a sql source needs 'url' or 'url_env'")
        return self


# One entry per source kind (the modules of ftdata_pipeline/sources/ implement them).
SOURCE_CONFIG_KINDS: dict[str, type[SourceConfig]] = {
    "file": FileSourceConfig,
    "sql": SqlSourceConfig,
}
AnySourceConfig = Annotated[FileSourceConfig | SqlSourceConfig, Field(discriminator="kind")]
_SOURCE_ADAPTER: TypeAdapter = TypeAdapter(AnySourceConfig)


class SourcesFile(Strict):
    sources: dict[Name, AnySourceConfig]


# --------------------------------------------------------------------------------------------
# dataset recipes
# --------------------------------------------------------------------------------------------


# Removed from every text field and chat turn before any filter runs. Rust regex syntax
# (Polars); each match is deleted. Recipes replace the whole list (an empty list disables it).
DEFAULT_BOILERPLATE = [
    # device and mail-client signatures, on a line of their own
    r"(?im)^[ \t]*sent from my [\w .-]{1,30}$",
    r"(?im)^[ \t]*sent from (?:mail|outlook|yahoo mail|gmail) for [\w .-]{1,20}$",
    r"(?im)^[ \t]*get outlook for [\w .-]{1,20}$",
    # out-of-office notices
    r"(?im)^[ \t]*(?:automatic reply|auto-?reply|out of office)\b[^\n]{0,80}$",
    # the e-mail signature delimiter "-- " and everything after it
    r"(?s)(?:^|\n)-- ?\n.*",
    # legal footers
    r"(?i)this (?:e-?mail|message) and any attachments? (?:is|are) confidential[^\n]*",
]

# A response matching one of these is a refusal template, not an answer worth training on.
DEFAULT_REFUSALS = [
    r"(?i)\bas an ai(?: language)? model\b",
    r"(?i)^\s*i(?:'m| am) (?:sorry|afraid),? (?:but )?i (?:cannot|can't|am unable to|'m unable to)",
    r"(?i)^\s*i (?:cannot|can't|am unable to) (?:help|assist) (?:you )?with that",
    r"(?i)^\s*(?:sorry, )?i (?:cannot|can't) (?:answer|provide|do) that",
]


class FieldBounds(Strict):
    """Word and character bounds for one side of an example (null max: no upper bound)."""

    min_words: int = Field(0, ge=0)
    max_words: int | None = Field(None, gt=0)
    min_chars: int = Field(0, ge=0)
    max_chars: int | None = Field(None, gt=0)


class QualityConfig(Strict):
    """Gopher-style heuristics adapted to instruction/chat data; each is a named filter.

    Every score is kept as a ``q_*`` column on kept rows so thresholds can be re-tuned
    without recomputing. Heuristics that are meaningless on short texts only apply to texts
    with at least the given number of words.
    """

    enabled: bool = True
    prompt: FieldBounds = Field(
        default_factory=FieldBounds,
        description="bounds of the prompt side: user turns (chat_sft), prompt (preference), "
        "text (classification, pretraining)",
    )
    response: FieldBounds = Field(
        default_factory=FieldBounds,
        description="bounds of the response side: assistant turns (chat_sft), response or "
        "chosen (preference); ignored for kinds without responses",
    )
    drop_empty_response: bool = Field(
        True, description="reject chat/preference examples whose response side is empty"
    )
    drop_refusals: bool = Field(
        True, description="reject responses matching refusal_patterns (turn off for preference "
        "data, whose rejected side legitimately holds refusals)"
    )
    refusal_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_REFUSALS))
    max_dup_line_frac: float = Field(
        0.3, ge=0, le=1, description="Gopher: max share of non-empty lines that repeat another"
    )
    max_top_ngram_frac: dict[Literal[2, 3, 4], float] = Field(
        default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16},
        description="Gopher: max share of word characters covered by the most frequent n-gram",
    )
    repetition_min_words: int = Field(
        100,
        ge=0,
        description="repetition rules apply to texts with at least this many words (on "
        "shorter ones a single echoed phrase, like a ticket subject repeated in its body, "
        "already exceeds Gopher's thresholds)",
    )
    max_symbol_word_ratio: float = Field(
        0.1, ge=0, description="Gopher: max ('#' + ellipsis) count per word"
    )
    min_alpha_word_frac: float = Field(
        0.6, ge=0, le=1, description="min share of words holding a letter (Gopher: 0.8, "
        "lower here: support data is full of order ids, amounts and versions)"
    )
    ratio_min_words: int = Field(
        5, ge=0, description="symbol and alphabetic ratios apply from this many words"
    )
    min_stop_words: int = Field(
        2, ge=0, description="Gopher: English prose holds at least this many stop words"
    )
    stop_words_min_words: int = Field(
        20, ge=0, description="the stop-word rule applies to English texts this long or longer"
    )

    _patterns = field_validator("refusal_patterns")(classmethod(lambda cls, v: check_regexes(v)))


class LanguageConfig(Strict):
    """Language identification (py3langid, offline) of the example's whole content."""

    enabled: bool = True
    allowed: list[str] = Field(
        default_factory=lambda: ["en"], description="ISO 639-1 codes a record may be in"
    )
    min_confidence: float = Field(
        0.5, ge=0, le=1, description="a record is dropped only when its best language is not "
        "allowed and has at least this normalized probability; weaker guesses keep the record "
        "(q_lang_allowed null)"
    )
    min_words: int = Field(
        8, ge=0, description="texts with fewer words are not judged (q_lang stays null): "
        "language ID on a handful of words is a coin toss"
    )


class HarmfulConfig(Strict):
    """Offensive/harmful text: alt-profanity-check's model and/or a word list.

    The default is to flag, not drop (see benchmarks/results/curation_filters.md): the model is
    a bag of words, so on 1,140 real README paragraphs nothing reaches 0.5, but book titles
    and mild opinions ("who wrote The Idiot?", "Moby Dick", "Robots are stupid") score
    0.96-1.0 -- no threshold separates them from abuse. Flagged rows stay, with
    ``q_harmful_flag`` and a count in the stage stats; ``action: drop`` rejects them.
    """

    enabled: bool = True
    model: bool = Field(True, description="score with alt-profanity-check (predict_prob)")
    threshold: float = Field(0.9, ge=0, le=1, description="q_harm at or above this is harmful")
    words: list[str] = Field(
        default_factory=list, description="case-insensitive whole words that set q_harm to 1"
    )
    action: Literal["drop", "flag"] = Field(
        "flag", description="flag (default): keep, set q_harmful_flag, count in the stats; "
        "drop: reject as harmful_content"
    )


class NearDedupConfig(Strict):
    """MinHash + LSH near-duplicate removal (datatrove / NeMo Curator defaults)."""

    enabled: bool = Field(True, description="ignored (off) when curate.dedup is 'none'")
    shingle_words: int = Field(5, ge=1, description="words per shingle")
    num_perm: int = Field(112, ge=2, description="MinHash permutations (= bands x rows)")
    bands: int = Field(14, ge=1)
    rows: int = Field(8, ge=1, description="signature rows per band")
    threshold: float = Field(
        0.8, gt=0, le=1, description="estimated Jaccard a candidate pair must reach"
    )
    keep: Literal["first", "longest", "best_quality"] = Field(
        "first",
        description="which cluster member is kept: first in (source, source_key) order, the "
        "longest, or the highest q_quality",
    )
    seed: int = Field(1, description="seed of the permutation parameters")

    @model_validator(mode="after")
    def _bands_rows(self) -> NearDedupConfig:
        if self.bands * self.rows != self.num_perm:
            raise ValueError(
                f"bands x rows ({self.bands} x {self.rows}) must equal num_perm ({self.num_perm})"
            )
        return self


class EvalSetConfig(Strict):
    path: str = Field(description="JSONL file, relative to the project root")
    fields: list[str] = Field(
        default_factory=lambda: ["prompt"], min_length=1, description="text fields to read"
    )
    id_field: str | None = Field("id", description="field naming the eval item (detail)")


class DecontaminationConfig(Strict):
    """Drop examples sharing a word n-gram with an evaluation set."""

    eval_sets: list[EvalSetConfig] = Field(default_factory=list)
    ngram: int = Field(13, ge=1, description="words per n-gram (lowercased, punctuation-free)")
    min_eval_words: int = Field(
        6,
        ge=1,
        description="eval texts shorter than ngram are matched whole if they have at least "
        "this many words (GPT-3 style); shorter ones are ignored",
    )


class CurateConfig(Strict):
    """Normalization, governance gates, filters, exact and near deduplication, decontamination."""

    normalize_unicode: bool = Field(True, description="NFC-normalize all text fields")
    repair_mojibake: bool = Field(
        True, description="repair UTF-8 read as cp1252/Latin-1 ('Ã©' -> 'é') before NFC"
    )
    strip_markup: bool = Field(True, description="remove HTML tags and decode entities")
    collapse_whitespace: bool = Field(
        True, description="tidy whitespace in prose: line separators, invisible and exotic "
        "spaces, spaces ending a line, runs of blank lines (indentation and spaces inside a "
        "line are kept; code is never touched)"
    )
    code_fields: list[Literal["text", "system", "prompt", "response", "chosen", "rejected",
                              "messages"]] = Field(
        default_factory=list,
        description="fields whose whole content is code (a code-completion dataset): kept byte "
        "for byte except control characters; elsewhere Markdown code (fences, indented "
        "blocks, inline spans) is recognised and kept",
    )
    boilerplate_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BOILERPLATE),
        description="regexes deleted from every text (signatures, 'Sent from my iPhone')",
    )
    dedup: Literal["exact", "none"] = Field(
        "exact", description="exact duplicate removal; 'none' turns near_dedup off too"
    )
    min_chars: int = Field(1, ge=0, description="minimum characters of the main content")
    max_chars: int = Field(100_000, gt=0, description="maximum characters of the main content")
    min_words: int = Field(1, ge=0, description="minimum words of the main content")
    min_turns: int = Field(2, ge=1, description="chat_sft: minimum number of turns")
    require_assistant_last: bool = Field(
        True, description="chat_sft: the last turn must be the assistant's"
    )
    as_of: date | None = Field(
        None,
        description="date retention is measured from; else env FTDATA_AS_OF (YYYY-MM-DD), "
        "else today's UTC date",
    )
    require_consent: bool = Field(
        False, description="also reject records whose consent is unknown (null)"
    )
    quality: QualityConfig = Field(default_factory=QualityConfig)
    language: LanguageConfig = Field(default_factory=LanguageConfig)
    harmful: HarmfulConfig = Field(default_factory=HarmfulConfig)
    near_dedup: NearDedupConfig = Field(default_factory=NearDedupConfig)
    decontamination: DecontaminationConfig = Field(default_factory=DecontaminationConfig)

    _patterns = field_validator("boilerplate_patterns")(
        classmethod(lambda cls, v: check_regexes(v))
    )

    @model_validator(mode="after")
    def _bounds(self) -> CurateConfig:
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) > max_chars ({self.max_chars})")
        return self


# Sub-models of RedactConfig.
ENTITY_PATTERN = r"^[A-Z][A-Z0-9_]*$"
EntityName = Annotated[str, Field(pattern=ENTITY_PATTERN, description="UPPER_SNAKE entity type")]


class RecognizerPattern(Strict):
    """One regular expression of a custom recognizer, with the score a match gets."""

    name: str = Field("pattern", description="label of the pattern (shown in explanations)")
    regex: str = Field(
        description="regular expression run by the linear-time engine (Rust regex syntax: no "
        "look-around or backreferences; matched case-insensitively, ^ and $ at line ends)"
    )
    score: float = Field(0.5, ge=0, le=1, description="score of a match before context")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str) -> str:
        return check_regex(regex)


class CustomRecognizerConfig(Strict):
    """A recognizer declared in YAML: regex patterns and/or an exact-term deny list.

    Context words found near a match raise its score (Presidio's context enhancement), so a
    weak pattern (score below the threshold) is only redacted next to words like "order".
    """

    name: Name = Field(description="recognizer name, unique within the recipe")
    entity: EntityName = Field(description="entity type it reports, e.g. ORDER_NUMBER")
    patterns: list[RecognizerPattern] = Field(default_factory=list)
    context: list[str] = Field(
        default_factory=list, description="words that raise a nearby match's score"
    )
    checksum: Literal["none", "luhn", "mod97"] = Field(
        "none", description="matches failing this checksum are discarded"
    )
    deny_list: list[str] = Field(
        default_factory=list, description="exact terms always reported as this entity"
    )
    deny_list_score: float = Field(1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _something_to_match(self) -> CustomRecognizerConfig:
        if not self.patterns and not self.deny_list:
            raise ValueError("a recognizer needs 'patterns' or 'deny_list'")
        return self


def _check_placeholder(template: str) -> str:
    """A placeholder template may use ``{entity}`` and nothing else (checked as str.format
    would read it, so a stray brace or an unknown field fails validation, not the run)."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"invalid placeholder {template!r}: {exc} (write literal braces as "
                         "'{{' and '}}')") from None
    unknown = sorted({f for f in fields if f != "entity"})
    if unknown:
        raise ValueError(
            f"placeholder {template!r} uses unknown field(s) {unknown}; only {{entity}} is "
            "available"
        )
    return template


class OperatorSpec(Strict):
    """How one entity type is anonymized.

    ``placeholder``: typed placeholder (``<PERSON>``, or ``value`` with ``{entity}``);
    ``mask``: replace all but the last ``chars_to_keep`` characters by ``masking_char``;
    ``pseudonym``: ``<ENTITY_xxxxxxxx>``, a keyed HMAC-SHA256 of the value, so the same value
    gets the same pseudonym across the whole dataset (key from ``pseudonym_key_env``).
    """

    type: Literal["placeholder", "mask", "pseudonym"] = "placeholder"
    value: str | None = Field(None, description="placeholder: replacement text ({entity} allowed)")

    @field_validator("value")
    @classmethod
    def _value_fields(cls, value: str | None) -> str | None:
        return None if value is None else _check_placeholder(value)
    chars_to_keep: int = Field(4, ge=0, description="mask: trailing characters left visible")
    masking_char: str = Field("*", min_length=1, max_length=1, description="mask: character")
    length: int = Field(8, ge=6, le=64, description="pseudonym: hex digits of the HMAC kept")


class RedactConfig(Strict):
    """Presidio detection and anonymization."""

    language: str = "en"
    entities: list[str] = Field(
        default_factory=lambda: [
            "PERSON",
            "EMAIL_ADDRESS",
            "PHONE_NUMBER",
            "CREDIT_CARD",
            "US_SSN",
            "IBAN_CODE",
            "IP_ADDRESS",
            "LOCATION",
            "URL",
            "STREET_ADDRESS",
            "DATE_OF_BIRTH",
        ],
        description="Presidio entity types to detect (custom recognizers' entities are added)",
    )
    phone_regions: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = Field(
        default_factory=lambda: list(DEFAULT_PHONE_REGIONS),
        description="ISO 3166 regions whose national phone layouts libphonenumber checks "
        "(numbers with a '+' country code are found whatever the list)",
    )
    score_threshold: float = Field(0.4, ge=0, le=1)
    placeholder: str = Field(
        "<{entity}>", description="replacement text; {entity} becomes the entity type"
    )

    @field_validator("placeholder")
    @classmethod
    def _placeholder_fields(cls, placeholder: str) -> str:
        return _check_placeholder(placeholder)
    batch_size: int = Field(128, gt=0, description="texts per spaCy nlp.pipe batch")
    ner_scope: Literal["sentence", "text"] = Field(
        "sentence",
        description="what the NER model reads: each distinct sentence or line once per "
        "process (repeated greetings, sign-offs and macros cost nothing after the first), or "
        "each text whole; pattern recognizers and context words read the whole text either way",
    )
    allow_list: list[str] = Field(
        default_factory=list,
        description="exact terms never redacted, e.g. product names the NER model takes for "
        "people ('Firefox', 'Dashboard')",
    )
    recognizers: list[CustomRecognizerConfig] = Field(
        default_factory=list, description="custom regex / deny-list recognizers"
    )
    operators: dict[EntityName, OperatorSpec] = Field(
        default_factory=dict,
        description="entity type -> operator; unlisted entities get the typed placeholder",
    )
    pseudonym_key_env: str = Field(
        "FTDATA_PSEUDONYM_KEY",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="environment variable holding the HMAC key of pseudonym operators",
    )
    max_pii_density: float | None = Field(
        None,
        gt=0,
        description="drop a record (rule pii_density) whose PII density is above this; "
        "null keeps every record",
    )
    pii_density_measure: Literal["entities_per_100_words", "redacted_char_share"] = Field(
        "entities_per_100_words",
        description="density: detected entities per 100 words of the record's texts, or the "
        "share (0-1) of its characters that were redacted",
    )
    workers: int | None = Field(
        None, ge=1, description="analyzer processes; default: the CPU cores available"
    )
    parallel_min_texts: int = Field(
        2000, ge=1, description="fewer distinct texts than this are analyzed in-process"
    )

    @model_validator(mode="after")
    def _consistent(self) -> RedactConfig:
        names = [r.name for r in self.recognizers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate recognizer name(s) {dupes}")
        unknown = sorted(set(self.operators) - set(self.all_entities))
        if unknown:
            raise ValueError(
                f"operators for entity type(s) {unknown} that are neither in 'entities' nor "
                "reported by a custom recognizer"
            )
        return self

    @property
    def all_entities(self) -> list[str]:
        """Configured entity types plus those of custom recognizers, in order, once each."""
        return list(dict.fromkeys([*self.entities, *(r.entity for r in self.recognizers)]))


class LabelRule(Strict):
    label: str
    pattern: str = Field(
        description="regular expression searched in the record's text (Rust regex syntax: "
        "linear time, no look-around or backreferences)"
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        return check_regex(pattern)


class LabelSpec(Strict):
    """One label of the schema; its description goes to the card and the chat instruction."""

    name: str = Field(min_length=1)
    description: str = ""


class FieldCondition(Strict):
    """A condition on one field of the record (e.g. source, a q_* score, rank)."""

    field: str
    op: Literal["eq", "ne", "gt", "ge", "lt", "le", "in", "not_in", "is_null", "not_null",
                "matches"] = "eq"  # fmt: skip
    value: Any = None

    @model_validator(mode="after")
    def _value_fits(self) -> FieldCondition:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a list 'value'")
        if self.op == "matches":
            check_regex(str(self.value))
        if self.op not in ("is_null", "not_null", "in", "not_in") and self.value is None:
            raise ValueError(f"op {self.op!r} needs a 'value'")
        return self


class LabelingFunction(Strict):
    """Votes ``label`` where its keywords or pattern are found in ``field`` and every ``when``
    condition holds; abstains elsewhere."""

    name: Name
    label: str
    keywords: list[str] = Field(
        default_factory=list, description="case-insensitive whole words, any of them"
    )
    pattern: str | None = Field(None, description="regular expression (Rust syntax)")
    field: str = Field("text", description="field the keywords / pattern are searched in")
    when: list[FieldCondition] = Field(default_factory=list)
    weight: float = Field(1.0, gt=0, description="vote weight under vote: weighted")

    _pattern = field_validator("pattern")(
        classmethod(lambda cls, v: None if v is None else check_regex(v))
    )

    @model_validator(mode="after")
    def _votes_somewhere(self) -> LabelingFunction:
        if not (self.keywords or self.pattern or self.when):
            raise ValueError(f"labeling function {self.name!r} needs keywords, pattern or when")
        return self


class AgreementConfig(Strict):
    """How inter-annotator agreement is measured and what happens when it is too low."""

    level: Literal["nominal", "ordinal", "interval"] = Field(
        "nominal",
        description="Krippendorff's alpha level of measurement; ordinal/interval code the "
        "labels by their order in the label set (or use numeric ratings as they are)",
    )
    min_alpha: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="blocking check: the labeled asset fails when Krippendorff's alpha at "
        "'level' is below this (null: no check)",
    )
    review_below: float | None = Field(
        None,
        gt=0,
        le=1,
        description="items whose top label has a smaller share of the votes than this (or a "
        "tie) go to the review queue (Label Studio tasks) instead of training; null: rejected "
        "by min_agreement as before",
    )
    flag_duplicate_conflicts: bool = Field(
        True,
        description="exact or near duplicates (same content_hash / dup_cluster_id) that end "
        "up with different labels go to the review queue",
    )


class PreferenceConfig(Strict):
    """How human judgements of responses become preference pairs."""

    pairs: Literal["all_pairs", "best_vs_worst", "best_vs_rest"] = Field(
        "all_pairs",
        description="all_pairs: every decided pair (K(K-1)/2 per prompt); best_vs_worst: one "
        "pair per prompt; best_vs_rest: the best response against each other one",
    )
    min_margin: float = Field(
        1.0,
        ge=0,
        description="ratings: an annotator's two ratings closer than this are a tie for that pair",
    )
    min_pair_agreement: float = Field(
        0.0,
        ge=0,
        le=1,
        description="drop pairs whose majority has a smaller share of the annotators' votes",
    )
    desirable_at: float = Field(
        4.0, description="ratings on chat data (KTO): a mean rating at least this is desirable"
    )
    undesirable_at: float = Field(
        2.0, description="ratings on chat data (KTO): a mean rating at most this is undesirable; "
        "ratings in between are rejected as neutral"
    )

    @model_validator(mode="after")
    def _thresholds(self) -> PreferenceConfig:
        if self.undesirable_at >= self.desirable_at:
            raise ValueError("undesirable_at must be below desirable_at")
        return self


class TeacherConfig(Strict):
    """Distillation: which teacher outputs answer the prompts, and which outputs are kept."""

    outputs: Name = Field(description="a teacher_outputs source from sources.yaml")
    min_words: int = Field(1, ge=0, description="shorter teacher responses are dropped")
    max_words: int | None = Field(None, gt=0, description="longer teacher responses are dropped")
    min_score: float | None = Field(
        None, description="outputs scored below this are dropped (unscored ones too)"
    )
    drop_refusals: bool = True
    refusal_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_REFUSALS))

    _patterns = field_validator("refusal_patterns")(
        classmethod(lambda cls, v: check_regexes(v))
    )

    @model_validator(mode="after")
    def _bounds(self) -> TeacherConfig:
        if self.max_words is not None and self.max_words < self.min_words:
            raise ValueError("teacher.max_words is below teacher.min_words")
        return self


def _names(value: Any) -> Any:
    """A single source name is accepted where a list of names is expected."""
    return [value] if isinstance(value, str) else value


class LabelConfig(Strict):
    """How records get their labels (classification) or become pairs (preference)."""

    method: Literal["none", "source", "majority_vote", "rules", "rankings", "ratings",
                    "teacher"] = "none"  # fmt: skip
    teacher: TeacherConfig | None = Field(
        None, description="method teacher (distillation): the teacher outputs and their filters"
    )
    annotations: list[Name] | Name = Field(  # a single name is turned into a list (_names)
        default_factory=list,
        description="majority_vote: annotations sources (a name or a list); votes are joined "
        "to records on (source, key)",
    )
    review_answers: Name | None = Field(
        None,
        description="annotations source holding reviewers' answers to the review queue (a "
        "Label Studio export); an answered item takes the reviewers' label and leaves the queue",
    )
    label_set: list[str] = Field(default_factory=list, description="allowed labels")
    labels: list[LabelSpec] = Field(
        default_factory=list,
        description="label schema: names with descriptions (sets label_set); descriptions "
        "feed the card and the instruction of chat exports",
    )
    multi_label: bool = Field(
        False, description="a record may carry several labels (stored sorted, comma-joined)"
    )
    functions: list[LabelingFunction] = Field(
        default_factory=list,
        description="rule labeling functions (keywords / regex / field conditions); used by "
        "method rules, and as the fallback of majority_vote",
    )
    vote: Literal["majority", "weighted"] = Field(
        "majority", description="how labeling functions' votes combine"
    )
    min_votes: int = Field(2, ge=1, description="majority_vote: minimum annotations per item")
    min_agreement: float = Field(
        0.5, ge=0, le=1, description="majority_vote: minimum share of votes for the winner"
    )
    agreement: AgreementConfig = Field(default_factory=AgreementConfig)
    preference: PreferenceConfig = Field(default_factory=PreferenceConfig)
    rules: list[LabelRule] = Field(
        default_factory=list, description="rules, or fallback for majority_vote: first match wins"
    )

    _one_or_many = field_validator("annotations", mode="before")(classmethod(lambda c, v: _names(v)))

    @model_validator(mode="before")
    @classmethod
    def _label_set_from_schema(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("labels"):
            names = [lab["name"] if isinstance(lab, dict) else lab for lab in data["labels"]]
            if data.get("label_set") and list(data["label_set"]) != names:
                raise ValueError("label.label_set and label.labels name different labels")
            data = {**data, "label_set": names}
        return data

    @model_validator(mode="after")
    def _functions_consistent(self) -> LabelConfig:
        names = [f.name for f in self.functions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate labeling function name(s) {dupes}")
        if self.label_set:
            stray = sorted({f.label for f in self.functions} - set(self.label_set))
            if stray:
                raise ValueError(f"labeling functions vote label(s) {stray} outside label_set")
        return self

    @property
    def descriptions(self) -> dict[str, str]:
        return {lab.name: lab.description for lab in self.labels if lab.description}

    @property
    def annotation_sources(self) -> list[str]:
        """Every annotations source the labeled stage reads: votes, then review answers."""
        return list(dict.fromkeys([*self.annotations, *filter(None, [self.review_answers])]))

    @property
    def teacher_sources(self) -> list[str]:
        return [self.teacher.outputs] if self.teacher else []


# Attributes a split can stratify, downsample or slice by. Derived ones: ``length_bucket``
# (tokens, else words, of the example's input), ``language`` (curation's q_lang), ``turns``.
SLICE_ATTRIBUTES = ("label", "source", "language", "length_bucket", "turns")


class LeakageConfig(Strict):
    """What the split checks look for beyond shared groups, and whether a finding blocks."""

    near_duplicate_threshold: float = Field(
        0.5, gt=0, le=1, description="report example pairs across train and validation/test "
        "whose inputs reach this Jaccard similarity (word shingles)"
    )
    shingle_words: int = Field(3, ge=1, description="words per shingle for the similarity")
    near_duplicates: Literal["report", "block"] = Field(
        "report", description="near-duplicate pairs across splits: report (warn) or block"
    )
    prompts: Literal["report", "block"] = Field(
        "block", description="the same first user turn (prompt) in train and test with "
        "different answers: report (warn) or block"
    )
    cross_dataset: Literal["report", "block"] = Field(
        "report", description="a record that is train here and test in another dataset "
        "(or the reverse): report (warn) or block"
    )


class SplitConfig(Strict):
    seed: int = Field(
        0, description="hash seed of the assignment; datasets reading a common source must "
        "use the same seed (and ratios) for a record to fall in the same split in each"
    )
    ratios: dict[Literal["train", "validation", "test"], float] = Field(
        default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1}
    )
    max_records: int | None = Field(
        None, gt=0, description="size target: keep at most this many records (whole groups, "
        "stratified over downsample_by)"
    )
    min_records: int | None = Field(
        None, gt=0, description="size target: fewer records than this fail the blocking "
        "size_target check, which says by how much"
    )
    downsample_by: list[Literal[SLICE_ATTRIBUTES]] = Field(  # type: ignore[valid-type]
        default_factory=list,
        description="over max_records: keep each combination of these attributes at its "
        "target proportion (target_proportions, else its current share)",
    )
    target_proportions: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="attribute -> value -> share when downsampling (missing values share the "
        "rest in proportion)",
    )
    stratify_by: list[Literal[SLICE_ATTRIBUTES]] | None = Field(  # type: ignore[valid-type]
        None, description="split each combination of these attributes at the ratios "
        "(default: label for classification, nothing otherwise)"
    )
    shared_sources: Literal["pin", "stratify"] = Field(
        "pin", description="records of sources other recipes read too keep their hash split "
        "(pin: one split per record across datasets) or are moved by stratification too"
    )
    tolerance: float = Field(
        0.02, ge=0, le=1, description="largest accepted |actual - configured| share per split "
        "(the card reports it; the split_ratios check warns beyond it)"
    )
    group_near_duplicates: float | None = Field(
        0.5, gt=0, le=1, description="examples whose inputs reach this Jaccard similarity "
        "(word shingles) are grouped into one split, most similar first (null: off)"
    )
    group_prompts: bool = Field(
        True, description="examples with the same first user turn (normalized) share a split"
    )
    max_group_fraction: float = Field(
        0.02, gt=0, le=1, description="similarity grouping never builds a group larger than "
        "this share of the records (templated data would chain into one giant group); "
        "pairs left apart are reported by the leakage checks"
    )
    min_eval_records: int = Field(
        50, ge=0, description="the card flags a validation/test split with fewer records"
    )
    min_eval_groups: int = Field(
        20, ge=0, description="... or fewer groups (prompts, conversations)"
    )
    leakage: LeakageConfig = Field(default_factory=LeakageConfig)

    @model_validator(mode="after")
    def _size_bounds(self) -> SplitConfig:
        if self.min_records and self.max_records and self.min_records > self.max_records:
            raise ValueError(
                f"min_records ({self.min_records}) > max_records ({self.max_records})"
            )
        for attr, shares in self.target_proportions.items():
            if attr not in self.downsample_by:
                raise ValueError(f"target_proportions.{attr}: not in downsample_by")
            if any(v < 0 for v in shares.values()) or sum(shares.values()) > 1 + 1e-6:
                raise ValueError(f"target_proportions.{attr}: shares must be >= 0, sum <= 1")
        return self

    @field_validator("ratios")
    @classmethod
    def _sum_to_one(cls, ratios: dict[str, float]) -> dict[str, float]:
        if any(v < 0 for v in ratios.values()):
            raise ValueError("ratios must be >= 0")
        total = sum(ratios.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"ratios must sum to 1, got {total:g}")
        return {s: float(ratios.get(s, 0.0)) for s in SPLITS}


class TokensConfig(Strict):
    """Token counts with a real BPE tokenizer from installed files, and the context limit.

    ``tokenizer``: ``o200k_base`` / ``cl100k_base`` (OpenAI's encodings, bundled by the
    ``bpe-openai`` package) or the path of a Hugging Face ``tokenizer.json`` (Llama, Qwen,
    Mistral...; a ``tokenizer_config.json`` beside it with a ``chat_template`` is used to
    render chat examples exactly). Nothing is downloaded.
    """

    tokenizer: str = Field("o200k_base", description="o200k_base | cl100k_base | path/to/tokenizer.json")
    max_tokens: int | None = Field(
        None, gt=0, description="longest example (sequence the trainer sees) allowed"
    )
    policy: Literal["drop", "truncate"] = Field(
        "drop", description="over max_tokens: drop the example (rule over_max_tokens), or "
        "truncate: chat drops its oldest turns, keeping the system prompt and the last "
        "assistant turn; pre-training text is cut; other kinds are dropped"
    )
    epochs: int = Field(3, ge=1, description="training epochs, for the training-cost line")
    per_message: int | None = Field(
        None, ge=0, description="chat template tokens around each message (default: 3 for "
        "OpenAI encodings; from the chat template for tokenizer.json, else 0)"
    )
    per_example: int | None = Field(
        None, ge=0, description="chat template tokens per example (default: 3 for OpenAI "
        "encodings, the reply priming)"
    )


class EdgeCaseRule(Strict):
    """Inputs matching ``pattern`` are edge cases of kind ``name``; train needs ``min_share``."""

    name: Name
    pattern: str = Field(description="regular expression searched in the example's input")
    min_share: float = Field(0.0, ge=0, le=1, description="minimum share of train examples")

    _pattern = field_validator("pattern")(classmethod(lambda cls, v: check_regex(v)))


class ReferenceConfig(Strict):
    """How the dataset is compared with a sample of production inputs (a ``reference`` source).

    Distribution: PSI and Jensen-Shannon divergence (base 2, 0..1) of each slice attribute
    between the reference and the train and test splits. Coverage: share of reference inputs
    whose nearest train input (TF-IDF cosine) reaches ``coverage_threshold``.
    """

    source: Name = Field(description="a source with role: reference")
    slices: list[Literal[SLICE_ATTRIBUTES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["length_bucket"],
        description="attributes compared (label: the reference's mapped label)",
    )
    psi_warn: float = Field(0.1, ge=0, description="PSI at or above this: warn")
    psi_error: float = Field(0.25, ge=0, description="PSI at or above this: error")
    js_warn: float = Field(0.1, ge=0, le=1, description="JS divergence at or above this: warn")
    js_error: float = Field(0.2, ge=0, le=1, description="JS divergence at or above this: error")
    coverage_threshold: float = Field(
        0.3, gt=0, le=1, description="cosine (TF-IDF) a train input must reach to cover a "
        "reference input"
    )
    min_coverage: float = Field(0.0, ge=0, le=1, description="coverage below this: error")
    least_covered: int = Field(10, ge=0, description="reference ids listed in the card")
    edge_cases: list[EdgeCaseRule] = Field(default_factory=list)
    block: bool = Field(False, description="errors block downstream assets (else reported)")


class BiasAttribute(Strict):
    """A sensitive attribute as term lists per group (e.g. gender: female/male terms)."""

    groups: dict[str, list[str]] = Field(
        description="group -> case-insensitive whole words or phrases marking it", min_length=2
    )
    max_ratio: float = Field(
        3.0, ge=1, description="largest allowed ratio between the most and least mentioned "
        "groups among examples mentioning any (per split)"
    )
    min_mentions: int = Field(
        20, ge=0, description="splits with fewer examples mentioning a group are reported, "
        "not judged"
    )


class BiasConfig(Strict):
    """Balance over sensitive attributes in the example inputs and answers, per split."""

    attributes: dict[Name, BiasAttribute] = Field(default_factory=dict)
    block: bool = Field(False, description="an imbalance blocks downstream assets")


# The one list of export formats is the registry in ftdata_pipeline.formats.
FORMATS = FORMAT_NAMES


class ExportConfig(Strict):
    formats: list[Literal[FORMATS]] = Field(min_length=1)  # type: ignore[valid-type]
    instruction: str | None = Field(
        None,
        description="classification in a chat format: the instruction the user turn carries "
        "before the text; the label is the assistant's answer (default: 'Classify the "
        "following text. Answer with exactly one label from: <label_set>.')",
    )
    max_drop_fraction: float | None = Field(
        0.5,
        ge=0,
        le=1,
        description="size guard: the export may not have fewer records than the published "
        "one by more than this share (0 records always fails); null disables the share "
        "check. FTDATA_ALLOW_SHRINK=<dataset>[,...] (or '*') accepts an intended shrink for "
        "one run; the previous export is kept otherwise",
    )


# The three RLHF steps, in the order their shares are cut (see stages/split/rlhf.py).
RLHF_STEPS = ("sft", "reward", "rl")


def _formats_of(names: list[str], key: str, fits: str, ok) -> list[str]:
    bad = [n for n in names if not ok(FORMATS_BY_NAME[n])]
    if bad:
        raise ValueError(f"{key}: {', '.join(bad)} cannot express {fits}")
    return names


class RlhfConfig(Strict):
    """Preference data split into the three RLHF steps on disjoint prompts: supervised
    fine-tuning on the best response, reward modelling / DPO on the pairs, online RL (PPO,
    GRPO) on the prompts alone. Each prompt (with every prompt of its split group) goes to
    exactly one step; inside a step the usual train/validation/test split applies."""

    sft: float = Field(ge=0, le=1, description="share of the prompts for supervised "
                       "fine-tuning: prompt + best response as a chat example")
    reward: float = Field(ge=0, le=1, description="share of the prompts for reward "
                          "modelling / DPO: their pairs in the recipe's exports.formats")
    rl: float = Field(ge=0, le=1, description="share of the prompts for online RL (PPO, "
                      "GRPO): the prompt alone")
    tolerance: float = Field(
        0.05, ge=0, le=1, description="largest accepted |actual - configured| prompt share "
        "per step (the card reports it)"
    )
    sft_formats: list[Literal[FORMATS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["trl_messages"], min_length=1,
        description="chat formats of the SFT step (default: TRL messages)",
    )
    rl_formats: list[Literal[FORMATS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["trl_prompt_only"], min_length=1,
        description="prompt-only formats of the RL step (default: TRL prompt-only)",
    )

    _sft = field_validator("sft_formats")(classmethod(lambda cls, v: _formats_of(
        v, "rlhf.sft_formats", "a chat example", lambda f: f.CHAT and "chat_sft" in f.KINDS)))
    _rl = field_validator("rl_formats")(classmethod(lambda cls, v: _formats_of(
        v, "rlhf.rl_formats", "a prompt alone", lambda f: getattr(f, "PROMPT_ONLY", False))))

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> RlhfConfig:
        total = self.sft + self.reward + self.rl
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"rlhf: shares sft + reward + rl must sum to 1, got {total:g}")
        return self

    def shares(self) -> dict[str, float]:
        return {step: float(getattr(self, step)) for step in RLHF_STEPS}


class ExpectationConfig(Strict):
    """One Great Expectations expectation, by class or snake_case name, plus its arguments."""

    expectation: str = Field(
        description="GX expectation, e.g. ExpectColumnValuesToNotBeNull or "
        "expect_column_values_to_not_be_null"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict)
    severity: Literal["error", "warn"] = "error"


STAGES = ("raw", "curated", "redacted", "labeled", "split")


CLASSIFICATION_LEVELS = ("public", "internal", "confidential", "restricted")


class GovernanceConfig(Strict):
    """What this dataset is allowed to use: licences and data classification."""

    allowed_licences: list[str] | None = Field(
        None,
        description="licences a source may carry to be used (None: any licence); a source "
        "with another licence is refused",
    )
    max_classification: Literal[CLASSIFICATION_LEVELS] = Field(  # type: ignore[valid-type]
        "restricted",
        description="highest source classification this dataset may read "
        "(public < internal < confidential < restricted)",
    )


class ScheduleConfig(Strict):
    cron: str = Field(description="cron expression, e.g. '0 3 * * *'")
    timezone: str = "UTC"


class RecipeConfig(Strict):
    """A fine-tuning dataset: which sources, what each stage does, how it is exported."""

    name: Name
    description: str = ""
    owner: str | None = Field(
        None,
        description="who answers for this dataset (e-mail or team:<name>); default: the owners "
        "of its sources",
    )
    kind: Literal[KINDS]  # type: ignore[valid-type]
    sources: list[Name] = Field(min_length=1)
    system_prompt: str | None = Field(None, description="chat_sft: system message to prepend")
    curate: CurateConfig = CurateConfig()
    redact: RedactConfig = RedactConfig()
    label: LabelConfig = LabelConfig()
    split: SplitConfig = SplitConfig()
    tokens: TokensConfig = TokensConfig()
    reference: ReferenceConfig | None = Field(
        None, description="compare the dataset with a sample of production inputs"
    )
    bias: BiasConfig = BiasConfig()
    exports: ExportConfig
    rlhf: RlhfConfig | None = Field(
        None, description="preference: split the prompts into the three RLHF steps (SFT, "
        "reward/DPO, RL), each exported in its own formats under <step>/"
    )
    governance: GovernanceConfig = GovernanceConfig()
    schedule: ScheduleConfig | None = None
    expectations: dict[Literal["curated", "redacted", "labeled", "split"], list[ExpectationConfig]] = (
        Field(default_factory=dict, description="extra GX expectations per stage")
    )

    @model_validator(mode="after")
    def _label_method_fits_kind(self) -> RecipeConfig:
        method = self.label.method
        if self.kind == "classification" and method not in ("source", "majority_vote", "rules"):
            raise ValueError(
                "label.method: a classification dataset needs 'source', 'majority_vote' or 'rules'"
            )
        if self.kind == "preference" and method not in ("rankings", "ratings", "source"):
            raise ValueError(
                "label.method: a preference dataset needs 'rankings', 'ratings' or 'source'"
            )
        if (self.kind == "distillation") != (method == "teacher"):
            raise ValueError(
                "label.method: a distillation dataset takes method 'teacher', and only it"
            )
        if method == "teacher" and self.label.teacher is None:
            raise ValueError("label.teacher: method 'teacher' needs the teacher outputs source")
        if method == "rankings" and self.kind != "preference":
            raise ValueError("label.method: 'rankings' makes pairs for a preference dataset")
        if method == "ratings" and self.kind not in ("preference", "chat_sft"):
            raise ValueError(
                "label.method: 'ratings' makes pairs (preference) or desirable/undesirable "
                "labels (chat_sft, for KTO)"
            )
        if method == "ratings" and not self.label.annotations:
            raise ValueError("label.annotations: 'ratings' needs an annotations source of ratings")
        if method == "majority_vote" and not self.label.annotations:
            raise ValueError("label.annotations: majority_vote needs an annotations source")
        if method == "rules" and not (self.label.rules or self.label.functions):
            raise ValueError("label.rules: method 'rules' needs rules or functions")
        if self.kind == "classification" and not self.label.label_set:
            raise ValueError("label.label_set: a classification dataset needs its label set")
        if self.rlhf is not None and self.kind != "preference":
            raise ValueError("rlhf: the RLHF steps split the prompts of a preference dataset")
        return self


class ProjectConfig(Strict):
    """Everything loaded from the config directory."""

    sources: dict[str, AnySourceConfig]
    recipes: dict[str, RecipeConfig]
    root: str = Field(description="project root that relative paths are resolved against")

    def readers(self) -> dict[str, set[str]]:
        """Source name -> the recipes reading it."""
        out: dict[str, set[str]] = {}
        for recipe in self.recipes.values():
            for src in recipe.sources:
                out.setdefault(src, set()).add(recipe.name)
        return out
