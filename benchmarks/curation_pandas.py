"""The curated stage's quality rules and exact dedup, twice: the project's Polars code and pandas.

``polars_filters`` calls the stage's own pieces (``add_views``, ``add_quality_scores``,
``quality_filters``, ``stop_words_filter``, ``sha256_hex``) on a pre-training frame;
``pandas_filters`` is the same rules written the way a pandas user would: ``Series.str``
methods where pandas has them, ``apply`` with ``collections.Counter`` for lines and n-grams,
``hashlib`` for the content hash. Both return one frame with the same columns (scores, one
boolean per rule, ``exact_duplicate``), and ``assert_same`` checks they agree, so the timing
compares equal work. Benchmark code only: the pipeline never imports it.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pandas as pd
import polars as pl

from ftdata_pipeline.records import sha256_hex
from ftdata_pipeline.stages.curation import quality as Q
from ftdata_pipeline.stages.curation.views import ALL, PROSE, add_views

SCORES = (Q.Q_WORDS, Q.Q_PROMPT_WORDS, Q.Q_PROMPT_CHARS, Q.Q_DUP_LINE, *Q.Q_TOP_NGRAM.values(),
          Q.Q_SYMBOL, Q.Q_ALPHA, Q.Q_STOP)


def _rules(curate) -> list:
    q = curate.quality
    return Q.quality_filters(q, "pretraining") + Q.stop_words_filter(q, pl.lit(True))


def polars_filters(texts: list[str], curate) -> pd.DataFrame:
    df = add_views(pl.DataFrame({"text": texts}, schema={"text": pl.String}), "pretraining")
    # The rules are compared, not code segmentation: both sides score the whole text as prose.
    df = df.with_columns(pl.col(ALL).alias(PROSE))
    df = Q.add_quality_scores(df, curate.quality)
    rules = _rules(curate)
    out = df.select(
        *SCORES,
        *(r.fails.fill_null(False).alias(r.name) for r in rules),
        sha256_hex(pl.col("text")).is_first_distinct().not_().alias("exact_duplicate"),
    )
    return out.to_pandas()


def _top_ngram_frac(words: list[str], n: int, min_words: int) -> float:
    if len(words) < max(min_words, 1):
        return 0.0
    grams = Counter(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
    if not grams:
        return 0.0
    # most frequent; ties: the longest, then the smallest string (as the stage does)
    gram, count = min(grams.items(), key=lambda kv: (-kv[1], -len(kv[0].replace(" ", "")), kv[0]))
    if count < 2:
        return 0.0
    return count * len(gram.replace(" ", "")) / sum(map(len, words))


def _dup_line_frac(text: str) -> float:
    lines = [ln.strip() for ln in text.split("\n")]
    lines = [ln for ln in lines if ln]
    return (len(lines) - len(set(lines))) / len(lines) if lines else 0.0


def pandas_filters(texts: list[str], curate) -> pd.DataFrame:
    q = curate.quality
    s = pd.Series(texts, dtype=object)
    words = s.str.lower().str.findall(r"\w+")
    raw_words = s.str.count(r"\S+")
    out = pd.DataFrame({
        Q.Q_WORDS: words.str.len(),
        Q.Q_PROMPT_WORDS: raw_words,
        Q.Q_PROMPT_CHARS: s.str.len(),
        Q.Q_DUP_LINE: s.apply(_dup_line_frac),
    })
    for n, name in Q.Q_TOP_NGRAM.items():
        out[name] = words.apply(_top_ngram_frac, args=(n, q.repetition_min_words))
    safe = raw_words.where(raw_words > 0, 1)
    out[Q.Q_SYMBOL] = np.where(raw_words > 0, s.str.count(r"#|\.\.\.|…") / safe, 0.0)
    alpha = s.str.split().apply(lambda toks: sum(any(c.isalpha() for c in t) for t in toks))
    out[Q.Q_ALPHA] = np.where(raw_words > 0, alpha / safe, 0.0)
    stop = set(Q.STOP_WORDS)
    out[Q.Q_STOP] = words.apply(lambda ws: sum(w in stop for w in ws))

    w, c, b = out[Q.Q_WORDS], out[Q.Q_PROMPT_CHARS], q.prompt
    pw = out[Q.Q_PROMPT_WORDS]
    long_enough = w >= q.repetition_min_words
    ratio_applies = w >= q.ratio_min_words
    if b.min_words:
        out["prompt_too_few_words"] = pw < b.min_words
    if b.max_words is not None:
        out["prompt_too_many_words"] = pw > b.max_words
    if b.min_chars:
        out["prompt_too_short"] = c < b.min_chars
    if b.max_chars is not None:
        out["prompt_too_long"] = c > b.max_chars
    out["duplicate_lines"] = long_enough & (out[Q.Q_DUP_LINE] > q.max_dup_line_frac)
    for n, limit in sorted(q.max_top_ngram_frac.items()):
        out[f"top_{n}gram"] = long_enough & (out[Q.Q_TOP_NGRAM[n]] > limit)
    out["symbol_ratio"] = ratio_applies & (out[Q.Q_SYMBOL] > q.max_symbol_word_ratio)
    out["alpha_ratio"] = ratio_applies & (out[Q.Q_ALPHA] < q.min_alpha_word_frac)
    if q.min_stop_words:
        out["stop_words"] = (w >= q.stop_words_min_words) & (out[Q.Q_STOP] < q.min_stop_words)
    digest = s.apply(lambda t: hashlib.sha256(t.encode("utf-8")).hexdigest())
    out["exact_duplicate"] = digest.duplicated(keep="first")
    return out


def assert_same(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Both frames hold the same columns and values (floats to 1e-9)."""
    assert list(ours.columns) == list(theirs.columns), (list(ours.columns), list(theirs.columns))
    for col in ours.columns:
        a, b = ours[col].to_numpy(), theirs[col].to_numpy()
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            ok = np.isclose(a.astype(float), b.astype(float), atol=1e-9)
        else:
            ok = a.astype(np.int64) == b.astype(np.int64)
        if not ok.all():
            bad = int((~ok).sum())
            raise AssertionError(f"column {col}: {bad} of {len(a)} rows differ "
                                 f"(first at row {int(np.argmin(ok))})")
