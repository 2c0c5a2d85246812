"""End-to-end scale run: materialize a dataset over N generated records, beside the alternatives.

    python benchmarks/scale_benchmark.py --n 10000 [--shard-size 50000] [--work DIR] [--step-processes]
    python benchmarks/scale_benchmark.py --report      # rebuild benchmarks/RESULTS.md only

1. ``generate_records.py`` writes N demo-shaped support tickets as JSONL shards.
2. A temporary config directory gets one file source per shard (the demo's ``support_tickets``
   entry pointed at the shard) and the recipe ``bench_corpus``: ``configs/datasets/
   support_corpus.yaml`` reading those sources (the KB articles left out, the curation date
   pinned, the eval set path made absolute).
3. ``ftdata --config-dir <tmp> materialize --dataset bench_corpus`` runs in a child process with
   its own FTDATA_HOME and DAGSTER_HOME (a SQLite instance); with ``--step-processes`` each step
   runs in a process of its own, as in a run launched from the UI (results in
   ``scale_<n>_step_processes.json``). A sampler thread sums the RSS of
   that process and all its descendants (the redaction pool's workers included) every 0.2 s;
   per-step wall times come from the run's STEP_START / STEP_SUCCESS events in the instance,
   records per stage from the stage stats files. A step's time includes its asset checks.
4. On the same data, in this process, after the pipeline has finished:
   - near-duplicate detection with the recipe's settings: ours, datasketch ``MinHashLSH`` and
     rensa ``RMinHashLSH`` (``neardup_benchmark.py``'s runners), recall = share of the planted
     near-duplicate tickets that end up in a verified pair;
   - PII: the plain Presidio loop (``pii_benchmark.PlainPresidio``: ``AnalyzerEngine.analyze``
     + ``AnonymizerEngine.anonymize`` per text) and the project's ``PiiRedactor`` (its process
     pool) on the same sample of distinct ticket texts;
   - curation filters: the quality scores, length/word bounds and exact-duplicate hashing of
     the curated stage (``add_quality_scores`` and friends, Polars) against a pandas version of
     the same rules, checked to give the same numbers.

Writes ``benchmarks/results/scale_<n>.json`` and regenerates ``benchmarks/RESULTS.md`` from every
``scale_*.json`` there (machine facts, commands, run conditions, tables).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import generate_records  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DATASET = "bench_corpus"
BASE_RECIPE = ROOT / "configs" / "datasets" / "support_corpus.yaml"
AS_OF = "2026-10-01"  # the demo generator's anchor date: no ticket is past retention
SAMPLE_S = 0.2
VERSIONED = ("dagster", "polars", "numpy", "pandas", "presidio-analyzer", "spacy",
             "datasketch", "rensa", "psutil", "pyarrow")


# ------------------------------------------------------------------------------------------
# configs and the pipeline run
# ------------------------------------------------------------------------------------------


def write_configs(work: Path, shards: list[Path]) -> Path:
    """A config dir with one source per shard and the ``bench_corpus`` recipe; returns it."""
    base_sources = yaml.safe_load((ROOT / "configs" / "sources.yaml").read_text())["sources"]
    template = base_sources["support_tickets"]
    sources = {
        f"tickets_{i:05d}": {**template, "path": str(shard),
                             "description": f"Generated support tickets, shard {i}"}
        for i, shard in enumerate(shards)
    }
    recipe = yaml.safe_load(BASE_RECIPE.read_text())
    recipe["sources"] = sorted(sources)
    recipe["description"] = "support_corpus over generated tickets (benchmark)"
    recipe.pop("schedule", None)
    recipe["curate"]["as_of"] = AS_OF
    for eval_set in recipe["curate"].get("decontamination", {}).get("eval_sets", []):
        eval_set["path"] = str((ROOT / eval_set["path"]).resolve())
    cfg = work / "configs"
    (cfg / "datasets").mkdir(parents=True, exist_ok=True)
    (cfg / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    (cfg / "datasets" / f"{DATASET}.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    return cfg


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants, plus the load average."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.samples: list[tuple[float, int, int]] = []  # (time, rss bytes, processes)
        self.loads: list[float] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            rss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            self.samples.append((time.time(), rss, len(procs)))
            self.loads.append(os.getloadavg()[0])
            self._halt.wait(SAMPLE_S)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        inside = [rss for t, rss, _ in self.samples if start <= t <= end]
        if not inside:  # a step shorter than the sampling interval: the nearest sample before
            inside = [rss for t, rss, _ in self.samples if t <= end][-1:]
        return max(inside, default=0)


def run_pipeline(work: Path, cfg: Path, step_processes: bool = False) -> dict:
    home, dagster_home = work / "home", work / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "FTDATA_HOME": str(home), "DAGSTER_HOME": str(dagster_home),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("FTDATA_CATALOG_URL", None)
    cmd = [sys.executable, "-m", "ftdata_pipeline.cli", "--config-dir", str(cfg),
           "materialize", "--dataset", DATASET, *(["--step-processes"] if step_processes else [])]
    start = time.time()
    proc = subprocess.Popen(cmd, env=env, cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    output = proc.communicate()[0]
    wall = time.time() - start
    sampler.stop()
    if proc.returncode != 0:
        print(output[-4000:], file=sys.stderr)
        raise SystemExit(f"pipeline run failed (exit {proc.returncode}); work dir {work}")
    return {"wall_s": wall, "sampler": sampler, "home": home, "dagster_home": dagster_home,
            "start": start, "output": output}


def step_windows(dagster_home: Path) -> list[tuple[str, float, float]]:
    """(step key, start, end) of every step of the latest run, in start order."""
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        run = instance.get_runs(limit=1)[0]
        starts, ends = {}, {}
        for rec in instance.all_logs(run.run_id):
            ev = rec.dagster_event
            if ev is None:
                continue
            if ev.event_type == DagsterEventType.STEP_START:
                starts.setdefault(ev.step_key, rec.timestamp)
            elif ev.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                ends[ev.step_key] = rec.timestamp
    return sorted(((k, s, ends.get(k, s)) for k, s in starts.items()), key=lambda r: r[1])


def stage_rows(home: Path, n: int, step: str) -> int | None:
    """Records a step read: the stage's rows_in from its stats; raw steps read their shard."""
    stage = step.split("__")[-1]
    if step.startswith("raw"):
        return None
    if stage in ("exports", "card"):
        stage = "split"
        key = "rows_out"
    else:
        key = "rows_in"
    path = home / "stats" / DATASET / f"{stage}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text()).get(key)


