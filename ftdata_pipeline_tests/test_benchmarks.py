"""The scale benchmark's parts: generated shards, the temporary config, equal work in pandas.

Timings are never asserted (they live in benchmarks/RESULTS.md); these tests keep the runner
usable when the configs or the curation rules change.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections import Counter

import pytest

from ftdata_pipeline.config.loader import load_project, project_root

sys.path.insert(0, str(project_root() / "benchmarks"))

import curation_pandas  # noqa: E402
import generate_records  # noqa: E402
import scale_benchmark  # noqa: E402


def test_generated_shards_have_the_demos_planted_rates(tmp_path):
    info = generate_records.write_shards(2100, tmp_path, shard_size=1000)
    assert [p.name for p in info["shards"]] == [
        "tickets-00000.jsonl", "tickets-00001.jsonl", "tickets-00002.jsonl"]
    rows = [json.loads(line) for p in info["shards"] for line in p.open()]
    assert len(rows) == 2100
    assert len({r["ticket_id"] for r in rows}) == 2100
    # the first 2,000 are one demo block: exactly the demo's planted counts
    truth = [json.loads(line)["kind"] for line in (tmp_path / "truth.jsonl").open()]
    block = Counter(truth[:2000])
    assert block["exact_dup"] == 100 and block["near_dup"] == 100
    assert sum(v for k, v in block.items() if k.startswith("junk_")) == 65
    bodies = Counter(r["body"] for r in rows[:2000])
    assert sum(c - 1 for c in bodies.values() if c > 1) >= 100  # exact duplicates are real


def test_shards_made_before_are_reused_only_at_their_size(tmp_path):
    made = generate_records.write_shards(50, tmp_path / "made", shard_size=20)
    again = generate_records.read_shards(tmp_path / "made", 50, tmp_path / "work" / "data")
    assert [p.name for p in again["shards"]] == [p.name for p in made["shards"]]
    assert again["kinds"] == made["kinds"]
    assert (tmp_path / "work" / "data" / "truth.jsonl").exists()
    with pytest.raises(SystemExit, match=r"truth\.jsonl: 50 records, not --n 60"):
        generate_records.read_shards(tmp_path / "made", 60, tmp_path / "other" / "data")


def test_benchmark_config_is_a_valid_project(tmp_path):
    info = generate_records.write_shards(50, tmp_path / "data", shard_size=20)
    cfg = scale_benchmark.write_configs(tmp_path, info["shards"])
    project = load_project(cfg)
    recipe = project.recipes[scale_benchmark.DATASET]
    assert recipe.sources == ["tickets_00000", "tickets_00001", "tickets_00002"]
    assert str(recipe.curate.as_of) == scale_benchmark.AS_OF
    assert project.recipes[scale_benchmark.DATASET].kind == "pretraining"


def test_pandas_rules_compute_what_the_stage_computes():
    tickets = (project_root() / "demo_data" / "support_tickets.jsonl").read_text().splitlines()
    texts = [unicodedata.normalize("NFC", f"{r['subject']}\n\n{r['body']}")
             for r in map(json.loads, tickets[:400])]
    texts += ["spam spam spam spam " * 40, "same line\nsame line\nsame line\nother", ""]
    curate = load_project().recipes["support_corpus"].curate
    quality = curate.quality.model_copy(update={"repetition_min_words": 5})
    curate = curate.model_copy(update={"quality": quality})
    ours = curation_pandas.polars_filters(texts, curate)
    theirs = curation_pandas.pandas_filters(texts, curate)
    curation_pandas.assert_same(ours, theirs)
    assert ours["top_2gram"].any() and ours["duplicate_lines"].any()
    assert ours["exact_duplicate"].any()


def test_curation_scale_measures_the_stage_alone_and_renders(tmp_path):
    import curation_scale
    import results_report

    generate_records.write_shards(600, tmp_path / "data", shard_size=250)
    assert curation_scale.main(["--n", "500", "--data", str(tmp_path / "data"),
                                "--results", str(tmp_path / "results")]) == 0
    report = json.loads((tmp_path / "results" / "curation_stage_500.json").read_text())
    assert report["n"] == 500 and report["kept"] + report["rejected"] == 500
    assert report["kept"] > 300
    assert {"add_language", "add_contamination", "near_dedup", "add_harm"} <= set(report["phases"])
    assert report["curate_peak_rss_mb"] > 0
    md = results_report.render([], [report])
    assert "## The curated stage alone" in md and "| 500 |" in md


def test_peak_table_compares_each_size_with_the_one_above_in_the_same_mode():
    import results_report

    def run(n, peak, steps, top="bench_corpus__split"):
        return {"n": n, "step_processes": steps, "pipeline": {
            "wall_s": n / 1000, "peak_tree_rss_mb": peak,
            "stages": [{"step": "raw", "peak_rss_mb": 10}, {"step": top, "peak_rss_mb": peak}]}}

    lines = results_report._peaks([run(10_000, 1000, False), run(100_000, 1200, False),
                                  run(1_000_000, 3000, True, "bench_corpus__curated"),
                                  run(2_000_000, 3300, True, "bench_corpus__curated")])
    rows = [line for line in lines if line.startswith("| 1") or line.startswith("| 2")]
    assert "| — |" in rows[0] and "+20% for 10x the records" in rows[1]
    assert "| — |" in rows[2]  # the first run of the other mode has nothing to compare with
    assert "+10% for 2x the records" in rows[3] and "each step in its own process" in rows[3]
    assert rows[3].endswith("bench_corpus__curated |")
    assert scale_benchmark.result_name(2_000_000, True) == "scale_2000000_step_processes.json"
    assert scale_benchmark.result_name(10_000, False) == "scale_10000.json"
