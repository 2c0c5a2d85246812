"""Quality heuristics (Gopher / datatrove style) as small named filters with kept scores.

``add_quality_scores`` computes every score as a ``q_*`` column (kept on surviving rows, so a
threshold can be re-tuned from the stored output); ``quality_filters`` turns the recipe's
thresholds into one named ``Filter`` per rule. Rules that are noise on short texts only apply
from a minimum word count. Everything is vectorized; the n-gram rule explodes words once.
"""

from __future__ import annotations

import polars as pl

from ftdata_pipeline.config.models import QualityConfig
from ftdata_pipeline.stages.curation.filtering import Filter
from ftdata_pipeline.stages.curation.views import PROMPT, PROSE, RESPONSE, words

# Gopher's stop words plus a few very common English function words: English prose of a few
# dozen words without any of them is a list, a table, code or keyword soup.
STOP_WORDS = (
    "the", "be", "to", "of", "and", "that", "have", "with", "a", "an", "is", "are", "was",
    "it", "in", "on", "for", "you", "i", "we", "my", "your", "this", "not", "can", "do",
)

Q_WORDS = "q_words"
Q_PROMPT_WORDS, Q_PROMPT_CHARS = "q_prompt_words", "q_prompt_chars"
Q_RESPONSE_WORDS, Q_RESPONSE_CHARS = "q_response_words", "q_response_chars"
Q_DUP_LINE = "q_dup_line_frac"
Q_TOP_NGRAM = {2: "q_top2gram_frac", 3: "q_top3gram_frac", 4: "q_top4gram_frac"}
Q_SYMBOL = "q_symbol_ratio"
Q_ALPHA = "q_alpha_frac"
Q_STOP = "q_stop_words"
Q_REFUSAL = "q_refusal"
Q_QUALITY = "q_quality"

_IDX = "_qidx"
_BATCH = 100_000  # records per n-gram batch: the exploded words follow the batch


_TOKENS = "_q_tokens"
_CLEAN, _RAW_WORDS, _LINES = "_q_prose", "_q_raw_words", "_q_lines"


def _token_scores(df: pl.DataFrame, min_words: int) -> pl.DataFrame:
    """The word-based scores of a batch (word count, stop words, top n-grams), from one
    tokenization of the prose: splitting into words is the dearest step of the rules."""
    tokens = df.select(words(pl.col(PROSE)).alias(_TOKENS))
    counts = tokens.select(
        pl.col(_TOKENS).list.len().fill_null(0).alias(Q_WORDS),
        pl.col(_TOKENS).list.eval(pl.element().is_in(list(STOP_WORDS))).list.sum().fill_null(0)
        .alias(Q_STOP),
    )
    return pl.concat([counts, _top_ngram_fracs(tokens, min_words)], how="horizontal")


def _top_ngram_fracs(tokens: pl.DataFrame, min_words: int) -> pl.DataFrame:
    """Gopher's top-n-gram rule: share of word characters in the most frequent 2/3/4-gram.

    One explode of all words (``tokens``: a column of each record's words); n-grams are built
    by shifting the exploded column (a gram is valid when its last word still belongs to the
    same record). Records shorter than ``min_words`` and records whose top gram occurs once
    score 0.
    """
    toks = (
        tokens.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias(_IDX), pl.col(_TOKENS).alias("w"))
        .filter(pl.col("w").list.len() >= max(min_words, 1))
        .explode("w")
        .drop_nulls("w")
    )
    total = toks.group_by(_IDX).agg(pl.col("w").str.len_chars().sum().alias("_total"))
    out = tokens.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias(_IDX))
    for n, name in Q_TOP_NGRAM.items():
        parts = [pl.col("w").shift(-j) for j in range(n)]
        grams = toks.with_columns(
            pl.concat_str(parts, separator=" ").alias("g"),
            pl.sum_horizontal(p.str.len_chars() for p in parts).alias("gc"),
            (pl.col(_IDX).shift(-(n - 1)) == pl.col(_IDX)).alias("ok"),
        ).filter(pl.col("ok"))
        top = (
            grams.group_by(_IDX, "g")
            .agg(pl.len().alias("c"), pl.col("gc").first())
            .filter(pl.col("c") > 1)
            # the most frequent gram; among equally frequent ones the longest (deterministic)
            .sort([_IDX, "c", "gc", "g"], descending=[False, True, True, False])
            .group_by(_IDX, maintain_order=True)
            .first()
            .join(total, on=_IDX)
            .select(_IDX, (pl.col("c") * pl.col("gc") / pl.col("_total")).alias(name))
        )
        out = out.join(top, on=_IDX, how="left").with_columns(pl.col(name).fill_null(0.0))
    return out.sort(_IDX).drop(_IDX)


