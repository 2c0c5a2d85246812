"""Exact Jaccard similarity of word shingles between example inputs, as sparse pairs.

Why not the curation stage's MinHash/LSH: that finds pairs above a high threshold (0.7-0.8)
at corpus scale and may miss some. Leakage is about the pairs *below* the dedup threshold
(0.5 and up) across splits, where a missed pair is a silent leak. So every pair is exact:

1. Each input becomes a binary sparse vector of its word shingles (``shingle_matrix``).
2. Candidates by prefix filtering (Chaudhuri et al. 2006; Xiao et al., PPJoin, 2008): with
   shingles ordered rarest first, two sets at Jaccard >= t share a shingle among the first
   ``|A| - ceil(t |A|) + 1`` of each. The shared prefix shingles of every pair are one
   sparse product of the (much sparser) prefix matrices, in row blocks to bound memory.
3. Two bounds drop most candidates without reading the sets: sizes (``t |A| <= |B|``), and
   the shared prefix count plus what can still match after the prefixes, against the
   overlap Jaccard >= t needs (``|A & B| >= t / (1 + t) (|A| + |B|)``).
4. The rest are verified: Jaccard = |A & B| / (|A| + |B| - |A & B|).

The filters only ever drop pairs that cannot reach the threshold (with a margin for
floating point), so the pairs are the same as an all-pairs product, without its cost:
templated text shares common shingles in a large share of all pairs, which made the plain
product quadratic in practice.

At scale the exact search stays quadratic on templated text: at Jaccard 0.5 a prefix is half
of a set, and support tickets written from a few hundred templates share common prefix
shingles in a few percent of *all* pairs (200k distinct ticket texts: 684M candidates, 84M
after the bounds, 3.4M pairs). So when the bound on the candidates (known from the prefix
shingles' frequencies before any product) exceeds ``_EXACT_WORK``, candidates come from
MinHash LSH instead (the curation stage's signatures and banding, over the same shingles):
bands sized so a pair at the threshold shares a band with probability >= 0.95, each input
paired with at most ``_PARTNERS`` first inputs (in text order) of each bucket, every
candidate verified exactly. Every pair returned still reaches the threshold; some are
missed, and ``Pairs.exact`` says which search ran, so reports can say so. The work is then
linear in the inputs (bands x partners per input).

Why hand-written: the all-pairs join is the split's core, and the libraries at hand either
approximate it (MinHash LSH) or compute every pair (scikit-learn's pairwise metrics).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import re

import numpy as np
import polars as pl
import scipy.sparse as sp

from ftdata_pipeline.stages.curation.neardup import band_candidates, minhash
from ftdata_pipeline.stages.spill import own_pages

_WORD = re.compile(r"\w+")
_BLOCK = 2048  # rows per block of the product at most
# Candidate entries per block at most (bounded from the prefix shingles' frequencies): on
# templated text a large share of all pairs share a common prefix shingle; this bounds the
# block's temporaries (~8M pairs, a few hundred MB) whatever the number of rows.
_BLOCK_PAIRS = 8_000_000
_TEXT_BATCH = 10_000  # texts of a Polars column that are Python strings at once
_BOUND_ROWS = 1 << 14  # rows whose prefixes are found at once for the bound (~10 MB)
_VERIFY = 50_000  # candidate pairs verified at a time (row copies of both sides: ~100 MB)
_LSH_BATCH = 1 << 20  # LSH candidates generated at a time (their keys, sizes: ~40 MB)
# Slack for the filters: a pair whose computed Jaccard reaches the threshold must never be
# dropped by a bound that rounds the other way.
_EPS = 1e-6
# Candidate entries the exact search may walk (its bound, summed over rows): ~300M is about
# 20-30 s on one core. Beyond it, LSH candidates (see the module docstring).
_EXACT_WORK = 300_000_000
_PERMS = 72  # MinHash permutations of the LSH search (one band's held at a time)
_PARTNERS = 8  # first members of its bucket each input is paired with, per band
_BAND_RECALL = 0.95  # chance that a pair exactly at the threshold shares a band
_SEED = 0
# Runs of found pairs at most (see ``_Found``): few enough that a run of a large search
# (~30k pairs at half a million inputs) is many pages, so it is mapped on its own.
_RUNS = 256
_NO_KEYS = np.empty(0, dtype=np.uint64)
_NO_SIMS = np.empty(0, dtype=np.float64)


@dataclass(frozen=True)
class Pairs:
    """Pairs (i, j) of input indices (int32, in (i, j) order) with their Jaccard similarity."""

    i: np.ndarray
    j: np.ndarray
    sim: np.ndarray
    exact: bool = True  # every pair at the threshold (else: LSH candidates, verified)

    def __len__(self) -> int:
        return int(self.i.shape[0])


def shingles(text: str, k: int) -> list[str]:
    """Lowercased word k-shingles; a text shorter than k words is one shingle of its words."""
    words = _WORD.findall(text.lower())
    if len(words) < k:
        return [" ".join(words)] if words else []
    return [" ".join(words[p : p + k]) for p in range(len(words) - k + 1)]


def shingle_matrix(
    texts: Sequence[str] | pl.Series, k: int, *, rows: np.ndarray | None = None
) -> sp.csr_matrix:
    """Binary (n_texts x n_shingles) matrix of ``shingles``; an empty text matches nothing.
    ``rows``: the texts' positions to take, in order (one matrix row each; default: all).

    Columns are the distinct shingles, numbered a batch of ``_TEXT_BATCH`` texts at a time (in
    a batch, new shingles in the order of their hashes): the same texts in the same order give
    the same matrix. Built by hand: CountVectorizer gathers every entry as int64 and copies
    them sorting its vocabulary, and any vocabulary of the shingle *strings* (a dict) costs
    ~110 bytes per distinct shingle, a few hundred MB on half a million tickets. Here a
    shingle is known by its 64-bit hash (Polars'), kept in one sorted array with its column:
    12 bytes per distinct shingle; entries are int32 from the start and one batch's strings
    are Python objects at a time. Two distinct shingles sharing a hash would share a column;
    among millions of shingles the chance is below one in a million.
    """
    known = np.empty(0, dtype=np.uint64)  # hashes of the shingles seen, sorted
    column = np.empty(0, dtype=np.int32)  # their columns
    parts: list[np.ndarray] = []
    per_row: list[np.ndarray] = []
    for batch in _text_batches(texts, rows):
        flat: list[str] = []
        sizes = np.empty(len(batch), dtype=np.int64)
        for r, text in enumerate(batch):
            found = shingles(text, k)
            flat.extend(found)
            sizes[r] = len(found)
        hashes = pl.Series(flat, dtype=pl.String).hash().to_numpy()
        del flat
        distinct, inverse = np.unique(hashes, return_inverse=True)
        at = np.searchsorted(known, distinct)
        seen = np.zeros(distinct.size, dtype=bool)
        if known.size:
            seen = known[np.minimum(at, known.size - 1)] == distinct
        ids = np.empty(distinct.size, dtype=np.int32)
        ids[seen] = column[at[seen]]
        fresh = np.flatnonzero(~seen)
        ids[fresh] = np.arange(column.size, column.size + fresh.size, dtype=np.int32)
        known = np.insert(known, at[fresh], distinct[fresh])
        column = np.insert(column, at[fresh], ids[fresh])
        # each row's distinct columns, sorted: (row << 32 | column) sorts by row, then column
        row = np.repeat(np.arange(len(batch), dtype=np.int64), sizes)
        keys = np.unique((row << 32) | ids[inverse].astype(np.int64))
        parts.append((keys & 0xFFFFFFFF).astype(np.int32))
        per_row.append(np.bincount(keys >> 32, minlength=len(batch)))
    n = len(texts) if rows is None else rows.size
    width = int(column.size)
    del known, column
    indices = np.concatenate(parts) if parts else np.empty(0, dtype=np.int32)
    del parts
    # one index type for both arrays, else scipy copies the indices to match
    indptr = np.zeros(n + 1, dtype=np.int32 if indices.size < 2**31 - 1 else np.int64)
    indices = indices.astype(indptr.dtype, copy=False)
    if per_row:
        np.cumsum(np.concatenate(per_row), out=indptr[1:])
    # int8 values: a product of two rows or a row sum is computed in a wider type (scipy's
    # sums widen small integers), and 1 byte an entry instead of 4
    matrix = sp.csr_matrix((np.ones(indices.size, dtype=np.int8), indices, indptr),
                           shape=(n, width))
    matrix.has_sorted_indices = True  # sorted per row above
    return matrix


def _text_batches(
    texts: Sequence[str] | pl.Series, rows: np.ndarray | None = None
) -> Iterator[list[str]]:
    """``_TEXT_BATCH`` texts at a time (a Polars column's are Python strings one batch at a
    time); with ``rows``, those positions in order (gathered a batch at a time: no copy of
    the texts)."""
    n = len(texts) if rows is None else rows.size
    for start in range(0, n, _TEXT_BATCH):
        if rows is not None:
            at = rows[start : start + _TEXT_BATCH]
            if isinstance(texts, pl.Series):
                yield texts.gather(at).to_list()
            else:
                yield [texts[r] for r in at.tolist()]
        elif isinstance(texts, pl.Series):
            yield texts.slice(start, _TEXT_BATCH).to_list()
        else:
            yield list(texts[start : start + _TEXT_BATCH])


def distinct_texts(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a string column in sorted order, as positions, not copies.

    Returns (``rows``: a row holding each distinct text, in the texts' sorted order;
    ``inverse``: each row's distinct number, int32). ``unique().sort()`` gives the same
    order but copies every distinct text (a few hundred MB at a million tickets, beside the
    column it came from); here the column is sorted by position and neighbours are told
    apart by their 64-bit hashes (two different neighbours sharing one: below one in a
    billion at a million texts). Nulls are one value, first.
    """
    n = texts.len()
    if n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32)
    order = texts.arg_sort().to_numpy()
    hashes = texts.hash().to_numpy()[order]
    new = np.ones(n, dtype=bool)
    new[1:] = hashes[1:] != hashes[:-1]
    del hashes
    inverse = np.empty(n, dtype=np.int32)
    inverse[order] = np.cumsum(new, dtype=np.int32) - 1
    return order[new].astype(np.int64), inverse


