"""The curated stage alone over N generated records: wall time per phase and peak RSS.

    python benchmarks/curation_scale.py --data /tmp/tickets --n 1000000
    python benchmarks/curation_scale.py --n 100000            # generates the records first

Reads the first N records of ``generate_records.py``'s shards (the raw stage's reader, one
source per shard, the ``bench_corpus`` recipe of ``scale_benchmark.py``) and runs ``curate()``
in a child process, so its memory is measured alone: a sampler thread records the process's
RSS every 0.05 s, and each phase of the stage (language ID, decontamination, near-dup, ...)
is timed by wrapping its function. Writes ``benchmarks/results/curation_stage_<n>.json``; the table
is part of ``benchmarks/RESULTS.md`` (``scale_benchmark.py --report`` rebuilds it).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
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
PHASES = {  # module -> functions timed as phases of the stage
    "ftdata_pipeline.stages.curate": ["_measure", "_add_hashes", "add_prose", "_near_dedup"],
    "ftdata_pipeline.stages.curation.quality": ["add_quality_scores"],
    "ftdata_pipeline.stages.curation.language": ["add_language"],
    "ftdata_pipeline.stages.curation.safety": ["add_harm"],
    "ftdata_pipeline.stages.curation.decontaminate": ["add_contamination"],
}


class Peak(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        import psutil

        self.proc, self.halt = psutil.Process(), threading.Event()
        self.peak = self.phase = 0  # since the last reset of each

    def run(self) -> None:
        while not self.halt.is_set():
            rss = self.proc.memory_info().rss
            self.peak, self.phase = max(self.peak, rss), max(self.phase, rss)
            self.halt.wait(0.05)


def child(data: Path, n: int, out: Path) -> None:
    """Run in the child process: read, curate, write the measurements as JSON."""
    import importlib

    import polars as pl

    import scale_benchmark as sb
    from ftdata_pipeline.config.loader import load_project
    from ftdata_pipeline.stages.curate import curate
    from ftdata_pipeline.stages.raw import read_source

    sampler = Peak()
    sampler.start()
    phases: dict[str, dict] = {}
    for module_name, names in PHASES.items():
        module = importlib.import_module(module_name)
        for name in names:
            def timed(*a, _f=getattr(module, name), _name=name, **k):
                sampler.phase = 0
                t0 = time.perf_counter()
                result = _f(*a, **k)
                phase = phases.setdefault(_name.lstrip("_"), {"seconds": 0.0, "peak_rss_mb": 0})
                phase["seconds"] += time.perf_counter() - t0
                phase["peak_rss_mb"] = max(phase["peak_rss_mb"], sampler.phase / 2**20)
                return result
            setattr(module, name, functools.wraps(getattr(module, name))(timed))

    with tempfile.TemporaryDirectory() as tmp:
        cfg_dir = sb.write_configs(Path(tmp), sorted(data.glob("tickets-*.jsonl")))
        project = load_project(cfg_dir)
        recipe = project.recipes[sb.DATASET]
        t0 = time.perf_counter()
        frames, rows = [], 0
        for source in recipe.sources:  # only the shards the first n records need
            if rows >= n:
                break
            frames.append(read_source(source, project.sources[source], Path(project.root)).frame)
            rows += frames[-1].height
        raw = pl.concat(frames, how="diagonal_relaxed")
        raw = raw.head(n)
        del frames
        read_s, read_rss = time.perf_counter() - t0, sampler.peak / 2**20
        sampler.peak = 0
        t0 = time.perf_counter()
        result = curate(raw.lazy(), recipe, {s: project.sources[s] for s in recipe.sources},
                        root=Path(project.root))
        curate_s = time.perf_counter() - t0
    sampler.halt.set()
    out.write_text(json.dumps({
        "n": raw.height, "read_s": read_s, "read_peak_rss_mb": read_rss,
        "curate_s": curate_s, "curate_peak_rss_mb": sampler.peak / 2**20,
        "kept": result.kept.height, "rejected": result.rejected.height, "phases": phases,
    }))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--data", type=Path, help="generate_records.py shards (default: generate)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.data, args.n, args.child)
        return 0
    import generate_records
    import scale_benchmark as sb

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "data"
            generate_records.main(["--n", str(args.n), "--out", str(data)])
        out = Path(tmp) / "result.json"
        load_before = os.getloadavg()
        subprocess.run([sys.executable, __file__, "--n", str(args.n), "--data", str(data),
                        "--child", str(out)], check=True)
        report = json.loads(out.read_text())
    report |= {"load_before": load_before, "load_after": os.getloadavg(),
               "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "command": f"python benchmarks/curation_scale.py --n {args.n}",
               "machine": sb.machine_facts()}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"curation_stage_{report['n']}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
