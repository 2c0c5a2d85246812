"""N raw support tickets shaped like the demo's, written as JSONL shards, for scale benchmarks.

    python benchmarks/generate_records.py --n 100000 --out /tmp/bench [--shard-size 50000]

The records come from the demo generator itself (``ftdata_pipeline.demo.generate.build_tickets``),
one block of 2,000 tickets per seed, so length distribution, PII density and the planted
problems have the demo's rates by construction: per block 100 exact duplicates (5%), 100 near
duplicates (5%), 65 junk tickets (empty, too short, boilerplate), 45 non-English ones, 15 HTML,
15 odd-Unicode and 20 tickets that paste an evaluation prompt. Blocks use consecutive seeds, so
the data is deterministic for a given ``--n``; ticket ids are renumbered across blocks.

Writes ``tickets-00000.jsonl``... (the demo's ``support_tickets`` columns) and ``truth.jsonl``
(ticket id, planted kind: the ground truth for near-duplicate recall; never read by the
pipeline).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ftdata_pipeline.demo import generate as demo  # noqa: E402

BLOCK = demo.N_TICKETS


def tickets(n: int, seed: int = demo.DEFAULT_SEED) -> Iterator[dict]:
    """``n`` tickets (demo columns plus ``kind``), block by block, ids ``B-0000001``..."""
    eval_rows = demo.build_eval(seed)
    made = 0
    block = 0
    while made < n:
        for t in demo.build_tickets(seed + block, eval_rows):
            if made == n:
                break
            made += 1
            row = {f: (demo._iso(t["ts"]) if f == "created_at" else t[f])
                   for f in demo.TICKET_FIELDS}
            row["ticket_id"] = f"B-{made:07d}"
            row["kind"] = t["kind"]
            yield row
        block += 1


def write_shards(n: int, out: Path, shard_size: int = 50_000,
                 seed: int = demo.DEFAULT_SEED) -> dict:
    """Write the shards and truth file; return {shards: [paths], kinds: Counter, seconds}."""
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    shards: list[Path] = []
    kinds: Counter = Counter()
    fh = None
    truth = (out / "truth.jsonl").open("w", encoding="utf-8")
    try:
        for i, row in enumerate(tickets(n, seed)):
            if i % shard_size == 0:
                if fh:
                    fh.close()
                shards.append(out / f"tickets-{len(shards):05d}.jsonl")
                fh = shards[-1].open("w", encoding="utf-8")
            kind = row.pop("kind")
            kinds[kind] += 1
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            truth.write(json.dumps({"ticket_id": row["ticket_id"], "kind": kind}) + "\n")
    finally:
        if fh:
            fh.close()
        truth.close()
    return {"shards": shards, "kinds": kinds, "seconds": time.perf_counter() - start}


def read_shards(src: Path, n: int, link: Path) -> dict:
    """Shards written before by ``write_shards`` into ``src``, linked at ``link``; same return.

    The truth file must hold exactly ``n`` records, so a run cannot report the wrong size.
    """
    start = time.perf_counter()
    kinds: Counter = Counter()
    with (src / "truth.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            kinds[json.loads(line)["kind"]] += 1
    if sum(kinds.values()) != n:
        raise SystemExit(f"{src / 'truth.jsonl'}: {sum(kinds.values())} records, not --n {n}")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(src.resolve(), target_is_directory=True)
    shards = sorted(link.glob("tickets-*.jsonl"))
    return {"shards": shards, "kinds": kinds, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shard-size", type=int, default=50_000)
    args = parser.parse_args(argv)
    info = write_shards(args.n, args.out, args.shard_size)
    print(f"{args.n} records in {len(info['shards'])} shards under {args.out} "
          f"({info['seconds']:.1f} s); planted: {dict(sorted(info['kinds'].items()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
