"""Partitioned sources in the config: keys checked, misuse reported naming the config key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from ftdata_pipeline.cli import main
from ftdata_pipeline.config.loader import ConfigError, load_project, load_sources
from ftdata_pipeline.config.models import PARTITION_KINDS, PARTITION_MODELS
from ftdata_pipeline.orchestration.partitions import PARTITIONS

GOV = {"owner": "o@example.com", "licence": "internal", "classification": "internal",
       "contains_pii": False}
FILE = {"kind": "file", "path": "landing", "format": "jsonl", "mapping": {"text": "body"}, **GOV}


def test_one_list_of_partition_kinds():
    assert PARTITION_KINDS == tuple(PARTITION_MODELS) == tuple(PARTITIONS) == ("file", "day")


@pytest.mark.parametrize(
    ("partition", "extra", "expected"),
    [
        ({"by": "week"}, {}, "sources.s.partition: Input tag 'week' found using 'by'"),
        ({"by": "file", "every": 2}, {}, "sources.s.partition.every: unknown key"),
        ({"by": "day", "start": "2026-01-01"}, {}, "sources.s.partition.field: Field required"),
        ({"by": "day", "field": "created_at"}, {}, "sources.s.partition.start: Field required"),
        ({"by": "day", "field": "text", "start": "2026-01-01"}, {},
         "partition.field: 'text' is not a timestamp field"),
        ({"by": "day", "field": "created_at", "start": "2026-01-01"}, {},
         "partition.field: 'created_at' is not mapped by this source (add mapping.created_at)"),
        ({"by": "file"}, {"role": "annotations", "annotates": "x",
                          "mapping": {"item_key": "k", "annotator": "a", "label": "l"}},
         "partition: only sources with role 'records' can be partitioned"),
    ],
)
def test_partition_keys_are_checked(tmp_path, partition, extra, expected):
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": {"s": {**FILE, **extra, "partition": partition}}}))
    with pytest.raises(ConfigError) as info:
        load_sources(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_by_file_needs_a_file_source(tmp_path):
    sql = {"kind": "sql", "url": "sqlite://", "query": "select 1", "mapping": {"text": "b"}, **GOV}
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": {"s": {**sql, "partition": {"by": "file"}}}}))
    with pytest.raises(ConfigError, match=r"sources\.s\.partition: .*'file' needs a file source"):
        load_sources(path)


def _project(tmp_path: Path, sources: dict, recipe_sources: list[str]) -> Path:
    cfg = tmp_path / "configs"
    (cfg / "datasets").mkdir(parents=True)
    (cfg / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}))
    recipe = {"kind": "pretraining", "sources": recipe_sources,
              "exports": {"formats": ["trl_text"]}}
    (cfg / "datasets" / "corpus.yaml").write_text(yaml.safe_dump(recipe))
    return cfg


def test_mixing_partitioned_and_unpartitioned_sources_is_named(tmp_path):
    sources = {"parted": {**FILE, "partition": {"by": "file"}},
               "plain": {**FILE, "path": "plain.jsonl"}}
    cfg = _project(tmp_path, sources, ["parted", "plain"])
    with pytest.raises(ConfigError) as info:
        load_project(cfg)
    message = str(info.value)
    assert f"{cfg / 'datasets' / 'corpus.yaml'}: sources.1: 'plain' is not partitioned" in message
    assert "sources.<name>.partition" in message


def test_two_sources_partitioned_by_file_are_refused(tmp_path):
    sources = {"a": {**FILE, "partition": {"by": "file"}},
               "b": {**FILE, "path": "other", "partition": {"by": "file"}}}
    cfg = _project(tmp_path, sources, ["a", "b"])
    with pytest.raises(ConfigError, match=r"corpus\.yaml: sources\.1: a recipe reads one source "
                                          r"partitioned by file"):
        load_project(cfg)


def test_day_partitions_with_different_starts_are_refused(tmp_path):
    day = {"by": "day", "field": "created_at", "start": "2026-01-01"}
    mapped = {**FILE, "mapping": {"text": "body", "created_at": "ts"}}
    sources = {"a": {**mapped, "partition": day},
               "b": {**mapped, "partition": {**day, "start": "2026-02-01"}}}
    cfg = _project(tmp_path, sources, ["a", "b"])
    with pytest.raises(ConfigError, match=r"sources\.1: 'b' is partitioned .*same partition"):
        load_project(cfg)


def test_validate_checks_the_first_file_of_a_partitioned_folder(tmp_path, capsys):
    sources = {"parted": {**FILE, "path": str(tmp_path / "landing"),
                          "partition": {"by": "file"}}}
    cfg = _project(tmp_path, sources, ["parted"])
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.jsonl").write_text(json.dumps({"body": "hello there"}) + "\n")
    (landing / "b.jsonl").write_text(json.dumps({"wrong": "column"}) + "\n")
    assert main(["--config-dir", str(cfg), "validate"]) == 0
    assert "sources.parted.partition: 2 file partition(s)" in capsys.readouterr().out
    # the first file in key order is the sample: a bad first file fails validation by name
    shutil.move(landing / "a.jsonl", landing / "c.jsonl")
    assert main(["--config-dir", str(cfg), "validate"]) == 2
    err = capsys.readouterr().err
    assert "sources.parted" in err and "'body'" in err


def test_a_schedule_on_a_dataset_partitioned_by_file_is_named(tmp_path):
    cfg = _project(tmp_path, {"parted": {**FILE, "partition": {"by": "file"}}}, ["parted"])
    recipe = cfg / "datasets" / "corpus.yaml"
    recipe.write_text(recipe.read_text() + "schedule: {cron: '0 3 * * *'}\n")
    with pytest.raises(ConfigError, match=r"corpus\.yaml: schedule: a dataset partitioned by "
                                          r"file runs when a file lands"):
        load_project(cfg)


def test_readme_partition_example_validates(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    block = readme.split("## Partitioned sources", 1)[1].split("```yaml\n", 1)[1].split("```")[0]
    path = tmp_path / "sources.yaml"
    path.write_text(block)
    sources = load_sources(path)
    assert sources["ticket_archive"].partition.by == "file"
    assert sources["chat_log"].partition.field == "created_at"