@dataclass(frozen=True)
class _Prefixes:
    """Each row's prefix (its rarest shingles) as a binary matrix, with what the bounds need."""

    matrix: sp.csr_matrix
    last: np.ndarray  # global rank of each row's last prefix shingle (-1: empty row)
    rest: np.ndarray  # shingles of each row after its prefix


def _prefixes(x: sp.csr_matrix, threshold: float, rank: np.ndarray | None = None) -> _Prefixes:
    """Each row's prefix, with the columns renumbered by rank (rarest shingle first).

    Built from ``_prefix_blocks`` (one definition of a prefix for the search and its bound),
    so only the prefix entries are kept, never a ranked copy of every entry. The products
    only compare prefixes with prefixes, so any fixed numbering of the columns gives the
    same pairs.
    """
    lengths = np.diff(x.indptr)
    prefix = _prefix_sizes(lengths, threshold)
    size = np.minimum(prefix, lengths)  # an empty row has an empty prefix
    indices = np.concatenate(
        [np.empty(0, dtype=np.int32)] + [r for _, r in _prefix_blocks(x, threshold, rank)]
    )
    indptr = np.zeros(x.shape[0] + 1, dtype=x.indptr.dtype)  # int64 would widen the indices
    np.cumsum(size, out=indptr[1:])
    # float32: products of prefixes count shared shingles, which may exceed an int8
    matrix = sp.csr_matrix(
        (np.ones(indices.size, dtype=np.float32), indices, indptr), shape=x.shape
    )
    last = np.full(x.shape[0], -1, dtype=np.int64)
    filled = size > 0
    last[filled] = indices[indptr[1:][filled] - 1]
    return _Prefixes(matrix, last, np.maximum(lengths - prefix, 0))


