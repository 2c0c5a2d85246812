"""Pairs at Jaccard >= 0.5 (split grouping and leakage): exact prefix filtering vs the
all-pairs product vs MinHash LSH, on one corpus in one run.

    python benchmarks/split_similarity_benchmark.py [--n 20000] [--corpus zipf|tickets]

Corpora:
- ``zipf``: ``--n`` ticket-like documents (20-40 words from a 5,000-word Zipf vocabulary,
  seed 20261130); 10% are planted pairs whose copy has 2-4 words replaced (word-3-shingle
  Jaccard ~0.4-0.75), i.e. under a dedup threshold of 0.7-0.8 but often over 0.5.
- ``tickets``: the distinct subject + body texts of ``--n`` tickets from
  ``generate_records.py`` (templated support text: a large share of all pairs share a
  common shingle, which is what makes an all-pairs product quadratic in practice).

(a) ours: ``ftdata_pipeline.stages.split.similarity`` — prefix filtering, size and overlap
    bounds, exact verification;
(b) all pairs: the same shingle matrix, the intersections of every pair by sparse matrix
    products in row blocks (exact; what (a) replaced);
(c) datasketch 2.0 ``MinHashLSH(threshold=0.5, num_perm=128)``, one query per document, each
    candidate verified with the exact Jaccard of the shingle sets.

Truth: (b) is every pair by construction; (a) must equal it, and the recall of (c) is
measured against it (and, on ``zipf``, against the planted pairs whose true Jaccard is
>= 0.5). Writes benchmarks/results/split_similarity_<corpus>.md.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ftdata_pipeline.stages.split.similarity import (  # noqa: E402
    shingle_matrix,
    shingles,
    similar_pairs,
)

sys.path.insert(0, str(ROOT / "benchmarks"))
import generate_records  # noqa: E402

SEED, K, THRESHOLD = 20261130, 3, 0.5
RESULTS = ROOT / "benchmarks" / "results"


def corpus(n: int) -> tuple[list[str], list[tuple[int, int]]]:
    rng = np.random.default_rng(SEED)
    vocab = np.array([f"w{i}" for i in range(5000)])
    p = 1.0 / np.arange(1, 5001) ** 1.05
    p /= p.sum()
    n_pairs = n // 20
    docs = [list(vocab[rng.choice(5000, size=int(rng.integers(20, 41)), p=p)])
            for _ in range(n - n_pairs)]
    planted = []
    for base in rng.choice(len(docs), size=n_pairs, replace=False):
        words = list(docs[base])
        for _ in range(int(rng.integers(2, 5))):
            words[int(rng.integers(0, len(words)))] = f"x{rng.integers(0, 10**6)}"
        docs.append(words)
        planted.append((int(base), len(docs) - 1))
    return [" ".join(d) for d in docs], planted


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def ticket_texts(n: int) -> list[str]:
    texts = (f"{t['subject'] or ''}\n{t['body'] or ''}" for t in generate_records.tickets(n))
    return sorted(set(texts))


def run_ours(texts: list[str]) -> set[tuple[int, int]]:
    pairs = similar_pairs(shingle_matrix(texts, K), THRESHOLD)
    return set(zip(pairs.i.tolist(), pairs.j.tolist()))


def run_all_pairs(texts: list[str], block: int = 2048) -> set[tuple[int, int]]:
    """Every pair's intersection by sparse products, rows i < j only, exact Jaccard."""
    x = shingle_matrix(texts, K)
    sizes = np.asarray(x.sum(axis=1)).ravel()
    found: set[tuple[int, int]] = set()
    for start in range(0, x.shape[0], block):
        inter = (x[start:] @ x[start : start + block].T).tocoo()
        j, i = inter.row + start, inter.col + start
        union = sizes[i] + sizes[j] - inter.data
        keep = (i < j) & (inter.data >= THRESHOLD * union) & (union > 0)
        found.update(zip(i[keep].tolist(), j[keep].tolist()))
    return found


def run_datasketch(texts: list[str]) -> set[tuple[int, int]]:
    from datasketch import MinHash, MinHashLSH

    sets = [set(shingles(t, K)) for t in texts]
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=128)
    hashes = []
    for i, s in enumerate(sets):
        m = MinHash(num_perm=128, seed=1)
        m.update_batch([x.encode() for x in s])
        lsh.insert(str(i), m)
        hashes.append(m)
    found = set()
    for i, m in enumerate(hashes):
        for key in lsh.query(m):
            j = int(key)
            if j > i and jaccard(sets[i], sets[j]) >= THRESHOLD:
                found.add((i, j))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--corpus", choices=("zipf", "tickets"), default="zipf")
    args = parser.parse_args()
    if args.corpus == "zipf":
        texts, planted = corpus(args.n)
    else:
        texts, planted = ticket_texts(args.n), []
    sets = [set(shingles(t, K)) for t in texts]
    truth_planted = {(a, b) for a, b in planted if jaccard(sets[a], sets[b]) >= THRESHOLD}
    methods = (("ours (prefix filter, exact)", run_ours), ("all pairs (sparse products)", run_all_pairs),
               ("datasketch MinHashLSH", run_datasketch))
    timings, results = {}, {}
    for name, fn in methods:
        start = time.perf_counter()
        results[name] = fn(texts)
        timings[name] = time.perf_counter() - start
    exact = results["all pairs (sparse products)"]
    rows = []
    for name, found in results.items():
        planted_recall = (f"{len(found & truth_planted) / len(truth_planted):.4f}"
                          if truth_planted else "—")
        rows.append(
            f"| {name} | {timings[name]:.1f} | {len(texts) / timings[name]:,.0f} | {len(found):,} | "
            f"{len(found & exact) / max(len(exact), 1):.4f} | {planted_recall} |"
        )
    about = (f"{len(planted)} planted pairs, {len(truth_planted)} of them at Jaccard >= {THRESHOLD}"
             if planted else f"{len(texts):,} distinct subject + body texts of {args.n:,} tickets")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = "\n".join([
        "# Pairs at Jaccard >= 0.5: prefix filtering vs all pairs vs MinHash LSH",
        "",
        f"`python benchmarks/split_similarity_benchmark.py --n {args.n} --corpus {args.corpus}` on "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
        f"{about}.",
        "",
        "| method | seconds | docs/s | pairs found | recall vs all pairs | recall of planted |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Peak RSS of the whole run: {peak_mb:,.0f} MB. The machine is shared with other jobs: "
        "compare the rows, not absolute times.",
        "",
    ])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"split_similarity_{args.corpus}.md").write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
