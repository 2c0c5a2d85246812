"""The canonical record: the one schema every source maps onto and every exporter reads.

A record is one training-example candidate. Which fields are filled depends on the dataset
kind (see ``KIND_REQUIRED_FIELDS``); all others stay null. Provenance (``source``,
``source_key``) is set by the raw stage and carried unchanged to the exports, so every exported
example can be traced back to the row it came from.
"""

from __future__ import annotations

import hashlib

import polars as pl

MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})

# Provenance and identity.
RECORD_ID = "record_id"  # stable id: hash of (source, source_key); pairs hash their parts
SOURCE = "source"  # source name from sources.yaml
SOURCE_KEY = "source_key"  # the row's key in that source (primary key, or row number)
PROVENANCE_COLUMNS = (RECORD_ID, SOURCE, SOURCE_KEY)

RECORD_SCHEMA: dict[str, pl.DataType] = {
    RECORD_ID: pl.String,
    SOURCE: pl.String,
    SOURCE_KEY: pl.String,
    # Grouping: records sharing a conversation (or a prompt, for rankings) never cross splits.
    "conversation_id": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    # Content. Text fields are listed in TEXT_FIELDS; every one of them is normalized and redacted.
    "text": pl.String,  # classification input, pre-training document
    "system": pl.String,  # system prompt of a chat example
    "messages": pl.List(MESSAGE),  # chat turns, role in {system, user, assistant}
    "prompt": pl.String,  # instruction / user request
    "response": pl.String,  # a response to the prompt (SFT target, or one ranked response)
    "chosen": pl.String,  # preference pair: preferred response
    "rejected": pl.String,  # preference pair: dispreferred response
    # Labels and ratings.
    "label": pl.String,
    "rank": pl.Int32,  # 1 = best, among the responses ranked for one prompt
    # Governance: the data subject's consent to training use (null = unknown; false = refused).
    "consent": pl.Boolean,
    # Curation bookkeeping kept for downstream stages.
    "dup_cluster_id": pl.String,  # record_id of the cluster representative (exact/near dups)
    "content_hash": pl.String,  # hash of the normalized content, used for exact dedup
    "label_agreement": pl.Float64,  # share of annotators who voted for the final label
    "split": pl.String,  # train | validation | test
}

TEXT_FIELDS = ("text", "system", "prompt", "response", "chosen", "rejected")
MESSAGE_FIELDS = ("messages",)

# Fields a source may map onto (the rest are computed by stages).
MAPPABLE_FIELDS = (
    "conversation_id",
    "created_at",
    "text",
    "system",
    "prompt",
    "response",
    "chosen",
    "rejected",
    "label",
    "rank",
    "consent",
)

# Annotations (human labels for records of another source) use their own small schema.
ANNOTATION_SCHEMA: dict[str, pl.DataType] = {
    SOURCE: pl.String,  # the annotation source's own name
    SOURCE_KEY: pl.String,  # the annotation row's key
    "item_key": pl.String,  # source_key of the annotated record in the target source
    "annotator": pl.String,
    "label": pl.String,
    # Joined with item_key on the record's (source, source_key): never on the key alone.
    "item_source": pl.String,  # source name of the annotated record
    "rating": pl.Float64,  # a numeric rating of the item (e.g. 1-5 stars)
    "rank": pl.Int32,  # the item's rank among the responses to one prompt, 1 = best
    "status": pl.String,  # submitted (default) | draft | discarded | cancelled
    # Ranks compare within one judgement (a ranking, a pairwise choice); default: the
    # annotator's answers on one prompt.
    "judgement": pl.String,
}
ANNOTATION_MAPPABLE_FIELDS = ("item_key", "annotator", "label", "item_source", "rating", "rank",
                              "status", "judgement")  # fmt: skip
ANNOTATION_REQUIRED_FIELDS = ("item_key", "annotator")
ANNOTATION_ANSWER_FIELDS = ("label", "rating", "rank")  # an annotation maps at least one

# Reject records: what a stage dropped and why. Full rejected rows are stored beside this
# index (see orchestration.storage); the index itself carries no content.
REJECT_SCHEMA: dict[str, pl.DataType] = {
    RECORD_ID: pl.String,
    SOURCE: pl.String,
    SOURCE_KEY: pl.String,
    "stage": pl.String,
    "rule": pl.String,
    "score": pl.Float64,
    "detail": pl.String,
}