def add_quality_scores(df: pl.DataFrame, cfg: QualityConfig) -> pl.DataFrame:
    """Add every q_* score column (see module docstring); row order is unchanged."""
    # Prose only: code is full of symbols, short identifiers and repeated lines ("}") that
    # these rules, made for web prose, would read as junk.
    # Markdown structure is not text: heading markers ("## Usage") are not Gopher's "#"
    # symbols, and table rules ("|---|:--:|") are not words without letters.
    prose = (
        pl.col(PROSE)
        .str.replace_all(r"(?m)^[ \t]{0,3}#{1,6}[ \t]", "")
        .str.replace_all(r"(?m)^[ \t]*\|?(?:[ \t]*:?-{3,}:?[ \t]*\|)+[ \t]*:?-*:?[ \t]*$", "")
        .str.replace_all(r"(?m)^[ \t]*(?:={3,}|-{3,}|\*{3,}|_{3,})[ \t]*$", "")  # underlines, rules
    )
    # row-wise scores: computed per batch of rows, their exploded grams never all in memory
    scored = pl.concat(
        [_token_scores(df.slice(start, _BATCH), cfg.repetition_min_words)
         for start in range(0, df.height, _BATCH)] or [_token_scores(df, 1)]
    )
    # Each computed once into a column: an eager frame does not share an expression used in
    # several scores, and the cleaned prose (three regex passes) was computed six times.
    df = df.with_columns(prose.alias(_CLEAN)).with_columns(
        pl.col(_CLEAN).str.count_matches(r"\S+").alias(_RAW_WORDS),
        pl.col(PROSE).str.split("\n").list.eval(
            pl.element().str.strip_chars().filter(pl.element().str.len_chars() > 0)
        ).alias(_LINES),
    )
    prose, raw_words, lines = pl.col(_CLEAN), pl.col(_RAW_WORDS), pl.col(_LINES)
    n_lines = lines.list.len()
    refusal = (
        pl.any_horizontal(pl.col(RESPONSE).str.contains(p) for p in cfg.refusal_patterns)
        if cfg.refusal_patterns
        else pl.lit(False)
    )
    df = df.with_columns(
        scored.get_column(Q_WORDS),
        pl.col(PROMPT).str.count_matches(r"\S+").alias(Q_PROMPT_WORDS),
        pl.col(PROMPT).str.len_chars().alias(Q_PROMPT_CHARS),
        pl.col(RESPONSE).str.count_matches(r"\S+").alias(Q_RESPONSE_WORDS),
        pl.col(RESPONSE).str.len_chars().alias(Q_RESPONSE_CHARS),
        pl.when(n_lines > 0)
        .then((n_lines - lines.list.n_unique()) / n_lines)
        .otherwise(0.0)
        .alias(Q_DUP_LINE),
        pl.when(raw_words > 0)
        .then(prose.str.count_matches(r"#|\.\.\.|…") / raw_words)
        .otherwise(0.0)
        .alias(Q_SYMBOL),
        pl.when(raw_words > 0)
        .then(prose.str.count_matches(r"\S*\p{Alphabetic}\S*") / raw_words)
        .otherwise(0.0)
        .alias(Q_ALPHA),
        scored.get_column(Q_STOP),
        refusal.fill_null(False).alias(Q_REFUSAL),
    ).drop(_CLEAN, _RAW_WORDS, _LINES)
    df = pl.concat([df, scored.select(*Q_TOP_NGRAM.values())], how="horizontal")
    # One number for "how clean is this text", used by near_dedup keep=best_quality: the
    # product of the repetition and ratio scores, each in [0, 1].
    return df.with_columns(
        (
            (1 - pl.col(Q_DUP_LINE))
            * (1 - pl.max_horizontal(*Q_TOP_NGRAM.values()))
            * pl.col(Q_ALPHA).clip(0, 1)
            * (1 - pl.col(Q_SYMBOL).clip(0, 1))
        ).alias(Q_QUALITY)
    )


