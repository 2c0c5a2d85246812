"""How the dataset compares with a sample of production inputs (a ``reference`` source).

- **Distribution**: for each slice attribute, the share of each value in the reference and in
  the train / test split, compared with the population stability index
  ``PSI = sum((p - q) * ln(p / q))`` (shares of 0 replaced by ``PSI_EPSILON``, the usual
  convention so that a missing value costs a large but finite amount) and the Jensen-Shannon
  divergence in bits (SciPy's ``jensenshannon`` distance, squared; 0 = same, 1 = disjoint).
- **Coverage**: each reference input's nearest train input by cosine similarity of TF-IDF
  vectors (scikit-learn; hashed word 1-2-grams, idf over both sides, no model to download); the
  share reaching ``coverage_threshold`` is the coverage, and the least-covered reference
  inputs are listed by id.
- **Edge cases**: regex rules mark edge cases; each needs ``min_share`` of the train split.

The reference holds raw production text: reports carry shares, scores and source keys only.
"""

from __future__ import annotations

import math
import re

import numpy as np
import polars as pl
from scipy.spatial.distance import jensenshannon

from ftdata_pipeline.config.models import ReferenceConfig
from ftdata_pipeline.records import SOURCE_KEY
from ftdata_pipeline.stages.split.slices import first_prompt, input_text, with_slices

PSI_EPSILON = 1e-4
COMPARED_SPLITS = ("train", "test")


def psi(p: list[float], q: list[float]) -> float:
    """Population stability index of two distributions over the same bins."""
    total = 0.0
    for a, b in zip(p, q, strict=True):
        a, b = max(a, PSI_EPSILON), max(b, PSI_EPSILON)
        total += (a - b) * math.log(a / b)
    return total


def js_divergence(p: list[float], q: list[float]) -> float:
    """Jensen-Shannon divergence in bits (0..1)."""
    if not any(p) or not any(q):
        return 1.0
    return float(jensenshannon(np.asarray(p), np.asarray(q), base=2) ** 2)


def bin_order(value: str) -> tuple:
    """Bins in reading order: length buckets ('<=8', '<=16', '>512') by number, others by name."""
    found = re.fullmatch(r"(<=|>)(\d+)", value)
    return (0, int(found[2]), found[1] == ">") if found else (1, 0, False, value)


def distribution(values: pl.Series) -> dict[str, float]:
    counts = values.value_counts(sort=False)
    total = values.len()
    return {str(v): n / total for v, n in sorted(counts.iter_rows(), key=lambda r: bin_order(str(r[0])))}


def _status(value: float, warn: float, error: float) -> str:
    return "error" if value >= error else "warn" if value >= warn else "ok"


def example_input(kind: str) -> pl.Expr:
    """What a production input is compared with: the first user turn, else the input text."""
    if kind == "pretraining":
        return input_text(kind)
    return pl.coalesce(first_prompt(kind), input_text(kind)).fill_null("")


def reference_input() -> pl.Expr:
    return pl.coalesce(pl.col("text"), pl.col("prompt")).fill_null("")


