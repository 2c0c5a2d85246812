"""Near-duplicate detection: the curate stage's MinHash + LSH against datasketch, same corpus.

    python benchmarks/neardup_benchmark.py [--n 100000]

Corpus: ``--n`` synthetic documents (70-150 words from a 20,000-word Zipf vocabulary), generated
deterministically (seed 20261001). 10% of them are planted near duplicates: clusters of 2-4
documents, each copy made from its cluster's base document by replacing one word (base-copy
Jaccard >= ~0.85; two copies of one base are linked through it).

Both methods get the same texts and settings: lowercased ``\\w+`` words, 5-word shingles,
112 permutations, 14 bands x 8 rows, candidate pairs verified at estimated Jaccard >= 0.8.

(a) ours: ``ftdata_pipeline.stages.curation.neardup.find_near_duplicates`` (Polars + numpy);
(b) datasketch 2.0: per document a ``MinHash`` (shared permutations) fed the same shingles,
    ``MinHashLSH(params=(14, 8))`` insert, then a query per document, candidates verified with
    ``MinHash.jaccard``. Python shingling is part of its time, as Polars tokenization is of ours.

Each method runs in its own subprocess, so peak memory is not shared: the kernel's peak-RSS
mark (VmHWM) is reset after the corpus is built, and the reported figure is the peak during
the run minus the RSS before it. Found pairs
are compared as "same cluster" pairs (connected components of verified pairs) against the
planted clusters. Writes benchmarks/results/neardup.md and neardup.png.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED = 20261001
SHINGLE, NUM_PERM, BANDS, ROWS, THRESHOLD = 5, 112, 14, 8, 0.8
RESULTS = ROOT / "benchmarks" / "results"


def corpus(n: int) -> tuple[list[str], np.ndarray]:
    """Texts and their planted cluster id (-1: not planted)."""
    rng = np.random.default_rng(SEED)
    syll = np.array(["ka", "lo", "mi", "tu", "re", "sa", "no", "vi", "de", "po", "an", "el"])
    vocab_size = 20_000
    parts = rng.integers(0, syll.size, size=(vocab_size, 4))
    lens = rng.integers(1, 5, size=vocab_size)
    vocab = np.array(["".join(syll[p[:k]]) + str(i % 97) for i, (p, k) in enumerate(zip(parts, lens))])
    zipf = 1.0 / np.arange(1, vocab_size + 1) ** 1.05
    zipf /= zipf.sum()

    n_planted = n // 10
    cluster = np.full(n, -1, dtype=np.int64)
    docs: list[list[str]] = []
    sizes = []
    while sum(sizes) < n_planted:
        sizes.append(int(rng.integers(2, 5)))
    sizes[-1] -= sum(sizes) - n_planted
    if sizes[-1] < 2:
        sizes.pop()
    n_base = n - sum(sizes) + len(sizes)
    for _ in range(n_base):
        docs.append(list(vocab[rng.choice(vocab_size, size=int(rng.integers(70, 151)), p=zipf)]))
    bases = rng.choice(n_base, size=len(sizes), replace=False)
    for cid, (base, size) in enumerate(zip(bases, sizes, strict=True)):
        cluster[base] = cid
        for _ in range(size - 1):
            words = list(docs[base])
            words[int(rng.integers(0, len(words)))] = str(vocab[rng.integers(0, vocab_size)])
            docs.append(words)
            cluster[len(docs) - 1] = cid
    order = rng.permutation(len(docs))  # planted copies are not next to their base
    return [" ".join(docs[i]) for i in order], cluster[order]


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    from ftdata_pipeline.stages.curation.neardup import connected_components

    return connected_components(n, np.asarray(i, np.int64), np.asarray(j, np.int64))


def same_cluster_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    pairs: set[tuple[int, int]] = set()
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    cuts = np.flatnonzero(np.diff(sorted_labels)) + 1
    for group in np.split(order, cuts):
        if group.size > 1 and labels[group[0]] >= 0:
            g = sorted(group.tolist())
            pairs.update((a, b) for k, a in enumerate(g) for b in g[k + 1 :])
    return pairs


def run_ours(texts: list[str], shingle: int = SHINGLE, num_perm: int = NUM_PERM,
             bands: int = BANDS, rows: int = ROWS,
             threshold: float = THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    import polars as pl

    from ftdata_pipeline.stages.curation.neardup import find_near_duplicates

    r = find_near_duplicates(
        pl.Series(texts, dtype=pl.String),
        shingle_words=shingle,
        num_perm=num_perm,
        bands=bands,
        rows=rows,
        threshold=threshold,
        seed=1,
    )
    return r.pair_i, r.pair_j


def _shingles(text: str, shingle: int, token=re.compile(r"\w+")) -> set[str]:
    w = token.findall(text.lower())
    return {" ".join(w[s : s + shingle]) for s in range(max(len(w) - shingle + 1, 1))}


def run_datasketch(texts: list[str], shingle: int = SHINGLE, num_perm: int = NUM_PERM,
                   bands: int = BANDS, rows: int = ROWS,
                   threshold: float = THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    from datasketch import MinHash, MinHashLSH

    template = MinHash(num_perm=num_perm, seed=1)  # default scheme (affine32)
    perms, scheme = template.permutations, template.scheme
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, params=(bands, rows))
    hashes = []
    for k, text in enumerate(texts):
        m = MinHash(num_perm=num_perm, permutations=perms, scheme=scheme)
        m.update_batch([s.encode("utf-8") for s in _shingles(text, shingle)])
        lsh.insert(k, m, check_duplication=False)
        hashes.append(m)
    pi, pj = [], []
    for k, m in enumerate(hashes):
        for other in lsh.query(m):
            if other > k and m.jaccard(hashes[other]) >= threshold:
                pi.append(k)
                pj.append(other)
    return np.array(pi, np.int64), np.array(pj, np.int64)


def run_rensa(texts: list[str], shingle: int = SHINGLE, num_perm: int = NUM_PERM,
              bands: int = BANDS, rows: int = ROWS,
              threshold: float = THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """rensa (Rust MinHash): ``RMinHash`` per document, ``RMinHashLSH`` with the same bands."""
    from rensa import RMinHash, RMinHashLSH

    assert bands * rows == num_perm
    lsh = RMinHashLSH(threshold=threshold, num_perm=num_perm, num_bands=bands)
    hashes = []
    for k, text in enumerate(texts):
        m = RMinHash(num_perm=num_perm, seed=1)
        m.update(list(_shingles(text, shingle)))
        lsh.insert(k, m)
        hashes.append(m)
    pi, pj = [], []
    for k, m in enumerate(hashes):
        for other in lsh.query(m):
            if other > k and m.jaccard(hashes[other]) >= threshold:
                pi.append(k)
                pj.append(other)
    return np.array(pi, np.int64), np.array(pj, np.int64)


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM), so the corpus build does not count."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _current_mb() -> float:
    return _status_mb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_mb() -> float:
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(method: str, n: int, out: Path) -> None:
    texts, _ = corpus(n)
    # warm the imports outside the timed region (both sides)
    if method == "ours":
        run_ours(texts[:200])
    else:
        run_datasketch(texts[:200])
    gc.collect()
    _reset_peak()
    base_rss = _current_mb()
    start = time.perf_counter()
    pi, pj = run_ours(texts) if method == "ours" else run_datasketch(texts)
    seconds = time.perf_counter() - start
    peak = _peak_mb()
    np.savez(out, pi=pi, pj=pj)
    out.with_suffix(".json").write_text(
        json.dumps({"seconds": seconds, "peak_rss_mb": peak, "base_rss_mb": base_rss})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--worker", choices=["ours", "datasketch"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.n, args.out)
        return

    RESULTS.mkdir(parents=True, exist_ok=True)
    texts, cluster = corpus(args.n)
    planted = same_cluster_pairs(cluster)
    runs = {}
    for method in ("ours", "datasketch"):
        out = RESULTS / f".neardup_{method}.npz"
        subprocess.run(
            [sys.executable, __file__, "--worker", method, "--n", str(args.n), "--out", str(out)],
            check=True,
        )
        data = np.load(out)
        meta = json.loads(out.with_suffix(".json").read_text())
        out.unlink()
        out.with_suffix(".json").unlink()
        labels = components(len(texts), data["pi"], data["pj"])
        found = same_cluster_pairs(labels)
        runs[method] = {
            **meta,
            "docs_per_s": len(texts) / meta["seconds"],
            "verified_pairs": int(data["pi"].size),
            "found": found,
            "recall": len(found & planted) / len(planted),
            "precision": len(found & planted) / len(found) if found else 1.0,
        }
        print(f"{method}: {meta['seconds']:.1f}s, recall {runs[method]['recall']:.4f}", flush=True)
    ours, ds = runs["ours"], runs["datasketch"]
    only_ours, only_ds = ours["found"] - ds["found"], ds["found"] - ours["found"]
    speedup = ours["docs_per_s"] / ds["docs_per_s"]
    write_report(args.n, len(planted), ours, ds, len(only_ours), len(only_ds), speedup)


def write_report(n, n_planted, ours, ds, only_ours, only_ds, speedup) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("ours (Polars + numpy)", ours), ("datasketch 2.0 MinHashLSH", ds)]
    table = "\n".join(
        f"| {name} | {r['seconds']:.1f} | {r['docs_per_s']:,.0f} | "
        f"{r['peak_rss_mb'] - r['base_rss_mb']:,.0f} | {r['peak_rss_mb']:,.0f} | "
        f"{r['verified_pairs']:,} | {r['recall']:.4f} | {r['precision']:.4f} |"
        for name, r in rows
    )
    cpu = platform.processor() or platform.machine()
    md = f"""# Near-duplicate detection: ours vs datasketch