def _ranks(x: sp.csr_matrix) -> np.ndarray:
    """Each column's rank in the global order: rarest shingle first, ties by column (any
    fixed order is correct)."""
    n_cols = x.shape[1]
    freq = np.zeros(n_cols, dtype=np.int64)
    step = _BOUND_ROWS * 64  # entries counted at once: bincount widens its input to 64 bits
    for start in range(0, x.nnz, step):
        freq += np.bincount(x.indices[start : start + step], minlength=n_cols)
    rank = np.empty(n_cols, dtype=np.int32)
    rank[np.lexsort((np.arange(n_cols), freq))] = np.arange(n_cols, dtype=np.int32)
    return rank


def _prefix_sizes(lengths: np.ndarray, threshold: float) -> np.ndarray:
    """``|A| - ceil(t |A|) + 1`` per row (more than ``|A|`` for an empty row)."""
    return lengths - np.ceil(threshold * lengths - _EPS).astype(np.int64) + 1


def _prefix_blocks(
    x: sp.csr_matrix, threshold: float, rank: np.ndarray | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(row, rank) of every prefix entry, rows in order and each row's ranks ascending (its
    rarest shingles first), ``_BOUND_ROWS`` rows at a time.

    In rank numbering a row's sorted indices are its shingles rarest first, so its prefix is
    its first entries: scipy sorts each row's indices in place, and the other temporaries are
    one byte per entry (a lexsort over (row, rank) took ~48 bytes per entry). ``rank``:
    ``_ranks(x)``, when the caller has it already.
    """
    rank = _ranks(x) if rank is None else rank
    lengths = np.diff(x.indptr)
    size = np.minimum(_prefix_sizes(lengths, threshold), lengths)  # an empty row: none
    for first in range(0, x.shape[0], _BOUND_ROWS):
        last = min(first + _BOUND_ROWS, x.shape[0])
        begin, end = int(x.indptr[first]), int(x.indptr[last])
        indptr = x.indptr[first : last + 1] - begin
        block = sp.csr_matrix(
            (np.ones(end - begin, dtype=np.int8), rank[x.indices[begin:end]], indptr),
            shape=(last - first, x.shape[1]),
        )
        block.sort_indices()
        keep = size[first:last]
        # entries inside their row's prefix: +1 where a row starts, -1 where its prefix ends
        starts = indptr[:-1].astype(np.int64)
        delta = np.zeros(end - begin + 1, dtype=np.int8)
        np.add.at(delta, starts[keep > 0], 1)
        np.add.at(delta, (starts + keep)[keep > 0], -1)
        inside = np.cumsum(delta[:-1], dtype=np.int8).astype(bool)
        del delta
        yield (np.repeat(np.arange(first, last, dtype=np.int64), keep),
               block.indices[inside].astype(np.int32, copy=False))


def _exact_bound(x: sp.csr_matrix, threshold: float, rows: np.ndarray,
                 cols: np.ndarray | None, rank: np.ndarray | None = None) -> float:
    """The exact search's bound on its candidates (summed over ``rows``; see
    ``similar_pairs``), from the prefixes a block of rows at a time.

    The same integers as from the whole prefix matrix (``_prefixes``), without it: its ranked
    copy of the entries and their masks held ~12 bytes an entry beside the shingle matrix,
    the peak of both of the split's searches on a million inputs, when the LSH search that
    then runs needs none of it. Two passes: the left rows holding each prefix shingle, then
    each row's sum over its prefix.
    """
    rank = _ranks(x) if rank is None else rank  # one count of the columns for both passes
    weight = (np.ones(x.shape[0]) if cols is None
              else np.bincount(cols, minlength=x.shape[0]).astype(np.float64))
    left = np.zeros(x.shape[1])
    for row, ranks in _prefix_blocks(x, threshold, rank):
        left += np.bincount(ranks, weights=weight[row], minlength=x.shape[1])
    # a row listed twice counts twice, as ``work[rows]`` does
    asked = np.bincount(rows, minlength=x.shape[0]).astype(np.float64)
    total = 0.0
    for row, ranks in _prefix_blocks(x, threshold, rank):
        total += float((left[ranks] * asked[row]).sum())
    return total


def _may_reach(
    pre: _Prefixes, lengths: np.ndarray, i: np.ndarray, j: np.ndarray, shared: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """Whether candidate pairs can reach ``threshold`` (never False for one that does).

    Shingles of A & B in the prefix of the row whose prefix ends on the rarer shingle are
    also in the other's prefix (it holds every shingle of its row up to a later rank), so
    |A & B| <= shared + the shingles after that row's prefix.
    """
    a, b = lengths[i], lengths[j]
    rest = np.where(pre.last[i] <= pre.last[j], pre.rest[i], pre.rest[j])
    overlap_ok = (shared + rest) * (1 + threshold) >= threshold * (a + b) - _EPS
    return _sizes_fit(a, b, threshold) & overlap_ok


def _sizes_fit(a: np.ndarray, b: np.ndarray, threshold: float) -> np.ndarray:
    """Whether sets of sizes ``a`` and ``b`` can reach ``threshold``: ``t |A| <= |B|``."""
    return np.minimum(a, b) >= threshold * np.maximum(a, b) - _EPS


def _intersections(x: sp.csr_matrix, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """|A & B| of each pair (i, j), in chunks."""
    out = np.empty(i.size, dtype=np.float64)
    for start in range(0, i.size, _VERIFY):
        stop = start + _VERIFY
        both = x[i[start:stop]].multiply(x[j[start:stop]])
        out[start:stop] = np.asarray(both.sum(axis=1)).ravel()
    return out


def _blocks(work: np.ndarray) -> Iterator[tuple[int, int]]:
    """Consecutive ranges of rows (at most ``_BLOCK``) whose products hold at most
    ``_BLOCK_PAIRS`` entries by ``work``, the bound per row (a row above it goes alone).

    Sized by the work, not by the number of rows: rare prefixes make few candidates, and a
    block of a few rows against hundreds of thousands would spend its time walking them.
    """
    reached = np.concatenate(([0.0], np.cumsum(work)))
    start = 0
    while start < work.size:
        stop = int(np.searchsorted(reached, reached[start] + _BLOCK_PAIRS, side="right")) - 1
        stop = min(max(stop, start + 1), start + _BLOCK, work.size)
        yield start, stop
        start = stop


def _rows_from(m: sp.csr_matrix, first: int) -> sp.csr_matrix:
    """Rows ``first:`` of ``m`` as a view of its arrays (slicing would copy them per block)."""
    if first == 0:
        return m
    begin = m.indptr[first]
    return sp.csr_matrix(
        (m.data[begin:], m.indices[begin:], m.indptr[first:] - begin),
        shape=(m.shape[0] - first, m.shape[1]),
        copy=False,
    )


def similar_pairs(
    x: sp.csr_matrix,
    threshold: float,
    *,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
    exact_work: float | None = None,
) -> Pairs:
    """Pairs with Jaccard >= threshold: within all rows (i < j), or between ``rows`` and ``cols``.

    ``x``: a binary matrix (``shingle_matrix``), one row per input. Every pair when the exact
    search's candidate bound is at most ``exact_work`` (default ``_EXACT_WORK``), else LSH
    candidates (``Pairs.exact`` says which).
    """
    exact_work = _EXACT_WORK if exact_work is None else exact_work
    x = x.tocsr()
    within = rows is None
    rows = np.arange(x.shape[0]) if rows is None else np.asarray(rows)
    cols = rows if cols is None else np.asarray(cols)
    if x.shape[1] == 0 or rows.size == 0 or cols.size == 0:
        return Pairs(np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0))
    # A row's products hold at most the number of left rows sharing each of its prefix
    # shingles. Bounded a block of rows at a time first: the prefix matrix, the row copies
    # the exact search multiplies and its per-row work are made only once it is chosen.
    rank = _ranks(x)  # counted once for the bound and the prefixes; 4 bytes a shingle
    bound = _exact_bound(x, threshold, rows, None if within else cols, rank)
    if bound / (2 if within else 1) > exact_work:
        del rank  # the LSH search needs no prefixes
        return _lsh_pairs(x, threshold, rows, None if within else cols)
    pre = _prefixes(x, threshold, rank)
    del rank
    work = (pre.matrix @ _left_counts(pre.matrix, None if within else cols))[rows]
    left = pre.matrix if within else pre.matrix[cols].tocsr()
    return _exact_pairs(x, threshold, pre, left, work, rows, cols, within)


def _left_counts(matrix: sp.csr_matrix, cols: np.ndarray | None) -> np.ndarray:
    """Per column, the rows of ``matrix`` (those in ``cols``, counted as often as listed)
    holding it: ``np.bincount(matrix[cols].indices)`` without copying the rows."""
    width = matrix.shape[1]
    if cols is None:
        return np.bincount(matrix.indices, minlength=width).astype(np.float64)
    times = np.bincount(cols, minlength=matrix.shape[0])
    lengths = np.diff(matrix.indptr)
    if times.max(initial=0) <= 1:  # each listed once: one byte an entry selects them
        chosen = matrix.indices[np.repeat(times.astype(bool), lengths)]
        return np.bincount(chosen, minlength=width).astype(np.float64)
    weights = np.repeat(times.astype(np.float64), lengths)
    return np.bincount(matrix.indices, weights=weights, minlength=width)


def _exact_pairs(
    x: sp.csr_matrix, threshold: float, pre: _Prefixes, left: sp.csr_matrix, work: np.ndarray,
    rows: np.ndarray, cols: np.ndarray, within: bool,
) -> Pairs:
    sizes = np.asarray(x.sum(axis=1)).ravel()
    lengths = np.diff(x.indptr)
    found = _Found(x.shape[0])
    # Each block of rows is multiplied from the right (left @ block.T): converting the block
    # to the product's layout costs its own size, where block @ left.T would convert all of
    # ``left`` for every block.
    for start, stop in _blocks(work):
        block = rows[start:stop]
        # within one set only pairs i < j count: a block is compared with itself and the rows
        # after it, which halves the work
        first = start if within else 0
        cand = (_rows_from(left, first) @ pre.matrix[block].T).tocoo()
        gi, gj = block[cand.col], cols[first + cand.row]
        keep = _may_reach(pre, lengths, gi, gj, cand.data, threshold)
        if within:
            keep &= gi < gj
        gi, gj = gi[keep], gj[keep]
        sim = _jaccard(x, sizes, gi, gj)
        keep = sim >= threshold
        found.add(gi[keep], gj[keep], sim[keep])  # blocks find disjoint pairs
    return found.pairs(exact=True)


def _jaccard(x: sp.csr_matrix, sizes: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    inter = _intersections(x, i, j)
    union = sizes[i] + sizes[j] - inter
    return np.divide(inter, union, out=np.zeros_like(union), where=union > 0)


class _Found:
    """Pairs found so far: their keys ``i << 32 | j`` in order, with their similarities, in
    runs by ``i`` (one run per range of ``_RUN_ROWS`` inputs).

    16 bytes a pair, and the result in (i, j) order without sorting copies of (i, j, sim)
    gathered per block: at half a million ticket inputs the LSH search finds ~7M pairs (15M
    at 900k), and those copies, ~100 bytes a pair at once, were the split stage's peak.
    In runs because a batch is inserted into the runs it touches, each copied once: one
    ordered array of every pair was copied whole per insert (its size again at once), and
    ``pairs`` turns one run at a time into the result, so the keys and the result are never
    held whole at once. Each run is in pages of its own (``spill.own_pages``): from glibc's
    heap, a freed run stayed resident, under the result and every later phase. Pairs are added in batches not found before; ``unseen`` (the LSH
    search meets a pair again in later bands) sees every batch added so far.
    """

    def __init__(self, n_inputs: int) -> None:
        # inputs per run: a power of two, about ``_RUNS`` runs whatever the size
        self._shift = max(int(n_inputs - 1).bit_length() - _RUNS.bit_length() + 1, 0)
        runs = (max(n_inputs - 1, 0) >> self._shift) + 1
        self._keys = [np.empty(0, dtype=np.uint64) for _ in range(runs)]
        self._sims = [np.empty(0, dtype=np.float64) for _ in range(runs)]

    def __len__(self) -> int:
        return sum(k.size for k in self._keys)

    def add(self, i: np.ndarray, j: np.ndarray, sim: np.ndarray) -> None:
        """Pairs not found before, in any order."""
        self.add_keys((i.astype(np.uint64) << np.uint64(32)) | j.astype(np.uint64), sim)

    def add_keys(self, key: np.ndarray, sim: np.ndarray) -> None:
        """Pairs not found before as their keys (``unseen`` gives them so), in any order."""
        if not key.size:
            return
        sim = np.asarray(sim, dtype=np.float64)
        if np.any(key[1:] < key[:-1]):  # the LSH search's come sorted (``unseen``)
            order = np.argsort(key)
            key, sim = key[order], sim[order]
        for run, start, stop in self._spans(key):
            at = np.searchsorted(self._keys[run], key[start:stop])
            self._keys[run] = _inserted(self._keys[run], at, key[start:stop])
            self._sims[run] = _inserted(self._sims[run], at, sim[start:stop])

    def _spans(self, key: np.ndarray) -> Iterator[tuple[int, int, int]]:
        """(run, start, stop) of each run's stretch of the sorted ``key``."""
        if not key.size:
            return iter(())
        run = (key >> np.uint64(32 + self._shift)).astype(np.int64)
        edges = np.flatnonzero(np.diff(run)) + 1
        starts = np.concatenate(([0], edges))
        stops = np.concatenate((edges, [key.size]))
        return zip(run[starts].tolist(), starts.tolist(), stops.tolist(), strict=True)

    def unseen(self, key: np.ndarray) -> np.ndarray:
        """The distinct values of ``key`` not found yet, sorted.

        By sorting and ``searchsorted``: ``np.unique`` / ``np.isin`` hash 64-bit keys, which
        was most of the LSH search's time."""
        key = np.sort(key)
        first = np.ones(key.size, dtype=bool)
        first[1:] = key[1:] != key[:-1]
        key = key[first]
        seen = np.zeros(key.size, dtype=bool)
        for run, start, stop in self._spans(key):
            known = self._keys[run]
            if known.size:
                at = np.minimum(np.searchsorted(known, key[start:stop]), known.size - 1)
                seen[start:stop] = known[at] == key[start:stop]
        return key[~seen]

    def pairs(self, *, exact: bool) -> Pairs:
        """Every pair in (i, j) order; the runs are given up one at a time as they are copied."""
        total = len(self)
        i, j = own_pages(total, np.int32), own_pages(total, np.int32)
        sim = own_pages(total, np.float64)
        at = 0
        for run in range(len(self._keys)):
            keys, sims = self._keys[run], self._sims[run]
            self._keys[run], self._sims[run] = _NO_KEYS, _NO_SIMS
            stop = at + keys.size
            i[at:stop] = keys >> np.uint64(32)
            j[at:stop] = keys & np.uint64(0xFFFFFFFF)
            sim[at:stop] = sims
            at = stop
        return Pairs(i, j, sim, exact=exact)


