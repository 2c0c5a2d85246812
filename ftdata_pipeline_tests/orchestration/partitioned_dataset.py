"""A small pre-training dataset over demo tickets, once from a folder partitioned by file and
once from the same rows in one file (unpartitioned), each in its own config directory.

The recipe is ``small_dataset``'s (the demo's ``support_corpus`` over tickets, curation date
pinned). Partition ``day1.jsonl`` holds the first tickets, ``day2.jsonl`` the next ones plus
copies of day-1 tickets under new (later-sorting) ticket ids: exact copies, and copies with one
word added (near duplicates). ``partitioned_job`` is a module-level job factory for
``dagster.reconstructable`` (worker processes of the multiprocess executor rebuild it).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ftdata_pipeline_tests.orchestration.small_dataset import DATASET, JOB, write_small_config

SOURCE = "support_tickets"
PARTITIONS_NAME = f"{SOURCE}_files"
KEYS = ("day1.jsonl", "day2.jsonl")
EXACT_COPIES = ("T-000001", "T-000008")  # day-1 tickets copied into day 2 as they are
NEAR_COPIES = ("T-000003",)  # ... and with one more word at the end of the body


def _tickets(n: int) -> list[dict]:
    from ftdata_pipeline.config.loader import project_root

    lines = (project_root() / "demo_data" / "support_tickets.jsonl").read_text("utf-8")
    return [json.loads(line) for line in lines.splitlines()[:n]]


def _day2_copies(day1: list[dict]) -> list[dict]:
    by_id = {t["ticket_id"]: t for t in day1}
    copies = []
    for i, tid in enumerate([*EXACT_COPIES, *NEAR_COPIES]):
        copy = {**by_id[tid], "ticket_id": f"T-9{i:05d}"}
        if tid in NEAR_COPIES:
            copy["body"] += " Thanks"
        copies.append(copy)
    return copies


def write_configs(base: Path, per_partition: int = 60) -> tuple[Path, Path]:
    """(partitioned config dir, unpartitioned config dir) over the same rows."""
    tickets = _tickets(2 * per_partition)
    day1, day2 = tickets[:per_partition], tickets[per_partition:]
    day2 = day2 + _day2_copies(day1)
    plain_cfg = write_small_config(base / "plain", n=1)
    rows = "".join(json.dumps(t) + "\n" for t in [*day1, *day2])
    (base / "plain" / "tickets.jsonl").write_text(rows, encoding="utf-8")

    parted_cfg = write_small_config(base / "parted", n=1)
    landing = base / "parted" / "landing"
    landing.mkdir()
    for key, part in zip(KEYS, (day1, day2), strict=True):
        (landing / key).write_text("".join(json.dumps(t) + "\n" for t in part), "utf-8")
    sources_file = parted_cfg / "sources.yaml"
    sources = yaml.safe_load(sources_file.read_text())
    sources["sources"][SOURCE] |= {"path": str(landing), "partition": {"by": "file"}}
    sources_file.write_text(yaml.safe_dump(sources))
    return parted_cfg, plain_cfg


def partitioned_job():
    """The dataset's job, from the environment's config dir and home."""
    from ftdata_pipeline.definitions import build_definitions

    return build_definitions().resolve_job_def(JOB)


__all__ = ["DATASET", "JOB", "KEYS", "PARTITIONS_NAME", "partitioned_job", "write_configs"]


def write_day_config(base: Path, n: int = 60) -> Path:
    """The first ``n`` demo tickets in one file, partitioned by the day of ``created_at``
    (from 2026-04-04, the first ticket's day), with a daily schedule."""
    cfg = write_small_config(base, n=n)
    sources_file = cfg / "sources.yaml"
    sources = yaml.safe_load(sources_file.read_text())
    sources["sources"][SOURCE]["partition"] = {
        "by": "day", "field": "created_at", "start": "2026-04-04"}
    sources_file.write_text(yaml.safe_dump(sources))
    recipe_file = cfg / "datasets" / f"{DATASET}.yaml"
    recipe = yaml.safe_load(recipe_file.read_text())
    recipe["schedule"] = {"cron": "0 3 * * *"}
    recipe_file.write_text(yaml.safe_dump(recipe))
    return cfg
