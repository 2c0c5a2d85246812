"""Renders benchmarks/RESULTS.md from the scale runs' JSON files (see scale_benchmark.py)."""

from __future__ import annotations


def _n(v, spec=",.0f") -> str:
    return "—" if v is None else format(v, spec)


def _machine(m: dict) -> list[str]:
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    return [
        f"- CPU: {m['cpu_model']}; {m['logical_cores']} logical cores, "
        f"{m['cores_available']} available to the process",
        f"- RAM: {m['ram_gb']} GB; {m['os']}; Python {m['python']}",
        f"- Versions: {versions}",
    ]


def _mode(r: dict) -> str:
    return ("each step in its own process" if r.get("step_processes")
            else "every step in the run's process")


def _peaks(reports: list[dict]) -> list[str]:
    """One line per run: how the peak of the process tree grows with the input."""
    lines = [
        "## Peak memory by input size",
        "",
        "Peak RSS of the whole process tree (the run, its step processes and the redaction "
        "pool), and the step during which it was reached:",
        "",
        "| records | steps run | wall, s | peak RSS, MB | peak vs the size above | "
        "step at the peak |",
        "|---:|---|---:|---:|---:|---|",
    ]
    previous: dict[bool, dict] = {}
    for r in reports:
        p = r["pipeline"]
        top = max(p["stages"], key=lambda s: s["peak_rss_mb"] or 0)
        mode = bool(r.get("step_processes"))
        before = previous.get(mode)
        growth = "—" if before is None else (
            f"{p['peak_tree_rss_mb'] / before['pipeline']['peak_tree_rss_mb'] - 1:+.0%} "
            f"for {r['n'] / before['n']:.0f}x the records")
        previous[mode] = r
        lines.append(f"| {r['n']:,} | {_mode(r)} | {p['wall_s']:,.1f} | "
                     f"{p['peak_tree_rss_mb']:,.0f} | {growth} | {top['step']} |")
    return lines + [""]