def stage_table(run: dict, n: int, shards: list[Path]) -> list[dict]:
    sampler: TreeSampler = run["sampler"]
    rows = []
    raw_steps = []
    for key, start, end in step_windows(run["dagster_home"]):
        recs = stage_rows(run["home"], n, key)
        if key.startswith("raw"):
            raw_steps.append((start, end))
            continue
        rows.append({"step": key, "seconds": end - start, "records_in": recs,
                     "peak_rss_mb": sampler.peak(start, end) / 2**20})
    if raw_steps:  # shards are read one step each: report them as one line
        start = min(s for s, _ in raw_steps)
        end = max(e for _, e in raw_steps)
        rows.insert(0, {"step": f"raw ({len(raw_steps)} shard step(s))",
                        "seconds": sum(e - s for s, e in raw_steps), "records_in": n,
                        "peak_rss_mb": sampler.peak(start, end) / 2**20})
    for r in rows:
        r["records_per_s"] = (r["records_in"] / r["seconds"]
                              if r["records_in"] and r["seconds"] > 0 else None)
    return rows


# ------------------------------------------------------------------------------------------
# the alternatives, on the same data
# ------------------------------------------------------------------------------------------


def load_texts(shards: list[Path], work: Path) -> tuple[list[str], list[str]]:
    """Each ticket's ``subject\\n\\nbody`` (the recipe's text mapping) and its planted kind."""
    texts = []
    for shard in shards:
        with shard.open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                texts.append(f"{row['subject'] or ''}\n\n{row['body'] or ''}")
    with (work / "data" / "truth.jsonl").open() as fh:
        kinds = [json.loads(line)["kind"] for line in fh]
    return texts, kinds