Command: `.venv/bin/python benchmarks/neardup_benchmark.py --n {n}`

Machine: 2 cores ({cpu}), Python {platform.python_version()}, {platform.system()}.
Corpus: {n:,} synthetic documents (70-150 words), 10% planted in near-duplicate clusters of
2-4 (one word replaced per copy): {n_planted:,} planted same-cluster pairs.
Settings (both): 5-word shingles, 112 permutations, 14 bands x 8 rows, verified at estimated
Jaccard >= 0.8. Each method in its own process; memory is peak RSS during the run (VmHWM reset
after the corpus is built), shown as the increase over the RSS before the run and in total.

| method | wall s | docs/s | peak RSS increase MB | peak RSS MB | verified pairs | recall (planted pairs) | precision |
|---|---|---|---|---|---|---|---|
{table}

**Speedup: {speedup:.1f}x** datasketch's throughput.

Same-cluster pairs found by ours only: {only_ours:,}; by datasketch only: {only_ds:,}.
Recall is measured on all planted same-cluster pairs; pairs of a cluster whose copies were
edited apart below Jaccard 0.8 are expected misses for both (MinHash estimates the same
quantity with independent permutations, so the two miss slightly different pairs).
Polars uses both cores for tokenization; datasketch is single-threaded Python + numpy.
"""
    (RESULTS / "neardup.md").write_text(md)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    names = ["ours", "datasketch"]
    colors = ["#2a9d8f", "#e76f51"]
    axes[0].bar(names, [ours["docs_per_s"], ds["docs_per_s"]], color=colors)
    axes[0].set_title(f"throughput, docs/s ({speedup:.1f}x)")
    axes[1].bar(names, [ours["recall"], ds["recall"]], color=colors)
    axes[1].set_ylim(0, 1)
    axes[1].set_title("recall of planted pairs")
    axes[2].bar(
        names,
        [ours["peak_rss_mb"] - ours["base_rss_mb"], ds["peak_rss_mb"] - ds["base_rss_mb"]],
        color=colors,
    )
    axes[2].set_title("peak RSS increase, MB")
    fig.suptitle(f"MinHash + LSH near-dup detection, {n:,} docs, 2 cores")
    fig.tight_layout()
    fig.savefig(RESULTS / "neardup.png", dpi=110)
    print((RESULTS / "neardup.md").read_text())


if __name__ == "__main__":
    main()
