"""Language identification with py3langid (offline, model bundled) and the language filter.

py3langid classifies one text at a time, so this is one of the few Python loops of the stage:
it runs once per *distinct* text (duplicates are common in support data) and the results are
joined back as the ``q_lang`` / ``q_lang_score`` columns. It reads the prose of a record, not
its code. Texts under ``min_words`` words are not judged: language ID on "thanks!" is a coin
toss. A record is dropped only when its *best* language is not allowed and the model is
confident of it (``min_confidence``): a low-confidence guess (short questions, all-caps lines,
lists of names) is no evidence against the text, and an allowed best language never drops it.
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl

from ftdata_pipeline.config.models import LanguageConfig
from ftdata_pipeline.stages.curation.filtering import Filter
from ftdata_pipeline.stages.curation.views import PROSE

Q_LANG, Q_LANG_SCORE, Q_LANG_ALLOWED = "q_lang", "q_lang_score", "q_lang_allowed"


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    # norm_probs: scores become probabilities in [0, 1], comparable to min_confidence
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(texts: list[str]) -> tuple[list[str], list[float]]:
    ident = _identifier()
    langs, scores = [], []
    for text in texts:
        lang, score = ident.classify(text)
        langs.append(lang)
        scores.append(float(score))
    return langs, scores


def add_language(df: pl.DataFrame, cfg: LanguageConfig) -> pl.DataFrame:
    judged = pl.col(PROSE).str.count_matches(r"\w+").fill_null(0) >= max(cfg.min_words, 1)
    key = pl.when(judged).then(pl.col(PROSE)).alias("_lang_text")
    df = df.with_columns(key)
    distinct = df.select(pl.col("_lang_text").drop_nulls().unique().sort())["_lang_text"].to_list()
    langs, scores = identify(distinct)
    table = pl.DataFrame(
        {"_lang_text": distinct, Q_LANG: langs, Q_LANG_SCORE: scores},
        schema={"_lang_text": pl.String, Q_LANG: pl.String, Q_LANG_SCORE: pl.Float64},
    )
    df = df.join(table, on="_lang_text", how="left", maintain_order="left").drop("_lang_text")
    allowed = pl.col(Q_LANG).is_in(list(cfg.allowed))
    return df.with_columns(
        pl.when(allowed).then(True)
        .when(pl.col(Q_LANG_SCORE) >= cfg.min_confidence).then(False)
        .otherwise(None)  # a guess too weak to hold against the text
        .alias(Q_LANG_ALLOWED)
    )


def language_filters(cfg: LanguageConfig) -> list[Filter]:
    lang, score = pl.col(Q_LANG), pl.col(Q_LANG_SCORE)
    return [
        Filter(
            "language_not_allowed",
            pl.col(Q_LANG_ALLOWED).eq_missing(False),
            score,
            pl.lit("lang=") + lang,
        )
    ]


def english_expr(df: pl.DataFrame) -> pl.Expr:
    """Where English-only rules apply: detected English, or not judged."""
    if Q_LANG not in df.columns:
        return pl.lit(True)
    return pl.col(Q_LANG).is_null() | (pl.col(Q_LANG) == "en")