def compare_neardup(texts: list[str], kinds: list[str], cfg) -> list[dict]:
    import numpy as np

    import neardup_benchmark as nd

    nd_cfg = cfg.curate.near_dedup
    params = dict(shingle=nd_cfg.shingle_words, num_perm=nd_cfg.num_perm, bands=nd_cfg.bands,
                  rows=nd_cfg.rows, threshold=nd_cfg.threshold)
    planted = np.array([k == "near_dup" for k in kinds])
    out = []
    for name, fn in (("ours (Polars + numpy)", nd.run_ours),
                     ("datasketch MinHashLSH", nd.run_datasketch),
                     ("rensa RMinHashLSH", nd.run_rensa)):
        fn(texts[:200], **params)  # imports and first-call set-up outside the timing
        t0 = time.perf_counter()
        pi, pj = fn(texts, **params)
        secs = time.perf_counter() - t0
        in_pair = np.zeros(len(texts), bool)
        in_pair[pi] = True
        in_pair[pj] = True
        out.append({"method": name, "seconds": secs, "docs_per_s": len(texts) / secs,
                    "pairs": int(pi.size),
                    "recall_planted": float(in_pair[planted].mean()) if planted.any() else None})
        print(f"  near-dup {name}: {secs:.1f} s", flush=True)
    return out


def compare_pii(texts: list[str], cfg, sample: int) -> list[dict]:
    import pii_benchmark as pb

    from ftdata_pipeline.stages.pii import engine as pii_engine
    from ftdata_pipeline.stages.redact import PiiRedactor, clear_memos

    distinct = list(dict.fromkeys(t for t in texts if t.strip()))[:sample]
    redact_cfg = cfg.redact
    plain = pb.PlainPresidio(redact_cfg)
    plain.redact(distinct[:20])
    t0 = time.perf_counter()
    plain.redact(distinct)
    plain_s = time.perf_counter() - t0
    print(f"  PII plain loop: {plain_s:.1f} s", flush=True)
    clear_memos()
    ours = PiiRedactor(redact_cfg)  # pool start-up and model loading in the workers count
    t0 = time.perf_counter()
    ours.redact_texts(distinct)
    ours_s = time.perf_counter() - t0
    pii_engine.shutdown_pools()
    workers = redact_cfg.workers or pii_engine.available_cores()
    print(f"  PII ours: {ours_s:.1f} s", flush=True)
    return [
        {"method": "plain Presidio loop (analyze + anonymize per text)", "texts": len(distinct),
         "seconds": plain_s, "texts_per_s": len(distinct) / plain_s},
        {"method": f"PiiRedactor ({workers} workers)", "texts": len(distinct),
         "seconds": ours_s, "texts_per_s": len(distinct) / ours_s},
    ]


def compare_filters(texts: list[str], cfg) -> list[dict]:
    import unicodedata

    import curation_pandas

    # The stage measures NFC-normalized text; decomposed accents would split Python's \w words.
    texts = [unicodedata.normalize("NFC", t) for t in texts]
    out = []
    for name, fn in (("ours (Polars)", curation_pandas.polars_filters),
                     ("pandas", curation_pandas.pandas_filters)):
        fn(texts[:200], cfg.curate)
        t0 = time.perf_counter()
        result = fn(texts, cfg.curate)
        secs = time.perf_counter() - t0
        out.append({"method": name, "seconds": secs, "docs_per_s": len(texts) / secs,
                    "result": result})
        print(f"  curation filters {name}: {secs:.1f} s", flush=True)
    curation_pandas.assert_same(out[0].pop("result"), out[1].pop("result"))
    return out


# ------------------------------------------------------------------------------------------
# machine facts and the report
# ------------------------------------------------------------------------------------------


