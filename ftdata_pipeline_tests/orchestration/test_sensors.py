"""A file landing in a source's location runs the datasets that read that source, once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dagster import SensorResult, SkipReason, build_sensor_context

from ftdata_pipeline.definitions import build_definitions

ROOT = Path(__file__).resolve().parents[2]


def _defs(tmp_path: Path, monkeypatch):
    root = tmp_path / "project"
    shutil.copytree(ROOT / "configs", root / "configs")
    shutil.copytree(ROOT / "demo_data", root / "demo_data")
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(root))
    return root, build_definitions(root / "configs", home=str(tmp_path / "home"))


def test_one_sensor_per_file_source_read_by_a_recipe(tmp_path, monkeypatch):
    _, defs = _defs(tmp_path, monkeypatch)
    names = sorted(s.name for s in defs.sensors)
    # chat_transcripts is a SQL source: nothing lands in a folder
    assert names == [
        "argilla_rankings_landing_sensor",
        "kb_articles_landing_sensor",
        "response_rankings_landing_sensor",
        "response_ratings_landing_sensor",
        "support_tickets_landing_sensor",
        "teacher_outputs_landing_sensor",
        "ticket_labels_landing_sensor",
        "ticket_review_landing_sensor",
        "user_queries_landing_sensor",
    ]


def test_new_file_requests_runs_of_the_datasets_reading_it(tmp_path, monkeypatch):
    root, defs = _defs(tmp_path, monkeypatch)
    sensor = defs.get_sensor_def("support_tickets_landing_sensor")

    first = sensor(build_sensor_context(cursor=None))
    assert isinstance(first, SensorResult)
    assert sorted(r.job_name for r in first.run_requests) == [
        "support_assistant_job",
        "support_corpus_job",
        "ticket_intents_job",
    ]

    again = sensor(build_sensor_context(cursor=first.cursor))
    assert isinstance(again, SkipReason)

    landed = root / "demo_data" / "support_tickets.jsonl"
    landed.write_text(landed.read_text("utf-8") + "\n", "utf-8")
    stat = landed.stat()
    os.utime(landed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed = sensor(build_sensor_context(cursor=first.cursor))
    assert isinstance(changed, SensorResult)
    assert len(changed.run_requests) == 3
    assert changed.cursor != first.cursor
    assert {r.run_key for r in changed.run_requests}.isdisjoint(
        {r.run_key for r in first.run_requests}
    )


def test_missing_file_is_skipped_with_its_path(tmp_path, monkeypatch):
    root, defs = _defs(tmp_path, monkeypatch)
    (root / "demo_data" / "kb_articles.parquet").unlink()
    result = defs.get_sensor_def("kb_articles_landing_sensor")(build_sensor_context())
    assert isinstance(result, SkipReason)
    assert "kb_articles.parquet" in result.skip_message
