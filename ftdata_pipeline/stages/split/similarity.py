"""Exact Jaccard similarity of word shingles between example inputs, as sparse pairs.

Why not the curation stage's MinHash/LSH: that finds pairs above a high threshold (0.7-0.8)
at corpus scale and may miss some. Leakage is about the pairs *below* the dedup threshold
(0.5 and up) across splits, where a missed pair is a silent leak. Here each input becomes a
binary sparse vector of its word shingles (scikit-learn's CountVectorizer), and the shingle
intersections of every pair are one sparse matrix product, computed in row blocks to bound
memory; Jaccard = |A & B| / (|A| + |B| - |A & B|). Exact, no false negatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import re

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

_WORD = re.compile(r"\w+")
_BLOCK = 2048  # rows per block of the product at most
# Row pairs per block at most: on templated text a large share of all pairs share a shingle,
# so the block's intersection counts approach rows x columns; this bounds them (~8M pairs,
# a few hundred MB of temporaries) whatever the number of columns.
_BLOCK_PAIRS = 8_000_000


@dataclass(frozen=True)
class Pairs:
    """Pairs (i, j) of input indices with their Jaccard similarity."""

    i: np.ndarray
    j: np.ndarray
    sim: np.ndarray

    def __len__(self) -> int:
        return int(self.i.shape[0])


def shingles(text: str, k: int) -> list[str]:
    """Lowercased word k-shingles; a text shorter than k words is one shingle of its words."""
    words = _WORD.findall(text.lower())
    if len(words) < k:
        return [" ".join(words)] if words else []
    return [" ".join(words[p : p + k]) for p in range(len(words) - k + 1)]


def shingle_matrix(texts: list[str], k: int) -> sp.csr_matrix:
    """Binary (n_texts x n_shingles) matrix of ``shingles``; an empty text matches nothing."""
    docs = [shingles(t, k) for t in texts]
    if not any(docs):
        return sp.csr_matrix((len(texts), 0), dtype=np.float32)
    vectorizer = CountVectorizer(analyzer=_identity, binary=True, dtype=np.float32)
    return vectorizer.fit_transform(docs).tocsr()


def _identity(doc: list[str]) -> list[str]:
    return doc


def similar_pairs(
    x: sp.csr_matrix,
    threshold: float,
    *,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
) -> Pairs:
    """Pairs with Jaccard >= threshold: within all rows (i < j), or between ``rows`` and ``cols``."""
    sizes = np.asarray(x.sum(axis=1)).ravel()
    within = rows is None
    rows = np.arange(x.shape[0]) if rows is None else np.asarray(rows)
    cols = rows if cols is None else np.asarray(cols)
    out_i, out_j, out_s = [], [], []
    if x.shape[1] == 0 or rows.size == 0 or cols.size == 0:
        return Pairs(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    right = x[cols].T.tocsc()
    step = max(16, min(_BLOCK, _BLOCK_PAIRS // cols.size))
    for start in range(0, rows.size, step):
        block = rows[start : start + step]
        # within one set only pairs i < j count: a block is compared with itself and the rows
        # after it, which halves the work
        first = start if within else 0
        inter = (x[block] @ right[:, first:]).tocoo()
        gi, gj = block[inter.row], cols[first + inter.col]
        union = sizes[gi] + sizes[gj] - inter.data
        sim = np.divide(inter.data, union, out=np.zeros_like(union), where=union > 0)
        keep = sim >= threshold
        if within:
            keep &= gi < gj
        out_i.append(gi[keep])
        out_j.append(gj[keep])
        out_s.append(sim[keep])
    i, j, s = (np.concatenate(a) for a in (out_i, out_j, out_s))
    order = np.lexsort((j, i))
    return Pairs(i[order].astype(np.int64), j[order].astype(np.int64), s[order].astype(np.float64))
