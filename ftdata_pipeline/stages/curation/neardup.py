"""Near-duplicate detection: MinHash signatures, LSH banding, Jaccard verification, clusters.

Written by hand and vectorized end to end (numpy + Polars); the only Python loops run over
chunks of shingles, LSH bands and label-propagation rounds, never over documents or pairs.

1. Tokens: lowercased ``\\w+`` runs (Polars). Each word gets a 64-bit hash from Polars'
   ``hash`` with a fixed seed; Polars only promises that hash to be stable within one version,
   which is pinned in requirements.lock (a Polars upgrade may change which pairs are found,
   never the run-to-run determinism).
2. Shingles: ``k`` consecutive words, combined into one 64-bit value by a polynomial over the
   word hashes (wrapping uint64 arithmetic). A document shorter than ``k`` words is one shingle.
3. MinHash: permutation i is the multiply-shift hash ``(a_i * x + b_i) >> 32`` (a_i odd,
   64-bit; a universal family), minimum per document via ``np.minimum.reduceat``.
4. LSH: ``bands`` x ``rows``; per band, documents with identical rows share a bucket and every
   member is paired with the earlier members of its bucket (at most 32 of them).
5. Verification: estimated Jaccard (share of equal signature slots) >= ``threshold``.
6. Clusters: connected components of verified pairs by iterative min-label propagation with
   pointer jumping; a cluster's label is its lowest document index.

Memory follows a batch, not the corpus: shingles and signatures are computed per batch of
documents (only the ``uint32`` signatures of all documents are kept, or a quarter of them
with the rest in a file: ``SpilledSignatures``), and candidate pairs are verified band by
band, in bounded chunks, as they are generated. A candidate whose two
documents are already in one cluster is skipped: it cannot change the clusters, and true
near-duplicates share most bands, so they are verified once instead of once per band. The
clusters are exactly those of verifying every candidate; the reported pairs are the verified
ones that joined two clusters (a spanning forest plus the pairs verified in the same chunk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from ftdata_pipeline.stages.spill import Matrix

_WORD_SEED = 0x9E3779B97F4A7C15 & 0xFFFFFFFF  # fixed seed for Polars' word hash
_SHINGLE_MULT = np.uint64(0x100000001B3)  # FNV-64 prime: mixes word hashes position-wise
_BAND_MULT = np.uint64(0x9E3779B97F4A7C15)
_CHUNK = 1 << 19  # shingles per minhash chunk: 4 MB of uint64 stays in cache
_CHUNK_DOCS = 1 << 14  # and documents per chunk: their signature rows (~5 MB) at once
_DOC_BATCH = 50_000  # documents per shingle/signature batch (their word hashes: ~40 MB)
_PAIR_BATCH = 1 << 22  # candidate pairs generated and verified at a time (~200 MB of arrays)
_GATHER_ROWS = 1 << 16  # signature rows read at a time for one band's keys
_EXACT_PAIRS = 1 << 16  # pairs compared on full rows read at a time (<= 59 MB of rows)


@dataclass(frozen=True)
class NearDupResult:
    """Per document: cluster label (index of the lowest member), and the verified pairs."""

    labels: np.ndarray  # int64, len n
    pair_i: np.ndarray  # int64
    pair_j: np.ndarray  # int64
    pair_sim: np.ndarray  # float64
    signatures: np.ndarray | SpilledSignatures  # uint32 (n, num_perm)
    has_tokens: np.ndarray  # bool, len n


def _word_hashes(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Flat uint64 word hashes and per-document word counts."""
    toks = texts.fill_null("").str.to_lowercase().str.extract_all(r"\w+")
    counts = toks.list.len().fill_null(0).to_numpy().astype(np.int64)
    # hashed inside the list, so no exploded string column is materialized
    hashes = toks.list.eval(pl.element().hash(seed=_WORD_SEED)).explode().drop_nulls()
    return hashes.to_numpy().astype(np.uint64, copy=False), counts