def _bounds(side: str, words_col: str, chars_col: str, b) -> list[Filter]:
    w, c = pl.col(words_col), pl.col(chars_col)
    out = []
    if b.min_words:
        out.append(Filter(f"{side}_too_few_words", w < b.min_words, w, pl.lit(f"min_words={b.min_words}")))
    if b.max_words is not None:
        out.append(Filter(f"{side}_too_many_words", w > b.max_words, w, pl.lit(f"max_words={b.max_words}")))
    if b.min_chars:
        out.append(Filter(f"{side}_too_short", c < b.min_chars, c, pl.lit(f"min_chars={b.min_chars}")))
    if b.max_chars is not None:
        out.append(Filter(f"{side}_too_long", c > b.max_chars, c, pl.lit(f"max_chars={b.max_chars}")))
    return out


def quality_filters(cfg: QualityConfig, kind: str) -> list[Filter]:
    """The named quality rules, in order (the stop-word rule runs after language ID)."""
    has_response = kind in ("chat_sft", "preference")
    filters = _bounds("prompt", Q_PROMPT_WORDS, Q_PROMPT_CHARS, cfg.prompt)
    if has_response:
        filters += _bounds("response", Q_RESPONSE_WORDS, Q_RESPONSE_CHARS, cfg.response)
        if cfg.drop_empty_response:
            filters.append(Filter("empty_response", pl.col(Q_RESPONSE_CHARS).fill_null(0) == 0))
        if cfg.drop_refusals and cfg.refusal_patterns:
            filters.append(Filter("refusal_response", pl.col(Q_REFUSAL)))
    words_ = pl.col(Q_WORDS)
    long_enough = words_ >= cfg.repetition_min_words
    filters.append(
        Filter(
            "duplicate_lines",
            long_enough & (pl.col(Q_DUP_LINE) > cfg.max_dup_line_frac),
            pl.col(Q_DUP_LINE),
            pl.lit(f"max_dup_line_frac={cfg.max_dup_line_frac}"),
        )
    )
    for n, limit in sorted(cfg.max_top_ngram_frac.items()):
        col = pl.col(Q_TOP_NGRAM[n])
        filters.append(
            Filter(f"top_{n}gram", long_enough & (col > limit), col, pl.lit(f"max={limit}"))
        )
    ratio_applies = words_ >= cfg.ratio_min_words
    filters.append(
        Filter(
            "symbol_ratio",
            ratio_applies & (pl.col(Q_SYMBOL) > cfg.max_symbol_word_ratio),
            pl.col(Q_SYMBOL),
            pl.lit(f"max={cfg.max_symbol_word_ratio}"),
        )
    )
    filters.append(
        Filter(
            "alpha_ratio",
            ratio_applies & (pl.col(Q_ALPHA) < cfg.min_alpha_word_frac),
            pl.col(Q_ALPHA),
            pl.lit(f"min={cfg.min_alpha_word_frac}"),
        )
    )
    return filters


def stop_words_filter(cfg: QualityConfig, english: pl.Expr) -> list[Filter]:
    """Gopher's stop-word rule, for texts identified as English (``english`` is true)."""
    if not cfg.min_stop_words:
        return []
    return [
        Filter(
            "stop_words",
            english & (pl.col(Q_WORDS) >= cfg.stop_words_min_words) & (pl.col(Q_STOP) < cfg.min_stop_words),
            pl.col(Q_STOP),
            pl.lit(f"min_stop_words={cfg.min_stop_words}"),
        )
    ]