# Teacher-model outputs for distillation: one response per (prompt record, teacher) row.
TEACHER_SCHEMA: dict[str, pl.DataType] = {
    SOURCE: pl.String,  # the teacher-outputs source's own name
    SOURCE_KEY: pl.String,
    "item_source": pl.String,  # source of the prompt record the output answers
    "item_key": pl.String,  # source_key of that prompt record
    "teacher_model": pl.String,
    "teacher_version": pl.String,
    "response": pl.String,
    "score": pl.Float64,  # optional quality score of the output (e.g. a judge's)
}
TEACHER_MAPPABLE_FIELDS = tuple(f for f in TEACHER_SCHEMA if f not in (SOURCE, SOURCE_KEY))
TEACHER_REQUIRED_FIELDS = ("item_key", "teacher_model", "response")

KINDS = ("chat_sft", "classification", "preference", "pretraining", "distillation")

# What a record must carry, per dataset kind, once it reaches the split stage.
KIND_REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "chat_sft": ("messages",),
    "classification": ("text", "label"),
    "preference": ("prompt", "chosen", "rejected"),
    "pretraining": ("text",),
    "distillation": ("messages",),  # prompts answered by a teacher, exported as SFT
}

SPLITS = ("train", "validation", "test")


def stable_id(*parts: str) -> str:
    """Deterministic 16-hex-digit id from string parts (used for record ids outside Polars)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:16]


def sha256_hex(expr: pl.Expr, length: int = 64) -> pl.Expr:
    """sha256 hex digest of a string column (truncated to ``length``); null stays null.

    Polars' own ``hash`` is not guaranteed stable across versions, and ids and content hashes
    must outlive upgrades, so this hashes with sha256 in one ``map_batches`` over the column.
    """
    return expr.map_batches(
        lambda s: pl.Series(
            [
                None if v is None else hashlib.sha256(v.encode("utf-8")).hexdigest()[:length]
                for v in s.to_list()
            ],
            dtype=pl.String,
        ),
        return_dtype=pl.String,
    )


def record_id_expr(source: pl.Expr, source_key: pl.Expr) -> pl.Expr:
    """Vectorized ``stable_id(source, source_key)``."""
    return sha256_hex(pl.concat_str([source, source_key], separator="\x1f"), 16)


def empty_records() -> pl.DataFrame:
    return pl.DataFrame(schema=RECORD_SCHEMA)


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)


def row_count(df: pl.DataFrame | pl.LazyFrame) -> int:
    """Rows of a frame; of a LazyFrame (a scan) counted without reading the rows."""
    if isinstance(df, pl.DataFrame):
        return df.height
    return int(df.select(pl.len()).collect().item())


def conform(df: pl.DataFrame | pl.LazyFrame, schema: dict[str, pl.DataType] = RECORD_SCHEMA):
    """Add missing canonical columns as nulls, cast to the canonical types, order columns.

    Extra columns (scores kept by stages for re-tuning) are kept after the canonical ones.
    """
    names = df.collect_schema().names() if isinstance(df, pl.LazyFrame) else df.columns
    exprs = [
        (pl.col(name).cast(dtype) if name in names else pl.lit(None, dtype=dtype)).alias(name)
        for name, dtype in schema.items()
    ]
    extras = [pl.col(n) for n in names if n not in schema]
    return df.select(exprs + extras)


# What each column means, shown beside the column schema in the Dagster UI.
COLUMN_DESCRIPTIONS: dict[str, str] = {
    RECORD_ID: "stable id: hash of (source, source_key); pairs hash their parts",
    SOURCE: "source name from sources.yaml",
    SOURCE_KEY: "the row's key in that source (primary key, or row number)",
    "conversation_id": "records of one conversation (or one ranked prompt) never cross splits",
    "created_at": "creation time of the source row (UTC)",
    "text": "classification input or pre-training document",
    "system": "system prompt of a chat example",
    "messages": "chat turns; role in {system, user, assistant}",
    "prompt": "instruction / user request",
    "response": "a response to the prompt (SFT target, or one ranked response)",
    "chosen": "preference pair: preferred response",
    "rejected": "preference pair: dispreferred response",
    "label": "class label (classification) or the label voted by annotators",
    "rank": "1 = best, among the responses ranked for one prompt",
    "consent": "the data subject's consent to training use (null = unknown; false = refused)",
    "dup_cluster_id": "record_id of the cluster representative (exact and near duplicates)",
    "content_hash": "hash of the normalized content, used for exact dedup",
    "label_agreement": "share of annotators who voted for the final label",
    "split": "train | validation | test",
    "rlhf_step": "RLHF step of the record's prompt: sft | reward | rl (recipes with rlhf)",
    "stage": "stage that dropped the record",
    "rule": "rule that dropped it",
    "score": "the rule's score for the record",
    "detail": "more about the decision (never a raw value)",
}
