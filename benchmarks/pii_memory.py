"""Peak memory of the redacted stage against the number of records, whole process tree.

    python benchmarks/pii_memory.py [--n 5000 20000] [--workers 2] [--label after]

Each size runs in a fresh Python process (so one size's peak does not carry into the next):
it builds N support-ticket records with the scale benchmark's generator (subject + body as
``text``, the agent's reply as ``response``: 2 texts per record, the demo's PII density),
writes them to a Parquet file and runs the stage function ``redact`` over a scan of it inside
``worker_pools()`` with the recipe's redaction settings, as the redacted asset does; the
start RSS is taken once the records have left the process. A sampler thread reads, every
0.2 s, the resident set size of that process and of every process below it (the fork server
and the pool's workers), and keeps the peak of their sum (RSS counts the pages that forked
workers share with the fork server in each of them, so this sum over-states the tree's real
use: it is the conservative figure) and the peak of their summed PSS (shared pages divided
among their sharers).

Figures go to benchmarks/results/pii_memory.json (one entry per label and size, so runs of
two versions of the code sit side by side) and pii_memory.md. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = ROOT / "benchmarks" / "results"
MB = 1024 * 1024


class TreeMemory:
    """Peak summed RSS and PSS of this process and its descendants, sampled in a thread."""

    def __init__(self, every: float = 0.2):
        import psutil

        self._me = psutil.Process()
        self._every = every
        self._stop = threading.Event()
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_procs = 0
        self._cpu: dict[int, float] = {}  # last CPU seconds seen per process of the tree
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        rss = pss = 0
        procs = [self._me, *self._me.children(recursive=True)]
        for proc in procs:
            try:
                info = proc.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            with contextlib.suppress(psutil.NoSuchProcess):
                self._cpu[proc.pid] = sum(proc.cpu_times()[:2])
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_procs = max(self.peak_procs, len(procs))

    @property
    def cpu_seconds(self) -> float:
        """User + system CPU seconds of every process of the tree, as last seen."""
        return sum(self._cpu.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._every)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def records(n: int):
    import generate_records
    import polars as pl

    rows = list(generate_records.tickets(n))
    return pl.DataFrame({
        "record_id": [r["ticket_id"] for r in rows],
        "source": ["support_tickets"] * n,
        "text": [f"{r['subject']}\n\n{r['body']}" for r in rows],
        "response": [r["agent_reply"] for r in rows],
    })


def stand_in_records(n: int):
    """N distinct records made from one block of 2,000 generated tickets, each text tagged
    with its record number (fast to build at a million records)."""
    import polars as pl

    block = records(min(n, 2000))
    reps = -(-n // block.height)
    frame = pl.concat([block] * reps).head(n).with_row_index("__i")
    tag = pl.lit(" #") + pl.col("__i").cast(pl.String)
    return frame.with_columns(
        pl.format("B-{}", pl.col("__i")).alias("record_id"),
        pl.col("text") + tag, pl.col("response") + tag,
    ).drop("__i")


def use_stand_in_detector() -> None:
    """Replace the detector by a regex (one EMAIL_ADDRESS span per e-mail address): what is
    left to measure is the stage's own bookkeeping -- frames, spans, memo, operators."""
    import re

    from ftdata_pipeline.stages.pii import engine

    email = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")

    def spans(self, texts):
        return [[("EMAIL_ADDRESS", m.start(), m.end(), 1.0) for m in email.finditer(t)]
                for t in texts]

    engine.Detector.spans = spans


def child(n: int, workers: int | None, recipe: str, stand_in: bool = False) -> dict:
    import polars as pl

    from ftdata_pipeline.config.loader import load_project
    from ftdata_pipeline.stages.pii.engine import worker_pools
    from ftdata_pipeline.stages.redact import PiiRedactor, redact

    cfg = load_project().recipes[recipe].redact
    if workers is not None:
        cfg = cfg.model_copy(update={"workers": workers})
    if stand_in:
        use_stand_in_detector()
        cfg = cfg.model_copy(update={"workers": 1})
        frame = stand_in_records(n)
    else:
        frame = records(n)
    texts = frame.height * 2
    distinct = frame.select(pl_concat_texts()).n_unique()
    with tempfile.TemporaryDirectory() as tmp:
        # The stage reads the stored curated stage (a Parquet scan), as the asset does: the
        # records are on disk, not in this process, when the measurement starts.
        stored = Path(tmp) / "curated.parquet"
        frame.write_parquet(stored)
        del frame
        gc.collect()
        with TreeMemory() as mem:
            base_rss = mem._me.memory_info().rss
            cpu0 = sum(mem._me.cpu_times()[:2])
            t0 = time.perf_counter()
            with worker_pools():
                result = redact(pl.scan_parquet(stored), cfg, PiiRedactor(cfg))
            secs = time.perf_counter() - t0
    return {
        "records": n, "texts": texts, "distinct_texts": distinct,
        "workers": cfg.workers, "seconds": round(secs, 1),
        "cpu_seconds": round(mem.cpu_seconds - cpu0, 1),
        "rows_kept": result.rows_kept, "texts_scanned": result.stats["texts_scanned"],
        "start_rss_mb": round(base_rss / MB), "peak_tree_rss_mb": round(mem.peak_rss / MB),
        "peak_tree_pss_mb": round(mem.peak_pss / MB), "processes": mem.peak_procs,
        "input": "parquet scan",
    }


