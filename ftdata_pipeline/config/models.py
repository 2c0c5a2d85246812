"""Typed, documented models of ``configs/sources.yaml`` and ``configs/datasets/<name>.yaml``.

Every model forbids unknown keys, so a typo in YAML is an error rather than a silently ignored
setting. Secrets (database URLs with passwords) come from environment variables named in the
config (``url_env``), never from the YAML itself.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ftdata_pipeline.records import ANNOTATION_MAPPABLE_FIELDS, KINDS, MAPPABLE_FIELDS, SPLITS

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


class SourceConfig(Strict):
    """One raw source: where it lives, how it maps onto the canonical record, who owns it."""

    description: str = ""
    kind: Literal["file", "sql"]
    role: Literal["records", "annotations"] = Field(
        "records",
        description="records become training candidates; annotations are human labels for "
        "records of another source (item_key, annotator, label)",
    )
    # kind: file
    path: str | None = Field(None, description="file path, relative to the project root")
    format: Literal["jsonl", "csv", "parquet"] | None = None
    # kind: sql
    url: str | None = Field(
        None, description="SQLAlchemy URL without secrets (relative sqlite paths allowed)"
    )
    url_env: str | None = Field(
        None, description="environment variable holding the SQLAlchemy URL; wins over url"
    )
    query: str | None = None
    # mapping onto the canonical record
    key: str | None = Field(
        None, description="column holding the row's unique key (default: the row number)"
    )
    mapping: dict[str, str] = Field(
        default_factory=dict,
        description="canonical field -> source column, or a template such as '{subject}: {body}'",
    )
    turns: TurnsMapping | None = None
    # governance facts
    owner: str
    licence: str
    classification: Literal["public", "internal", "confidential", "restricted"]
    contains_pii: bool
    retention_days: int | None = Field(None, gt=0)

    @field_validator("mapping")
    @classmethod
    def _known_targets(cls, mapping: dict[str, str]) -> dict[str, str]:
        allowed = set(MAPPABLE_FIELDS) | set(ANNOTATION_MAPPABLE_FIELDS)
        unknown = sorted(set(mapping) - allowed)
        if unknown:
            raise ValueError(
                f"unknown canonical field(s) {unknown}; allowed: {sorted(allowed)}"
            )
        return mapping

    @model_validator(mode="after")
    def _kind_fields(self) -> SourceConfig:
        if self.kind == "file":
            if not self.path or not self.format:
                raise ValueError("a file source needs 'path' and 'format'")
            if self.query or self.url or self.url_env:
                raise ValueError("a file source takes no 'url', 'url_env' or 'query'")
        else:
            if not self.query or not (self.url or self.url_env):
                raise ValueError("a sql source needs 'query' and 'url' or 'url_env'")
            if self.path or self.format:
                raise ValueError("a sql source takes no 'path' or 'format'")
        if self.role == "annotations":
            missing = [f for f in ANNOTATION_MAPPABLE_FIELDS if f not in self.mapping]
            if missing:
                raise ValueError(f"an annotations source must map {missing}")
            if self.turns:
                raise ValueError("an annotations source takes no 'turns'")
        else:
            stray = [f for f in ANNOTATION_MAPPABLE_FIELDS if f in self.mapping and f != "label"]
            if stray:
                raise ValueError(f"{stray} can only be mapped by an annotations source")
        return self


class SourcesFile(Strict):
    sources: dict[Name, SourceConfig]


# --------------------------------------------------------------------------------------------
# dataset recipes
# --------------------------------------------------------------------------------------------


class CurateConfig(Strict):
    """Normalization, exact deduplication and length filters."""

    normalize_unicode: bool = Field(True, description="NFC-normalize all text fields")
    strip_markup: bool = Field(True, description="remove HTML tags and decode entities")
    collapse_whitespace: bool = True
    dedup: Literal["exact", "none"] = Field("exact", description="exact duplicate removal")
    min_chars: int = Field(1, ge=0, description="minimum characters of the main content")
    max_chars: int = Field(100_000, gt=0, description="maximum characters of the main content")
    min_words: int = Field(1, ge=0, description="minimum words of the main content")
    min_turns: int = Field(2, ge=1, description="chat_sft: minimum number of turns")
    require_assistant_last: bool = Field(
        True, description="chat_sft: the last turn must be the assistant's"
    )

    @model_validator(mode="after")
    def _bounds(self) -> CurateConfig:
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) > max_chars ({self.max_chars})")
        return self


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
        ],
        description="Presidio entity types to detect",
    )
    score_threshold: float = Field(0.4, ge=0, le=1)
    placeholder: str = Field(
        "<{entity}>", description="replacement text; {entity} becomes the entity type"
    )
    batch_size: int = Field(128, gt=0, description="texts per spaCy nlp.pipe batch")
    allow_list: list[str] = Field(
        default_factory=list,
        description="exact terms never redacted, e.g. product names the NER model takes for "
        "people ('Firefox', 'Dashboard')",
    )


class LabelRule(Strict):
    label: str
    pattern: str = Field(description="regular expression searched in the record's text")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return pattern


class LabelConfig(Strict):
    """How records get their labels (classification) or become pairs (preference)."""

    method: Literal["none", "source", "majority_vote", "rules", "rankings"] = "none"
    annotations: Name | None = Field(
        None, description="majority_vote: name of an annotations source"
    )
    label_set: list[str] = Field(default_factory=list, description="allowed labels")
    min_votes: int = Field(2, ge=1, description="majority_vote: minimum annotations per item")
    min_agreement: float = Field(
        0.5, ge=0, le=1, description="majority_vote: minimum share of votes for the winner"
    )
    rules: list[LabelRule] = Field(
        default_factory=list, description="rules, or fallback for majority_vote: first match wins"
    )


class SplitConfig(Strict):
    seed: int = 0
    ratios: dict[Literal["train", "validation", "test"], float] = Field(
        default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1}
    )
    max_records: int | None = Field(
        None, gt=0, description="size target: keep at most this many records (sampled)"
    )

    @field_validator("ratios")
    @classmethod
    def _sum_to_one(cls, ratios: dict[str, float]) -> dict[str, float]:
        if any(v < 0 for v in ratios.values()):
            raise ValueError("ratios must be >= 0")
        total = sum(ratios.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"ratios must sum to 1, got {total:g}")
        return {s: float(ratios.get(s, 0.0)) for s in SPLITS}


FORMATS = (
    "openai_chat",
    "openai_preference",
    "trl_messages",
    "trl_prompt_completion",
    "trl_preference",
    "trl_text",
    "alpaca",
    "sharegpt",
    "bedrock_prompt_completion",
    "bedrock_conversation",
    "classification_jsonl",
)


class ExportConfig(Strict):
    formats: list[Literal[FORMATS]] = Field(min_length=1)  # type: ignore[valid-type]


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
    kind: Literal[KINDS]  # type: ignore[valid-type]
    sources: list[Name] = Field(min_length=1)
    system_prompt: str | None = Field(None, description="chat_sft: system message to prepend")
    curate: CurateConfig = CurateConfig()
    redact: RedactConfig = RedactConfig()
    label: LabelConfig = LabelConfig()
    split: SplitConfig = SplitConfig()
    exports: ExportConfig
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
        if self.kind == "preference" and method not in ("rankings", "source"):
            raise ValueError("label.method: a preference dataset needs 'rankings' or 'source'")
        if method == "majority_vote" and not self.label.annotations:
            raise ValueError("label.annotations: majority_vote needs an annotations source")
        if method == "rules" and not self.label.rules:
            raise ValueError("label.rules: method 'rules' needs at least one rule")
        if self.kind == "classification" and not self.label.label_set:
            raise ValueError("label.label_set: a classification dataset needs its label set")
        return self


class ProjectConfig(Strict):
    """Everything loaded from the config directory."""

    sources: dict[str, SourceConfig]
    recipes: dict[str, RecipeConfig]
    root: str = Field(description="project root that relative paths are resolved against")