def _run(r: dict) -> list[str]:
    p = r["pipeline"]
    load_b = ", ".join(f"{x:.1f}" for x in r["load_before"])
    lines = [
        f"## {r['n']:,} records ({r['shards']} shard(s) of up to {r['shard_size']:,}), "
        f"{_mode(r)}",
        "",
        f"`{r['command']}` — run at {r['when_utc']} UTC. Load average (1/5/15 min) before: "
        f"{load_b}; mean 1-minute load during the pipeline: {r['load_during_mean']:.1f} "
        f"on {r['machine']['cores_available']} cores.",
        "",
        f"Planted in the input: {', '.join(f'{k} {v}' for k, v in r['planted'].items())}.",
        f"Rows out: {', '.join(f'{k} {_n(v)}' for k, v in p['rows_out'].items())}.",
        "",
        f"**Pipeline (`ftdata materialize --dataset bench_corpus"
        f"{' --step-processes' if r.get('step_processes') else ''}`): {p['wall_s']:,.1f} s wall "
        f"(process start, Definitions, every step and check), peak RSS of the process tree "
        f"{p['peak_tree_rss_mb']:,.0f} MB (up to {p['max_processes']} processes).**",
        "",
        "| step | seconds | records in | records/s | peak RSS of the tree during the step, MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in p["stages"]:
        lines.append(f"| {s['step']} | {s['seconds']:.1f} | {_n(s['records_in'])} | "
                     f"{_n(s['records_per_s'])} | {_n(s['peak_rss_mb'])} |")
    if "neardup" in r:
        base = r["neardup"][0]["docs_per_s"]
        lines += [
            "",
            f"Near-duplicate detection on the same {r['n']:,} texts, recipe settings "
            "(3-word shingles, 112 permutations, 28 bands x 4 rows, verified at 0.7). Recall = "
            "share of the planted near-duplicate tickets found in a verified pair:",
            "",
            "| method | seconds | docs/s | ours vs it | verified pairs | recall (planted) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for m in r["neardup"]:
            lines.append(f"| {m['method']} | {m['seconds']:.2f} | {_n(m['docs_per_s'])} | "
                         f"{base / m['docs_per_s']:.2f}x | {_n(m['pairs'])} | "
                         f"{_n(m['recall_planted'], '.4f')} |")
    if "filters" in r:
        base = r["filters"][0]["docs_per_s"]
        lines += [
            "",
            "Curation rules (quality scores, length/word bounds, stop words, exact-duplicate "
            "hash) on the same texts, NFC-normalized; both give identical columns "
            "(`curation_pandas.assert_same`):",
            "",
            "| method | seconds | docs/s | ours vs it |",
            "|---|---:|---:|---:|",
        ]
        for m in r["filters"]:
            lines.append(f"| {m['method']} | {m['seconds']:.2f} | {_n(m['docs_per_s'])} | "
                         f"{base / m['docs_per_s']:.2f}x |")
    if "pii" in r:
        plain = r["pii"][0]["texts_per_s"]
        lines += [
            "",
            f"PII redaction on the first {r['pii'][0]['texts']:,} distinct ticket texts "
            "(recipe entities, threshold and allow list on both sides; the pool's start-up, "
            "its fork server loading the model and each worker building its detector, is "
            "timed with it):",
            "",
            "| method | seconds | texts/s | vs plain loop |",
            "|---|---:|---:|---:|",
        ]
        for m in r["pii"]:
            lines.append(f"| {m['method']} | {m['seconds']:.1f} | {_n(m['texts_per_s'])} | "
                         f"{m['texts_per_s'] / plain:.2f}x |")
        red = next((s for s in p["stages"] if s["step"].endswith("redacted")), None)
        if red and red["records_per_s"]:
            lines.append(f"\nThe pipeline's `redacted` step ran at {red['records_per_s']:,.0f} "
                         f"records/s ({red['records_per_s'] / plain:.2f}x the plain loop's "
                         "texts/s; a pre-training record is one text).")
    if "load_after" in r:
        lines.append("\nLoad average after the comparisons: "
                     + ", ".join(f"{x:.1f}" for x in r["load_after"]) + ".")
    return lines + [""]


_PHASE_NAMES = {"add_language": "language ID", "add_contamination": "decontamination",
                "near_dedup": "near-dup", "add_quality_scores": "quality", "add_harm": "harmful",
                "add_prose": "prose view", "add_hashes": "hashes", "measure": "lengths"}


def _curation(runs: list[dict]) -> list[str]:
    """The curated stage alone (``curation_scale.py``): one row per size."""
    if not runs:
        return []
    phases = [k for k in _PHASE_NAMES if any(k in r["phases"] for r in runs)]
    lines = [
        "## The curated stage alone",
        "",
        "`python benchmarks/curation_scale.py --data DIR --n N`: the raw stage's reader, then",
        "`curate()` with the `bench_corpus` recipe in a child process; peak RSS of that process",
        "(sampled every 0.05 s). Memory follows a batch in language ID, the harmful-content",
        "model, decontamination and near-dup; what grows with N is the records themselves",
        "and the per-record columns. Before that (every phase over the whole input at once,",
        "all LSH candidate pairs held and de-duplicated together), 1,000,000 records took",
        "446 s and 9.1 GB on this machine; the superlinear part was the candidate pairs.",
        "",
        "| records | read s | curate s | records/s | peak RSS MB | kept | "
        + " | ".join(f"{_PHASE_NAMES[k]} s" for k in phases) + " | load before |",
        "|---:|---:|---:|---:|---:|---:|" + "---:|" * len(phases) + "---|",
    ]
    for r in sorted(runs, key=lambda r: r["n"]):
        cells = [f"{r['phases'][k]['seconds']:.1f}" if k in r["phases"] else "—" for k in phases]
        lines.append(
            f"| {r['n']:,} | {r['read_s']:.1f} | {r['curate_s']:.1f} | "
            f"{r['n'] / r['curate_s']:,.0f} | {r['curate_peak_rss_mb']:,.0f} | {r['kept']:,} | "
            + " | ".join(cells) + f" | {r['load_before'][0]:.1f} ({r['at']}) |"
        )
    return lines + [""]


def render(reports: list[dict], curation: list[dict] | None = None) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Measurements, not tests: nothing here is asserted in the test suite. Every figure below",
        "is regenerated from `benchmarks/results/scale_<n>[_step_processes].json` by",
        "`python benchmarks/scale_benchmark.py --report`.",
        "",
        "## Commands",
        "",
        "```bash",
        "make bench                                             # 10,000 records end to end + alternatives",
        "make bench BENCH_N=100000                              # any size",
        ".venv/bin/python benchmarks/generate_records.py --n 100000 --out /tmp/tickets   # data only",
        ".venv/bin/python benchmarks/scale_benchmark.py --n 10000 [--keep --work DIR] [--skip-alternatives]",
        ".venv/bin/python benchmarks/scale_benchmark.py --n 1000000 --data /tmp/tickets --skip-alternatives  # shards made before",
        ".venv/bin/python benchmarks/scale_benchmark.py --n 2000000 --skip-alternatives --step-processes  # each step in its own process",
        ".venv/bin/python benchmarks/neardup_benchmark.py --n 100000   # results/neardup.md",
        ".venv/bin/python benchmarks/pii_benchmark.py --n 5000         # results/pii.md",
        ".venv/bin/python benchmarks/ner_blas_benchmark.py             # results/ner_blas.md",
        ".venv/bin/python benchmarks/curation_scale.py --data /tmp/tickets --n 1000000  # curated stage alone",
        "```",
        "",
        "What the scale runner does: `generate_records.py` writes N tickets made by the demo",
        "generator (same length distribution, PII sentences, 5% exact and 5% near duplicates,",
        "junk, foreign-language and contaminated tickets) as JSONL shards; a temporary config",
        "directory gets one source per shard and the recipe `bench_corpus` (= `support_corpus`",
        "over those sources); `ftdata materialize` runs in a child process while a sampler sums",
        "the RSS of it and all its descendants every 0.2 s. Per-step times come from the Dagster",
        "run's step events (a step's time includes its asset checks). The alternatives then run",
        "on the same texts in the runner's process.",
        "",
    ]
    if reports:
        lines += ["## Machine", "", *_machine(reports[-1]["machine"]), "",
                  "**Run conditions**: the machine is shared; the load averages recorded with",
                  "each run show how much other work was running. Figures taken under load",
                  "understate what an idle machine does, and the parallel parts (the redaction",
                  "pool) suffer most.", ""]
    lines += _peaks(reports) if reports else []
    lines += _curation(curation or [])
    for r in reports:
        lines += _run(r)
    return "\n".join(lines)
