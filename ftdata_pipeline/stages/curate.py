"""The curated stage: shape records for the dataset kind, normalize text, filter, exact-dedup.

Every check is a named ``Filter`` (datatrove style); its name is the reject ``rule`` and the
key of its counts in ``stats["steps"]``. Filters run in order and a record is rejected by the
first one it fails, so ``rows_in == rows_kept + rows_rejected`` by construction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import polars as pl

from ftdata_pipeline.config.models import CurateConfig, RecipeConfig
from ftdata_pipeline.records import (
    MESSAGE,
    RECORD_ID,
    SOURCE,
    SOURCE_KEY,
    TEXT_FIELDS,
    conform,
)
from ftdata_pipeline.stages.base import StageResult, concat_rejects, reject

STAGE = "curated"

# Working columns; dropped before anything leaves the stage.
_CHARS, _WORDS, _TURNS, _PROMPT_CHARS = "_chars", "_words", "_turns", "_prompt_chars"
_CHANGED = "_normalized_changed"
_FAILS, _SCORE, _DETAIL = "_fails", "_score", "_detail"
_WORKING = (_CHARS, _WORDS, _TURNS, _PROMPT_CHARS, _CHANGED, _FAILS, _SCORE, _DETAIL)

# Markup. Rust regex has no backreferences, hence one pattern per content-bearing element.
_SCRIPT_STYLE = (r"(?is)<script\b[^>]*>.*?</script\s*>", r"(?is)<style\b[^>]*>.*?</style\s*>")
_LINE_BREAK = r"(?i)<br\s*/?>|</(?:li|tr)\s*>"
_BLOCK_END = r"(?i)</(?:p|div|h[1-6]|blockquote|pre|ul|ol|table|section|article)\s*>"
# Only things that look like tags: "a < b and c > d" must survive.
_TAG = r"(?s)<!--.*?-->|</?[A-Za-z][^<>]*>|<![A-Za-z][^<>]*>"
# Decoded in one pass so "&amp;lt;" becomes the literal text "&lt;", not "<".
_ENTITIES = {
    "&amp;": "&",
    "&lt;": "<",
    "&gt;": ">",
    "&quot;": '"',
    "&#34;": '"',
    "&#39;": "'",
    "&apos;": "'",
    "&nbsp;": " ",
    "&#160;": " ",
}

# Whitespace. Tabs and the Unicode space separators (NBSP, thin, ideographic, ...) become one
# plain space; zero-width space and BOM are invisible noise. ZWJ is kept: emoji need it.
_INLINE_SPACE = "[\t\x0b\x0c \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+"
_ZERO_WIDTH = "[\u200b\ufeff]"
_LINE_SEPARATOR = "\r\n?|[\u2028\u2029\x85]"


def normalize_text(expr: pl.Expr, cfg: CurateConfig) -> pl.Expr:
    """Vectorized text normalization per the recipe's flags (null stays null)."""
    if cfg.strip_markup:
        for pattern in _SCRIPT_STYLE:
            expr = expr.str.replace_all(pattern, "")
        expr = (
            expr.str.replace_all(_LINE_BREAK, "\n")
            .str.replace_all(_BLOCK_END, "\n\n")
            .str.replace_all(_TAG, "")
            .str.replace_many(list(_ENTITIES), list(_ENTITIES.values()))
        )
    if cfg.normalize_unicode:
        expr = expr.str.normalize("NFC")
    if cfg.collapse_whitespace:
        expr = (
            expr.str.replace_all(_LINE_SEPARATOR, "\n")
            .str.replace_all(_ZERO_WIDTH, "")
            .str.replace_all(_INLINE_SPACE, " ")
            .str.replace_all(r" ?\n ?", "\n")
            .str.replace_all(r"\n{3,}", "\n\n")
            .str.strip_chars()
        )
    return expr


def _normalize_messages(expr: pl.Expr, cfg: CurateConfig) -> pl.Expr:
    return expr.list.eval(
        pl.element().struct.with_fields(normalize_text(pl.field("content"), cfg))
    )


def _shape(lf: pl.LazyFrame, recipe: RecipeConfig) -> pl.LazyFrame:
    """Fill the fields the kind's exporters read, from what the sources provided."""
    if recipe.kind != "chat_sft":
        return lf
    from_pair = pl.concat_list(
        [
            pl.struct(role=pl.lit("user"), content=pl.col("prompt")),
            pl.struct(role=pl.lit("assistant"), content=pl.col("response")),
        ]
    ).cast(pl.List(MESSAGE))
    build = (
        pl.col("messages").is_null() & pl.col("prompt").is_not_null() & pl.col("response").is_not_null()
    )
    exprs = [pl.when(build).then(from_pair).otherwise(pl.col("messages")).alias("messages")]
    if recipe.system_prompt is not None:
        # A system prompt the source itself carries is more specific than the recipe default.
        exprs.append(pl.col("system").fill_null(pl.lit(recipe.system_prompt)).alias("system"))
    return lf.with_columns(exprs)