def shingle_hashes(texts: pl.Series, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat uint64 shingle hashes (grouped by document, in order) and shingles per document."""
    wh, counts = _word_hashes(texts)
    n_words = wh.shape[0]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    # Polynomial over the k words starting at each position. Windows that run into the next
    # document are computed too and thrown away below: cheaper than masking every add.
    sh = wh.copy()
    tmp = np.empty(n_words, dtype=np.uint64)
    mult = np.uint64(1)
    with np.errstate(over="ignore"):
        for j in range(1, k):
            mult = mult * _SHINGLE_MULT
            if j >= n_words:
                break
            np.multiply(wh[j:], mult, out=tmp[: n_words - j])
            sh[: n_words - j] += tmp[: n_words - j]
    idx_dtype = np.int32 if n_words < 2**31 else np.int64
    ends = np.repeat((starts + counts).astype(idx_dtype), counts)
    valid = np.arange(n_words, dtype=idx_dtype) + k <= ends
    del ends
    short = np.flatnonzero((counts > 0) & (counts < k))
    if short.size:
        # A document shorter than k words is one shingle: its words' polynomial, no overflow
        # into the next document.
        sel = np.flatnonzero(np.repeat((counts > 0) & (counts < k), counts))
        pos = sel - np.repeat(starts[short], counts[short])
        powers = np.ones(k, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(1, k):
                powers[j] = powers[j - 1] * _SHINGLE_MULT
            terms = wh[sel] * powers[pos]
        sh[starts[short]] = np.add.reduceat(terms, np.concatenate([[0], np.cumsum(counts[short])[:-1]]))
        valid[starts[short]] = True
    per_doc = np.where(counts >= k, counts - k + 1, np.minimum(counts, 1))
    return sh[valid], per_doc


def minhash(
    shingles: np.ndarray, per_doc: np.ndarray, num_perm: int, seed: int,
    perms: range | None = None,
) -> np.ndarray:
    """(n_docs, num_perm) uint32 signatures; documents without shingles get all-max rows.

    ``shingles``: non-negative integers of any width (a chunk at a time is widened to 64
    bits, so a caller's int32 column numbers are not copied whole). ``perms``: only these
    permutations of the ``num_perm`` (the same columns as the whole signature's), e.g. one
    LSH band's at a time, so that no caller has to hold every permutation at once."""
    rng = np.random.default_rng(seed)
    a = (rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) << np.uint64(1)) | np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    cols = range(num_perm) if perms is None else perms
    n = per_doc.shape[0]
    sig = np.full((n, len(cols)), np.iinfo(np.uint32).max, dtype=np.uint32)
    has = per_doc > 0
    docs = np.flatnonzero(has)
    if docs.size == 0:
        return sig
    bounds = np.concatenate([[0], np.cumsum(per_doc[docs])])
    tmp = np.empty(min(int(bounds[-1]), _CHUNK + int(per_doc.max())), dtype=np.uint64)
    # Flat in-place passes, one per permutation, over cache-sized chunks of whole documents:
    # ~25x faster than a (shingles x perms) broadcast, which is bound by its temporaries.
    # Each chunk's rows go straight into ``sig``: the split's similarity search signs every
    # distinct input at once, and a second (documents x perms) array was its peak.
    d0 = 0
    with np.errstate(over="ignore"):
        while d0 < docs.size:
            d1 = int(np.searchsorted(bounds, bounds[d0] + _CHUNK, side="right")) - 1
            d1 = min(max(d1, d0 + 1), docs.size, d0 + _CHUNK_DOCS)
            lo, hi = int(bounds[d0]), int(bounds[d1])
            x, buf, local = shingles[lo:hi], tmp[: hi - lo], bounds[d0:d1] - lo
            x = x if x.dtype == np.uint64 else x.astype(np.uint64)
            chunk = np.empty((d1 - d0, len(cols)), dtype=np.uint32)
            for c, p in enumerate(cols):
                np.multiply(x, a[p], out=buf)
                np.add(buf, b[p], out=buf)
                np.right_shift(buf, np.uint64(32), out=buf)
                chunk[:, c] = np.minimum.reduceat(buf, local)
            sig[docs[d0:d1]] = chunk
            d0 = d1
    return sig


def band_candidates(
    sig: np.ndarray, band: int, rows: int, idx: np.ndarray, max_partners: int = 32,
    batch: int = _PAIR_BATCH, release: Callable[[], None] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Candidate pairs ``(i, j)`` of one band, in chunks of at most about ``batch`` pairs.

    Each bucket member is paired with up to ``max_partners`` earlier members of its bucket
    (all pairs in ordinary buckets; bounded work in huge ones, e.g. thousands of copies of
    one boilerplate text, which are still connected through the bucket's first members).
    ``release``: called after each run of signature rows read (see ``SpilledSignatures``).
    """
    key = np.empty(idx.size, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for s in range(0, idx.size, _GATHER_ROWS):
            block = sig[idx[s : s + _GATHER_ROWS], band * rows : (band + 1) * rows]
            part = np.zeros(block.shape[0], dtype=np.uint64)
            for r in range(rows):
                part = part * _BAND_MULT + block[:, r].astype(np.uint64) + np.uint64(r + 1)
            key[s : s + _GATHER_ROWS] = part
            if release is not None:
                release()
    order = np.argsort(key, kind="stable")  # stable: bucket members in index order
    sk = key[order]
    new = np.ones(sk.size, dtype=bool)
    new[1:] = sk[1:] != sk[:-1]
    positions = np.arange(sk.size)
    group_start = np.maximum.accumulate(np.where(new, positions, 0))
    n_partners = np.minimum(positions - group_start, max_partners)
    ends = np.cumsum(n_partners)
    total = int(ends[-1]) if ends.size else 0
    p0 = done = 0
    while done < total:
        p1 = int(np.searchsorted(ends, done + batch, side="right"))
        p1 = min(max(p1, p0 + 1), sk.size)
        counts = n_partners[p0:p1]
        later = np.repeat(positions[p0:p1], counts)
        # 0, 1, .., n-1 within each run of repeats
        run_start = np.repeat(np.cumsum(counts) - counts, counts)
        earlier = group_start[later] + (np.arange(later.size) - run_start)
        yield idx[order[earlier]].astype(np.int64), idx[order[later]].astype(np.int64)
        done, p0 = int(ends[p1 - 1]), p1


def _join(labels: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Labels after adding edges ``i - j``: components of the clusters' roots, mapped back."""
    roots = connected_components(labels.shape[0], labels[i], labels[j])
    return roots[labels]


def jaccard_estimate(sig: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    out = np.empty(i.shape[0], dtype=np.float64)
    step = 1 << 16
    for s in range(0, i.shape[0], step):
        out[s : s + step] = (sig[i[s : s + step]] == sig[j[s : s + step]]).mean(axis=1)
    return out


def connected_components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Label = lowest index in the component (min-label propagation + pointer jumping)."""
    labels = np.arange(n, dtype=np.int64)
    if i.size == 0:
        return labels
    while True:
        m = np.minimum(labels[i], labels[j])
        new = labels.copy()
        np.minimum.at(new, i, m)
        np.minimum.at(new, j, m)
        while True:  # pointer jumping: follow labels to their roots
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, labels):
            return labels
        labels = new


def signatures(texts: pl.Series, k: int, num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures of every text and whether it has any token, in document batches."""
    sig = np.empty((texts.len(), num_perm), dtype=np.uint32)
    has = np.zeros(texts.len(), dtype=bool)
    sign_into(texts, k, seed, sig, has, np.arange(texts.len()))
    return sig, has


def sign_into(
    texts: pl.Series, k: int, seed: int, sig: np.ndarray, has: np.ndarray, rows: np.ndarray,
    sketch: np.ndarray | None = None,
) -> None:
    """``signatures`` of text i written to row ``rows[i]`` of ``sig`` and ``has`` (and of
    ``sketch``: see ``SpilledSignatures``), in document batches: a caller holding every
    document's row signs batches straight into it."""
    for start in range(0, texts.len(), _DOC_BATCH):
        part = texts.slice(start, _DOC_BATCH)
        shingles, per_doc = shingle_hashes(part, k)
        at = rows[start : start + part.len()]
        signed = minhash(shingles, per_doc, sig.shape[1], seed)
        sig[at] = signed
        if sketch is not None:
            sketch[at] = signed.astype(np.uint8)  # the low byte of each slot
        has[at] = per_doc > 0


class SpilledSignatures:
    """Signatures kept out of memory but for a quarter of them: for corpora whose signatures
    would be a process's largest state (448 bytes a document at the default settings).

    ``matrix`` (a ``spill.Matrix``) holds the full signatures in a file; LSH band keys read
    it a run of rows at a time, released after each. Verification reads rows at random and
    often (tens of candidate pairs a document on templated tickets), so memory keeps
    ``sketch``, the low byte of every slot: equal slots have equal low bytes, so the share of
    equal sketch slots is at least the share of equal slots, and a pair below the threshold
    there is below it for sure. Only the pairs that reach it are compared on their full rows,
    read from the file. Same pairs and similarities as full signatures in memory; a slot's
    low bytes match by chance one time in 256, so few pairs below the threshold are read.
    """

    def __init__(self, matrix: Matrix, sketch: np.ndarray) -> None:
        self.matrix = matrix
        self.sketch = sketch
        self.shape = sketch.shape

    def band_candidates(self, band: int, rows: int, idx: np.ndarray):
        return band_candidates(self.matrix.array, band, rows, idx, release=self.matrix.release)

    def similarity(self, i: np.ndarray, j: np.ndarray, at_least: float | None = None) -> np.ndarray:
        """``jaccard_estimate`` of the pairs; with ``at_least``, pairs below it may get an
        upper bound instead (still below it)."""
        sim = (jaccard_estimate(self.sketch, i, j) if at_least is not None
               else np.ones(i.size, dtype=np.float64))  # a row with itself: 1.0
        exact = np.flatnonzero(sim >= at_least) if at_least is not None else np.flatnonzero(i != j)
        for s in range(0, exact.size, _EXACT_PAIRS):
            k = exact[s : s + _EXACT_PAIRS]
            wanted = np.unique(np.concatenate([i[k], j[k]]))
            block = self.matrix.take(wanted)
            sim[k] = jaccard_estimate(
                block, np.searchsorted(wanted, i[k]), np.searchsorted(wanted, j[k])
            )
        return sim

    def in_memory(self) -> np.ndarray:
        return np.array(self.matrix.array[: self.shape[0]])


def similarity(
    sig: np.ndarray | SpilledSignatures, i: np.ndarray, j: np.ndarray,
    at_least: float | None = None,
) -> np.ndarray:
    """``jaccard_estimate`` of either kind of signatures (see ``SpilledSignatures``)."""
    if isinstance(sig, SpilledSignatures):
        return sig.similarity(i, j, at_least)
    return jaccard_estimate(sig, i, j)


def cluster_signatures(
    sig: np.ndarray | SpilledSignatures, has: np.ndarray, *, bands: int, rows: int,
    threshold: float,
) -> NearDupResult:
    """Clusters of documents by their signatures: LSH candidates verified band by band.

    ``sig``: an array, or ``SpilledSignatures`` (the same clusters and pairs)."""
    idx = np.flatnonzero(has)
    labels = np.arange(sig.shape[0], dtype=np.int64)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for band in range(bands):
        candidates = (sig.band_candidates(band, rows, idx) if isinstance(sig, SpilledSignatures)
                      else band_candidates(sig, band, rows, idx))
        for ci, cj in candidates:
            apart = labels[ci] != labels[cj]  # already one cluster: nothing to learn
            ci, cj = ci[apart], cj[apart]
            sim = similarity(sig, ci, cj, threshold)
            ok = sim >= threshold
            if ok.any():
                found.append((ci[ok], cj[ok], sim[ok]))
                labels = _join(labels, ci[ok], cj[ok])
    if found:
        pi, pj, ps = (np.concatenate(parts) for parts in zip(*found, strict=True))
        lo, hi = np.minimum(pi, pj), np.maximum(pi, pj)
        _, first = np.unique((lo << 32) | hi, return_index=True)  # sorted, one per pair
        pi, pj, ps = lo[first], hi[first], ps[first]
    else:
        pi = pj = np.zeros(0, np.int64)
        ps = np.zeros(0, np.float64)
    return NearDupResult(labels, pi, pj, ps, sig, has)


def find_near_duplicates(
    texts: pl.Series,
    *,
    shingle_words: int,
    num_perm: int,
    bands: int,
    rows: int,
    threshold: float,
    seed: int,
) -> NearDupResult:
    sig, has = signatures(texts, shingle_words, num_perm, seed)
    return cluster_signatures(sig, has, bands=bands, rows=rows, threshold=threshold)


def representatives(labels: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Per document, the index of its cluster's kept member: highest priority, then lowest index.

    ``priority`` is 0 everywhere for keep=first (the lowest index, i.e. the label, wins).
    """
    n = labels.shape[0]
    order = np.lexsort((np.arange(n), -priority, labels))
    sorted_labels = labels[order]
    first = np.ones(n, dtype=bool)
    first[1:] = sorted_labels[1:] != sorted_labels[:-1]
    rep_of_label = np.empty(n, dtype=np.int64)
    rep_of_label[sorted_labels[first]] = order[first]
    return rep_of_label[labels]