def pl_concat_texts():
    import polars as pl

    return pl.concat_list("text", "response").explode().alias("t")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[5000, 20000], help="records")
    parser.add_argument("--workers", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--recipe", default="support_assistant")
    parser.add_argument("--label", default="current", help="name of this version of the code")
    parser.add_argument("--stand-in", action="store_true",
                        help="detection replaced by a regex, one process: the stage's own memory")
    parser.add_argument("--merge", type=Path, nargs="*", default=[],
                        help="results JSON files of other checkouts to merge into this one's")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        json.dump(child(args.child, args.workers, args.recipe, args.stand_in), sys.stdout)
        return 0

    out_json = RESULTS / "pii_memory.json"
    runs = json.loads(out_json.read_text()) if out_json.exists() else []
    for other in args.merge:
        runs += json.loads(other.read_text())
    if args.merge:
        args.n = []
    for n in args.n:
        cmd = [sys.executable, __file__, "--child", str(n), "--recipe", args.recipe]
        if args.workers is not None:
            cmd += ["--workers", str(args.workers)]
        if args.stand_in:
            cmd += ["--stand-in"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
        run = {"label": args.label, "detector": "regex stand-in" if args.stand_in else "Presidio",
               **json.loads(proc.stdout.strip().splitlines()[-1])}
        print(json.dumps(run), flush=True)
        same = (args.label, run["detector"], n)
        runs = [r for r in runs
                if (r["label"], r.get("detector", "Presidio"), r["records"]) != same] + [run]
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = list({(r["label"], r.get("detector", "Presidio"), r["records"]): r
                 for r in runs}.values())
    out_json.write_text(json.dumps(runs, indent=1) + "\n")
    lines = [
        "# Peak memory of the redacted stage vs records",
        "",
        f"`python benchmarks/pii_memory.py` on {platform.machine()}, Python "
        f"{platform.python_version()}: the `redact` stage function over N generated support "
        "tickets (2 texts each), recipe settings, inside `worker_pools()`. Peak of the summed "
        "RSS (conservative: shared pages count in every process) and PSS of the process and "
        "its descendants (fork server, pool workers), sampled every 0.2 s. The machine is "
        "shared with other work: seconds vary between runs; memory and CPU seconds (user + "
        "system, of the process and its descendants, workers included) much less.",
        "",
        "With `--stand-in` the detector is replaced by a regex (a span per e-mail address) "
        "in one process: spaCy's memory is gone and what remains is the stage's own "
        "(frames, spans, memo, operators), which is what grows with the records.",
        "",
        "Input: runs before the stage read its records in batches passed an in-memory frame "
        "(its size is in their start RSS); later ones a scan of a Parquet file, as the asset "
        "does, so what the stage holds is what grows past the start RSS.",
        "",
        "| code | detector | input | records | texts | distinct | workers | seconds "
        "| start RSS MB | peak tree RSS MB | peak tree PSS MB | CPU seconds |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(runs, key=lambda r: (r.get("detector", "Presidio"), r["records"],
                                         r["label"])):
        lines.append(
            f"| {r['label']} | {r.get('detector', 'Presidio')} | {r.get('input', 'in memory')} "
            f"| {r['records']} | {r['texts']} | {r['distinct_texts']} "
            f"| {r['workers'] or 'cores'} | {r['seconds']} | {r['start_rss_mb']} "
            f"| {r['peak_tree_rss_mb']} | {r['peak_tree_pss_mb']} "
            f"| {r.get('cpu_seconds', '')} |"
        )
    (RESULTS / "pii_memory.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