def _normalize(lf: pl.LazyFrame, cfg: CurateConfig) -> pl.LazyFrame:
    fields = [*TEXT_FIELDS, "messages"]
    new = {f: normalize_text(pl.col(f), cfg) for f in TEXT_FIELDS}
    new["messages"] = _normalize_messages(pl.col("messages"), cfg)
    return (
        lf.with_columns(expr.alias(f"_new_{f}") for f, expr in new.items())
        .with_columns(
            pl.any_horizontal(pl.col(f).ne_missing(pl.col(f"_new_{f}")) for f in fields).alias(
                _CHANGED
            )
        )
        .with_columns(pl.col(f"_new_{f}").alias(f) for f in fields)
        .drop([f"_new_{f}" for f in fields])
    )


def _content_parts(kind: str) -> pl.Expr:
    """The kind's main content as one string, the input of the content hash."""
    if kind == "chat_sft":
        turns = pl.element().struct
        return pl.col("messages").list.eval(
            pl.concat_str(
                [turns.field("role").fill_null(""), turns.field("content").fill_null("")],
                separator="\x1f",
            )
        ).list.join("\x1e")
    if kind == "preference":
        return pl.concat_str([pl.col("prompt"), pl.col("response")], separator="\x1e")
    return pl.col("text")


def _canonical(expr: pl.Expr) -> pl.Expr:
    """Case- and whitespace-insensitive form: near-identical copies hash alike."""
    return expr.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def sha256_hex(expr: pl.Expr, length: int = 64) -> pl.Expr:
    """sha256 hex digest of a string column (truncated to ``length``), null stays null."""
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


