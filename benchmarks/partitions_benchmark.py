"""Incremental curation: one new partition against the dedup index, beside reprocessing all.

    python benchmarks/partitions_benchmark.py [--n 20000] [--partitions 10]
    python benchmarks/partitions_benchmark.py --n 1010000 --last 10000   # 10k on top of 1M

Corpus: ``neardup_benchmark.corpus`` (synthetic documents, 10% planted near-duplicate
clusters, copies spread over the corpus), cut into ``--partitions`` equal partitions in order;
``source_key`` is the zero-padded position, so one run over everything and partition-by-
partition see duplicates in the same order. Curation is the pretraining recipe's defaults with
the quality, language and harmful-content rules off (the texts are synthetic): normalization,
length filters, exact and near dedup (5-word shingles, 112 permutations, 14 x 8 bands, 0.8).

Measured, in this process, after a warm-up:
(a) incremental: the last partition curated against the index of the earlier ones (the
    partitions before it are curated first, untimed, to build the index);
(b) full: every row curated in one run, as an unpartitioned dataset does on every refresh.
Both results are compared: kept record ids of all partitions vs the full run. With ``--last K``
the corpus is cut into two partitions instead: everything but the last K rows, then K rows.
Writes benchmarks/results/partitions.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from neardup_benchmark import corpus  # noqa: E402

from ftdata_pipeline.config.models import RecipeConfig  # noqa: E402
from ftdata_pipeline.records import conform, record_id_expr  # noqa: E402
from ftdata_pipeline.stages.curate import curate  # noqa: E402
from ftdata_pipeline.stages.curation.index import PartitionDedup  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "partitions.md"


def recipe() -> RecipeConfig:
    return RecipeConfig.model_validate({
        "name": "bench", "kind": "pretraining", "sources": ["bench"],
        "exports": {"formats": ["trl_text"]},
        "curate": {"quality": {"enabled": False}, "language": {"enabled": False},
                   "harmful": {"enabled": False}, "min_words": 5},
    })


def frame(texts: list[str], start: int) -> pl.DataFrame:
    keys = [f"{i:08d}" for i in range(start, start + len(texts))]
    df = pl.DataFrame({"source": "bench", "source_key": keys, "text": texts})
    return conform(df.with_columns(record_id_expr(pl.col("source"), pl.col("source_key"))
                                   .alias("record_id")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--last", type=int, help="two partitions: all but the last K rows, K rows")
    args = parser.parse_args(argv)
    texts, _ = corpus(args.n)
    if args.last:
        cut = args.n - args.last
        parts = [frame(texts[:cut], 0), frame(texts[cut:], cut)]
    else:
        size = args.n // args.partitions
        parts = [frame(texts[i * size:(i + 1) * size], i * size) for i in range(args.partitions)]
    rec = recipe()
    curate(parts[0].head(200).lazy(), rec)  # warm-up (imports, regex compilation)

    index = PartitionDedup("warm").kept_entries.clear()
    kept_parts = []
    for i, part in enumerate(parts[:-1]):
        dedup = PartitionDedup(f"p{i:03d}", prior=index)
        kept_parts.append(curate(part.lazy(), rec, partition=dedup).kept)
        index = pl.concat([index, dedup.kept_entries])
    last = PartitionDedup(f"p{len(parts) - 1:03d}", prior=index)
    t0 = time.perf_counter()
    result = curate(parts[-1].lazy(), rec, partition=last)
    incremental = time.perf_counter() - t0
    kept_parts.append(result.kept)

    everything = pl.concat(parts)
    t0 = time.perf_counter()
    full = curate(everything.lazy(), rec)
    full_s = time.perf_counter() - t0

    inc_ids = set(pl.concat(kept_parts)["record_id"].to_list())
    full_ids = set(full.kept["record_id"].to_list())
    drops = result.drop_counts()
    lines = [
        "# Incremental curation of one partition vs reprocessing everything",
        "",
        f"`python benchmarks/partitions_benchmark.py --n {args.n} "
        + (f"--last {args.last}" if args.last else f"--partitions {args.partitions}")
        + f"` on {platform.machine()}, Python {platform.python_version()}, "
        "Polars " + pl.__version__ + " (a shared 2-core machine: other jobs may run).",
        "",
        "| run | rows curated | seconds | rows/s |",
        "|---|---:|---:|---:|",
        f"| incremental: last partition against the index ({index.height:,} entries) | "
        f"{parts[-1].height:,} | {incremental:.2f} | {parts[-1].height / incremental:,.0f} |",
        f"| full: every row in one run | {everything.height:,} | {full_s:.2f} | "
        f"{everything.height / full_s:,.0f} |",
        "",
        f"Kept rows: {len(inc_ids):,} partition by partition, {len(full_ids):,} in one run; "
        f"{len(inc_ids ^ full_ids)} differ.",
        f"Last partition's drops: {drops}.",
        "",
    ]
    out = OUT if not args.last else OUT.with_name(f"partitions_last_{args.last}_of_{args.n}.md")
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