def _inserted(old: np.ndarray, at: np.ndarray, new: np.ndarray) -> np.ndarray:
    """``np.insert(old, at, new)`` (``at`` sorted) into pages of its own (``own_pages``)."""
    out = own_pages(old.size + new.size, old.dtype)
    placed = at + np.arange(new.size)
    keep = np.ones(out.size, dtype=bool)
    keep[placed] = False
    out[keep] = old
    out[placed] = new
    return out


def band_rows(threshold: float, perms: int = _PERMS) -> int:
    """Rows per LSH band: the most (fewest false candidates) that still give a pair exactly
    at ``threshold`` a shared band with probability >= ``_BAND_RECALL``."""
    best = 1
    for r in range(1, perms + 1):
        if 1 - (1 - threshold**r) ** (perms // r) >= _BAND_RECALL:
            best = r
        else:
            break
    return best


def _lsh_pairs(
    x: sp.csr_matrix, threshold: float, rows: np.ndarray, cols: np.ndarray | None
) -> Pairs:
    """Pairs at ``threshold`` among LSH candidates (within ``rows``, or ``rows`` x ``cols``)."""
    lengths = np.diff(x.indptr)
    sizes = lengths.astype(np.float64)
    if cols is None:
        members = rows
    else:
        # Buckets pair each member with their first members: with ``cols`` first, an input of
        # ``rows`` meets the bucket's ``cols`` inputs, not its fellow ``rows``.
        members = np.concatenate((np.unique(cols), np.setdiff1d(rows, cols)))
    members = members[lengths[members] > 0]
    in_rows = np.zeros(x.shape[0], dtype=bool)
    in_rows[rows] = True
    in_cols = np.zeros(x.shape[0], dtype=bool)
    if cols is not None:
        in_cols[cols] = True
    r = band_rows(threshold)
    found = _Found(x.shape[0])
    if cols is not None:  # an input on both sides is its own neighbour, as in the exact search
        both = members[in_rows[members] & in_cols[members]]
        found.add(both, both, np.ones(both.size))
    for band in range(_PERMS // r):
        # The shingles' column numbers are the set elements MinHash permutes. Each band's
        # permutations are computed when its turn comes (the same work in all): every
        # input's whole signature (288 bytes) is never held, only its band's (12 bytes).
        sig = minhash(x.indices, lengths, _PERMS, _SEED, perms=range(band * r, (band + 1) * r))
        for a, b in band_candidates(sig, 0, r, members, max_partners=_PARTNERS,
                                    batch=_LSH_BATCH):
            if cols is None:
                gi, gj = np.minimum(a, b), np.maximum(a, b)
            else:  # oriented (row, col), either way round
                ab, ba = in_rows[a] & in_cols[b], in_rows[b] & in_cols[a]
                gi = np.concatenate((a[ab], b[ba]))
                gj = np.concatenate((b[ab], a[ba]))
            key = found.unseen((gi.astype(np.uint64) << np.uint64(32)) | gj.astype(np.uint64))
            gi = (key >> np.uint64(32)).astype(np.int64)
            gj = (key & np.uint64(0xFFFFFFFF)).astype(np.int64)
            fits = _sizes_fit(sizes[gi], sizes[gj], threshold)  # first: no set is read
            gi, gj, key = gi[fits], gj[fits], key[fits]
            sim = _jaccard(x, sizes, gi, gj)
            ok = sim >= threshold
            found.add_keys(key[ok], sim[ok])
    return found.pairs(exact=False)