def _with_reference_slices(ref: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Slices of reference rows: their text is the input, one turn each."""
    return with_slices(ref.with_columns(reference_input().alias("text")), names, "pretraining")


def distribution_report(df: pl.DataFrame, ref: pl.DataFrame, kind: str,
                        cfg: ReferenceConfig) -> list[dict]:
    """One row per (attribute, split): PSI, JS divergence, status and both distributions."""
    # The training side's slices use its first user turn, like the production input.
    train_side = with_slices(
        df.with_columns(example_input(kind).alias("text")),
        [a for a in cfg.slices if a != "turns"], "pretraining",
    )
    if "turns" in cfg.slices:
        train_side = with_slices(train_side, ["turns"], kind)
    ref_side = _with_reference_slices(ref, list(cfg.slices))
    rows = []
    for attr in cfg.slices:
        column = f"_slice_{attr}"
        q = distribution(ref_side[column])
        for split_name in COMPARED_SPLITS:
            part = train_side.filter(pl.col("split") == split_name)[column]
            if part.len() == 0:
                continue
            p = distribution(part)
            bins = sorted(set(p) | set(q), key=bin_order)
            pv, qv = [p.get(b, 0.0) for b in bins], [q.get(b, 0.0) for b in bins]
            value_psi, value_js = psi(pv, qv), js_divergence(pv, qv)
            worst = max(_status(value_psi, cfg.psi_warn, cfg.psi_error),
                        _status(value_js, cfg.js_warn, cfg.js_error),
                        key=["ok", "warn", "error"].index)
            rows.append({
                "attribute": attr, "split": split_name, "psi": round(value_psi, 4),
                "js": round(value_js, 4), "status": worst,
                "dataset": {b: round(v, 4) for b, v in zip(bins, pv, strict=True)},
                "reference": {b: round(v, 4) for b, v in zip(bins, qv, strict=True)},
            })
    return rows


# Coverage compares TF-IDF vectors of word 1-2-grams. The features are hashed (scikit-learn's
# HashingVectorizer, 2**22 of them: collisions are rare at that size) rather than a fitted
# vocabulary: a vocabulary of every train input's 1-2-grams, with the train matrix, took ~1 GB
# for 460,000 inputs, the split stage's largest allocation. Without one, the train side is
# read a block at a time, twice (document frequencies, then similarities). The weighting is
# TfidfVectorizer(sublinear_tf=True)'s, applied by hand to the hashed counts.
COVERAGE_FEATURES = 1 << 22
COVERAGE_BLOCK = 4096


def _hashing_vectorizer():
    # Imported here: scikit-learn adds ~50 MB to every process that imports the split stage
    # (the run's coordinator and each step process), and only this report uses it.
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=COVERAGE_FEATURES, ngram_range=(1, 2),
                             token_pattern=r"(?u)\b\w+\b", alternate_sign=False, norm=None)


# The hashed counts come with each row's features summed and sorted (scikit-learn's
# FeatureHasher), so a row's indices are its distinct features.
def _doc_freq(counts) -> np.ndarray:
    return np.bincount(counts.indices, minlength=COVERAGE_FEATURES).astype(np.float64)


def _tf_idf(counts, idf: np.ndarray):
    """1 + ln(tf) times idf, each row L2-normalized (``sublinear_tf`` weighting)."""
    from sklearn.preprocessing import normalize

    counts.data = (1 + np.log(counts.data)) * idf[counts.indices]
    return normalize(counts, copy=False)


def coverage_report(df: pl.DataFrame, ref: pl.DataFrame, kind: str,
                    cfg: ReferenceConfig) -> dict:
    """Share of reference inputs whose nearest train input reaches the threshold."""
    train = df.filter(pl.col("split") == "train").select(example_input(kind)).to_series()
    queries = ref.select(reference_input()).to_series().to_list()
    keys = ref[SOURCE_KEY].to_list()
    if train.is_empty() or not queries:
        return {"threshold": cfg.coverage_threshold, "coverage": 0.0, "reference": len(queries),
                "covered": 0, "least_covered": []}
    vectorizer = _hashing_vectorizer()

    def train_counts():
        for start in range(0, train.len(), COVERAGE_BLOCK):
            yield vectorizer.transform(train.slice(start, COVERAGE_BLOCK).to_list())

    # Pass 1: document frequencies of every feature over both sides.
    asked = vectorizer.transform(queries)
    doc_freq = _doc_freq(asked)
    for counts in train_counts():
        doc_freq += _doc_freq(counts)
    n_docs = train.len() + len(queries)
    idf = np.log((1 + n_docs) / (1 + doc_freq)) + 1  # scikit-learn's smoothed idf
    del doc_freq
    # Pass 2: each query's best cosine similarity, one block of train inputs at a time.
    a = _tf_idf(asked, idf)
    best = np.zeros(len(queries))
    for counts in train_counts():
        b = _tf_idf(counts, idf)
        best = np.maximum(best, (a @ b.T).max(axis=1).toarray().ravel())
    covered = int((best >= cfg.coverage_threshold).sum())
    order = sorted(range(len(queries)), key=lambda i: (best[i], keys[i]))
    return {
        "threshold": cfg.coverage_threshold,
        "reference": len(queries),
        "covered": covered,
        "coverage": round(covered / len(queries), 4),
        "mean_best_similarity": round(float(best.mean()), 4),
        "least_covered": [{"id": keys[i], "similarity": round(float(best[i]), 4)}
                          for i in order[: cfg.least_covered]],
    }


def edge_case_report(df: pl.DataFrame, ref: pl.DataFrame, kind: str,
                     cfg: ReferenceConfig) -> list[dict]:
    train = df.filter(pl.col("split") == "train").select(example_input(kind)).to_series()
    queries = ref.select(reference_input()).to_series()
    rows = []
    for rule in cfg.edge_cases:
        pattern = re.compile(rule.pattern)
        in_train = sum(1 for t in train.to_list() if pattern.search(t or ""))
        in_ref = sum(1 for t in queries.to_list() if pattern.search(t or ""))
        share = in_train / train.len() if train.len() else 0.0
        rows.append({
            "name": rule.name, "train": in_train, "train_share": round(share, 4),
            "reference_share": round(in_ref / queries.len(), 4) if queries.len() else 0.0,
            "min_share": rule.min_share, "ok": share >= rule.min_share,
        })
    return rows


def representativeness(df: pl.DataFrame, ref: pl.DataFrame, kind: str,
                       cfg: ReferenceConfig) -> dict:
    """Distribution, coverage and edge-case reports of the split output against the reference."""
    dist = distribution_report(df, ref, kind, cfg)
    cover = coverage_report(df, ref, kind, cfg)
    edges = edge_case_report(df, ref, kind, cfg)
    errors = [f"{r['attribute']}/{r['split']}" for r in dist if r["status"] == "error"]
    warnings = [f"{r['attribute']}/{r['split']}" for r in dist if r["status"] == "warn"]
    if cover["coverage"] < cfg.min_coverage:
        errors.append(f"coverage {cover['coverage']} < {cfg.min_coverage}")
    errors += [f"edge case {e['name']}: {e['train_share']} < {e['min_share']}"
               for e in edges if not e["ok"]]
    return {"source": cfg.source, "distribution": dist, "coverage": cover, "edge_cases": edges,
            "errors": errors, "warnings": warnings}