def machine_facts() -> dict:
    model = next((line.split(":", 1)[1].strip()
                  for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    versions = {}
    for pkg in VERSIONED:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {"cpu_model": model, "logical_cores": os.cpu_count(),
            "cores_available": len(os.sched_getaffinity(0)),
            "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "os": platform.platform(),
            "versions": versions}


def run(args) -> dict:
    from ftdata_pipeline.config.loader import load_project

    work = Path(args.work or tempfile.mkdtemp(prefix="ftdata-scale-"))
    print(f"work dir: {work}", flush=True)
    load_before = os.getloadavg()
    if args.data:
        gen = generate_records.read_shards(Path(args.data), args.n, work / "data")
    else:
        gen = generate_records.write_shards(args.n, work / "data", args.shard_size)
    shards = gen["shards"]
    print(f"generated {args.n} records in {len(shards)} shard(s), {gen['seconds']:.1f} s",
          flush=True)
    cfg_dir = write_configs(work, shards)
    result = run_pipeline(work, cfg_dir, args.step_processes)
    print(f"pipeline: {result['wall_s']:.1f} s", flush=True)
    sampler: TreeSampler = result["sampler"]
    stages = stage_table(result, args.n, shards)
    recipe = load_project(cfg_dir).recipes[DATASET]
    texts, kinds = load_texts(shards, work)
    report = {
        "n": args.n,
        "shards": len(shards),
        "shard_size": args.shard_size,
        "planted": dict(sorted(gen["kinds"].items())),
        "command": f"python benchmarks/scale_benchmark.py --n {args.n} "
                   f"--shard-size {args.shard_size}"
                   + (" --step-processes" if args.step_processes else "")
                   + (" --skip-alternatives" if args.skip_alternatives else ""),
        "step_processes": bool(args.step_processes),
        "when_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(result["start"])),
        "machine": machine_facts(),
        "load_before": load_before,
        "load_during_mean": sum(sampler.loads) / max(len(sampler.loads), 1),
        "pipeline": {
            "wall_s": result["wall_s"],
            "peak_tree_rss_mb": sampler.peak() / 2**20,
            "max_processes": max((p for _, _, p in sampler.samples), default=0),
            "stages": stages,
            "rows_out": {s: json.loads((result["home"] / "stats" / DATASET / f"{s}.json")
                                       .read_text()).get("rows_out")
                         for s in ("curated", "redacted", "labeled", "split")
                         if (result["home"] / "stats" / DATASET / f"{s}.json").exists()},
        },
    }
    if not args.skip_alternatives:
        print("alternatives on the same data:", flush=True)
        report["neardup"] = compare_neardup(texts, kinds, recipe)
        report["filters"] = compare_filters(texts, recipe)
        report["pii"] = compare_pii(texts, recipe, args.pii_sample)
        report["load_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / result_name(args.n, args.step_processes)).write_text(
        json.dumps(report, indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return report


def result_name(n: int, step_processes: bool) -> str:
    """One result file per size and way of running the steps."""
    return f"scale_{n}{'_step_processes' if step_processes else ''}.json"


def render(reports: list[dict]) -> str:
    import results_report

    curation = [json.loads(p.read_text()) for p in RESULTS.glob("curation_stage_*.json")]
    return results_report.render(reports, curation)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--shard-size", type=int, default=50_000)
    parser.add_argument("--work", help="work directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--data", help="shards written before by generate_records.py --n N "
                        "(same N; generating 1M records takes about 25 minutes)")
    # 5,000: the pool's start-up (fork server, model, one detector per worker, ~1 s) is timed
    # with it; on 1,000 texts that fixed cost was a third of the pool's time.
    parser.add_argument("--pii-sample", type=int, default=5000,
                        help="distinct texts for the plain-Presidio comparison")
    parser.add_argument("--skip-alternatives", action="store_true")
    parser.add_argument("--step-processes", action="store_true",
                        help="materialize with each step in a process of its own (as runs "
                        "launched from the UI), instead of every step in the run's process")
    parser.add_argument("--report", action="store_true",
                        help="only rebuild benchmarks/RESULTS.md from results/scale_*.json")
    args = parser.parse_args(argv)
    if not args.report:
        run(args)
    reports = [json.loads(p.read_text()) for p in RESULTS.glob("scale_*.json")]
    reports.sort(key=lambda r: (r.get("step_processes", False), r["n"]))
    (ROOT / "benchmarks" / "RESULTS.md").write_text(render(reports))
    print(f"wrote {ROOT / 'benchmarks' / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
