"""Language identification with py3langid (offline, model bundled) and the language filter.

Language ID runs once per *distinct* text (duplicates are common in support data) and the
results are joined back as the ``q_lang`` / ``q_lang_score`` columns. py3langid's own
``classify`` walks its byte automaton in a Python loop, one byte at a time, which made it
nearly half of the stage's time; ``identify`` runs the same model (the library's automaton and
naive-Bayes tables, its text encoding and its probability normalisation) over a batch of texts
at once: the automaton steps all texts of a batch together with numpy, one byte position per
step, and the feature counts meet the class table in one sparse product. Texts longer than
``_VECTOR_BYTES`` go through the library's ``classify`` as they are (a batch takes as many
steps as its longest text). It reads the prose of a record, not
its code. Texts under ``min_words`` words are not judged: language ID on "thanks!" is a coin
toss. A record is dropped only when its *best* language is not allowed and the model is
confident of it (``min_confidence``): a low-confidence guess (short questions, all-caps lines,
lists of names) is no evidence against the text, and an allowed best language never drops it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl
from scipy import sparse

from ftdata_pipeline.config.models import LanguageConfig
from ftdata_pipeline.stages.curation.filtering import Filter
from ftdata_pipeline.stages.curation.views import PROSE

Q_LANG, Q_LANG_SCORE, Q_LANG_ALLOWED = "q_lang", "q_lang_score", "q_lang_allowed"


_VECTOR_BYTES = 4096  # longer texts: the library's own per-text walk
_BATCH = 2048  # texts stepped together


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    # norm_probs: scores become probabilities in [0, 1], comparable to min_confidence
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=1)
def _tables():
    """The identifier's automaton and class table as numpy arrays (built once)."""
    ident = _identifier()
    nextmove = np.frombuffer(ident.tk_nextmove, dtype=np.dtype(ident.tk_nextmove.typecode))
    rowbase = np.asarray(ident._rowbase, dtype=np.int64)
    output = np.asarray(ident.tk_output, dtype=np.int64)
    ptc = np.asarray(ident.nb_ptc, dtype=np.float32)
    return nextmove.astype(np.int64), rowbase, output, ptc, np.asarray(ident.nb_pc, np.float32)


def _encode(text: str) -> bytes:
    return _identifier()._encode(text)  # the library's own: all-caps lowered, NFC, UTF-8


def _classify_batch(encoded: list[bytes]) -> tuple[list[str], list[float]]:
    """The library's ``classify`` (norm_probs) for a batch of encoded texts, vectorized."""
    ident = _identifier()
    nextmove, rowbase, output, ptc, pc = _tables()
    lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
    order = np.argsort(-lengths, kind="stable")  # longest first: the active texts are a prefix
    lens = lengths[order]
    buf = np.frombuffer(b"".join(encoded[i] for i in order), dtype=np.uint8).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    states = np.zeros(len(encoded), dtype=np.int64)
    hit_doc, hit_feat = [], []
    for pos in range(int(lens[0]) if lens.size else 0):
        k = int(np.searchsorted(-lens, -pos, side="left"))  # texts longer than pos
        active = states[:k]
        active[:] = nextmove[rowbase[active] + buf[starts[:k] + pos]]
        feats = output[active]
        found = np.flatnonzero(feats >= 0)
        if found.size:
            hit_doc.append(found)
            hit_feat.append(feats[found])
    n, n_feat = len(encoded), ptc.shape[0]
    scores = np.zeros((n, ptc.shape[1]), dtype=np.float32)
    if hit_doc:
        key, counts = np.unique(
            np.concatenate(hit_doc) * n_feat + np.concatenate(hit_feat), return_counts=True
        )
        weights = sparse.csr_matrix(
            (np.log1p(counts.astype(np.float32)), (key // n_feat, key % n_feat)),
            shape=(n, n_feat),
        )
        scores = np.asarray(weights @ ptc, dtype=np.float32) + pc
        featureless = np.bincount(key // n_feat, minlength=n) == 0
        scores[featureless] = 0.0  # no features: uniform (the library abstains the same way)
    scores *= (1.0 / np.sqrt(np.maximum(lens, 1)))[:, None].astype(np.float32)
    np.exp(scores - scores.max(axis=1, keepdims=True), out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    for i, j in ident._alias_pairs:  # aliased labels: one merged score, as the library does
        scores[:, i] += scores[:, j]
        scores[:, j] = 0.0
    best = scores.argmax(axis=1)
    conf = scores[np.arange(n), best]
    langs, confs = [None] * n, [0.0] * n
    for rank, i in enumerate(order.tolist()):
        langs[i] = ident.nb_classes[int(best[rank])]
        confs[i] = float(conf[rank])
    return langs, confs


def identify(texts: list[str]) -> tuple[list[str], list[float]]:
    """(language, confidence) per text: the library's ``classify``, batched (see above)."""
    ident = _identifier()
    langs: list[str] = [""] * len(texts)
    scores: list[float] = [0.0] * len(texts)
    short: list[tuple[int, bytes]] = []
    for i, text in enumerate(texts):
        encoded = _encode(text)
        if len(encoded) > _VECTOR_BYTES:
            lang, score = ident.classify(text)
            langs[i], scores[i] = lang, float(score)
        else:
            short.append((i, encoded))
    for b in range(0, len(short), _BATCH):
        batch = short[b : b + _BATCH]
        got_langs, got_scores = _classify_batch([encoded for _, encoded in batch])
        for (i, _), lang, score in zip(batch, got_langs, got_scores, strict=True):
            langs[i], scores[i] = lang, score
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