def _measure(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Length, word and turn counts of the kind's main content (0 where it is missing)."""
    words = r"\S+"
    if kind == "chat_sft":
        content = pl.element().struct.field("content").fill_null("")
        msgs = pl.col("messages")
        return df.with_columns(
            msgs.list.eval(content.str.len_chars()).list.sum().fill_null(0).alias(_CHARS),
            msgs.list.eval(content.str.count_matches(words)).list.sum().fill_null(0).alias(_WORDS),
            msgs.list.len().fill_null(0).alias(_TURNS),
        )
    main = "response" if kind == "preference" else "text"
    out = df.with_columns(
        pl.col(main).str.len_chars().fill_null(0).alias(_CHARS),
        pl.col(main).str.count_matches(words).fill_null(0).alias(_WORDS),
    )
    if kind == "preference":
        out = out.with_columns(pl.col("prompt").str.len_chars().fill_null(0).alias(_PROMPT_CHARS))
    return out


@dataclass(frozen=True)
class Filter:
    """One named check: rows where ``fails`` is true are rejected with rule ``name``.

    ``score`` and ``detail`` are evaluated on the whole frame the filter sees (before it
    drops anything), so they may use window expressions.
    """

    name: str
    fails: pl.Expr
    score: pl.Expr | None = None
    detail: pl.Expr | None = None


def _missing_content(kind: str) -> Filter:
    if kind == "chat_sft":
        fails = pl.col("messages").is_null() | (pl.col("messages").list.len() == 0)
        detail = pl.lit("messages")
    elif kind == "preference":
        fails = pl.col("prompt").is_null() | pl.col("response").is_null()
        detail = pl.when(pl.col("prompt").is_null()).then(pl.lit("prompt")).otherwise(
            pl.lit("response")
        )
    else:
        fails = pl.col("text").is_null()
        detail = pl.lit("text")
    return Filter("missing_content", fails, detail=detail)


def _length_filters(kind: str, cfg: CurateConfig) -> list[Filter]:
    chars, words = pl.col(_CHARS), pl.col(_WORDS)
    if kind == "preference":
        # A ranked response is useless without the prompt it answers.
        empty = Filter(
            "empty",
            (chars == 0) | (pl.col(_PROMPT_CHARS) == 0),
            score=pl.lit(0),
            detail=pl.when(pl.col(_PROMPT_CHARS) == 0).then(pl.lit("prompt")).otherwise(
                pl.lit("response")
            ),
        )
    else:
        empty = Filter("empty", chars == 0, score=chars)
    filters = [
        empty,
        Filter("too_short", chars < cfg.min_chars, score=chars, detail=pl.lit(f"min_chars={cfg.min_chars}")),
        Filter("too_long", chars > cfg.max_chars, score=chars, detail=pl.lit(f"max_chars={cfg.max_chars}")),
        Filter("too_few_words", words < cfg.min_words, score=words, detail=pl.lit(f"min_words={cfg.min_words}")),
    ]
    if kind == "chat_sft":
        last_role = pl.col("messages").list.last().struct.field("role")
        filters.append(
            Filter(
                "too_few_turns",
                pl.col(_TURNS) < cfg.min_turns,
                score=pl.col(_TURNS),
                detail=pl.lit(f"min_turns={cfg.min_turns}"),
            )
        )
        if cfg.require_assistant_last:
            filters.append(
                Filter(
                    "last_turn_not_assistant",
                    last_role.ne_missing(pl.lit("assistant")),
                    detail=pl.lit("last role: ") + last_role.fill_null("null"),
                )
            )
        # A blank turn (e.g. an empty response) would teach the model to answer with nothing.
        blank_turns = pl.col("messages").list.eval(
            pl.element().struct.field("content").fill_null("").str.len_chars() == 0
        ).list.sum()
        filters.append(Filter("empty_turn", blank_turns > 0, score=blank_turns))
    return filters


def _run(
    df: pl.DataFrame, filters: list[Filter], steps: dict, rejects: list[pl.DataFrame]
) -> pl.DataFrame:
    for f in filters:
        # A null verdict would drop the row from both kept and rejected: count it as a pass.
        flagged = df.with_columns(
            f.fails.fill_null(False).alias(_FAILS),
            (f.score if f.score is not None else pl.lit(None)).cast(pl.Float64).alias(_SCORE),
            (f.detail if f.detail is not None else pl.lit(None)).cast(pl.String).alias(_DETAIL),
        )
        dropped = flagged.filter(pl.col(_FAILS))
        steps[f.name] = {"in": df.height, "dropped": dropped.height}
        if dropped.height:
            rejects.append(
                reject(dropped, stage=STAGE, rule=f.name, score=pl.col(_SCORE), detail=pl.col(_DETAIL))
            )
        df = flagged.filter(~pl.col(_FAILS)).drop(_FAILS, _SCORE, _DETAIL)
    return df


def _add_hashes(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    """content_hash, dup_cluster_id (first record per hash) and, for preference, prompt ids.

    The frame is sorted by (source, source_key, record_id), so ``first()`` picks the record
    that exact dedup keeps.
    """
    df = df.with_columns(sha256_hex(_canonical(_content_parts(kind))).alias("content_hash"))
    df = df.with_columns(pl.col(RECORD_ID).first().over("content_hash").alias("dup_cluster_id"))
    if kind == "preference":
        # Ranked responses without a prompt id are grouped by their prompt, so all pairs of one
        # prompt can later be built together and kept in one split.
        prompt_id = sha256_hex(pl.lit("prompt\x1f") + _canonical(pl.col("prompt")), 16)
        df = df.with_columns(pl.col("conversation_id").fill_null(prompt_id))
    return df


def curate(records: pl.LazyFrame, recipe: RecipeConfig) -> StageResult:
    """Shape, normalize, filter and exact-dedup a recipe's records (see module docstring)."""
    cfg, kind = recipe.curate, recipe.kind
    lf = conform(records)
    lf = _normalize(_shape(lf, recipe), cfg)
    # Deterministic regardless of input order; this order also decides which duplicate is kept.
    df = lf.collect().sort(SOURCE, SOURCE_KEY, RECORD_ID, nulls_last=True)
    rows_in = df.height
    normalized_changed = int(df[_CHANGED].sum() or 0)

    steps: dict[str, dict[str, int]] = {
        "shape": {"in": rows_in, "dropped": 0},
        "normalize": {"in": rows_in, "dropped": 0},
    }
    rejects: list[pl.DataFrame] = []
    df = _run(df, [_missing_content(kind)], steps, rejects)
    df = _run(_measure(df, kind), _length_filters(kind, cfg), steps, rejects)
    df = _add_hashes(df, kind)
    if cfg.dedup == "exact":
        dedup = Filter(
            "exact_duplicate",
            pl.col(RECORD_ID) != pl.col("dup_cluster_id"),
            detail=pl.col("dup_cluster_id"),
        )
        df = _run(df, [dedup], steps, rejects)

    order = [RECORD_ID, SOURCE, SOURCE_KEY]
    kept = conform(df.drop(_WORKING, strict=False)).sort(order, nulls_last=True)
    rejected = concat_rejects(
        [
            # Rejects carry the record as it was when dropped, without working columns.
            conform(r.drop(_WORKING, strict=False).drop("stage", "rule", "score", "detail")).hstack(
                r.select("stage", "rule", "score", "detail")
            )
            for r in rejects
        ],
        kept.clear(),
    ).sort(order, nulls_last=True)
    return StageResult(
        kept=kept,
        rejected=rejected,
        rows_in=rows_in,
        stats={"steps": steps, "normalized_changed": normalized_changed},
    )
