"""The Argilla import on records serialized by the real ``argilla`` SDK, not the project.

The fixtures in ``ftdata_pipeline_tests/fixtures/argilla/`` were written by the ``argilla``
2.8.0 SDK (PyPI) with ``fixtures/make_argilla_records.py``: no Argilla server (it needs
Elasticsearch/OpenSearch), but records built by the SDK from server-shaped payloads
(``Record.from_model`` inside an ``rg.Dataset`` with Label, MultiLabel, Rating and Ranking
questions; three users, submitted, discarded and draft responses) and written by the SDK's own
``to_list(flatten=True)``, ``to_datasets()`` (saved as JSON lines) and ``to_json`` (the records
file of ``to_disk``). ``entered.json`` holds the responses given to the SDK. These tests need
no Argilla.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from ftdata_pipeline.config.models import SourceConfig
from ftdata_pipeline.stages.raw import SourceError, load_source

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "argilla"
ENTERED = json.loads((FIXTURES / "entered.json").read_text())
GOV = {"owner": "o", "licence": "l", "classification": "internal", "contains_pii": False}


def _load(file: str, root: Path = FIXTURES, **tool) -> pl.DataFrame:
    cfg = SourceConfig.model_validate({"kind": "file", "role": "annotations", "path": file,
                                       "format": "argilla", "tool": tool, **GOV})  # fmt: skip
    return load_source("arg", cfg, root)


def test_fixtures_come_from_the_sdk():
    assert ENTERED["argilla_version"] == "2.8.0"
    for path in FIXTURES.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not any(s in text for s in ("/tmp/", "/work/", "/home/", "offline")), path.name
    record = json.loads((FIXTURES / "rankings_flat.json").read_text())[0]
    # the SDK's ranking: options in rank order, no ranks, options fixed for the dataset
    assert all(isinstance(o, str) for o in record["ranking.responses"][0])
    assert set(record["ranking.responses"][0]) == {f"response_{n}" for n in range(1, 5)}


def test_ticket_labels_ratings_and_statuses_equal_what_was_entered():
    df = _load("tickets_flat.json")
    want_labels, want_ratings, want_topics = [], [], []
    for key, user, status, values in ENTERED["tickets"]:
        want_labels.append((key, user, values["intent"], status))
        want_ratings.append((key, user, float(values["urgency"]), status))
        want_topics += [(key, user, t, status) for t in values.get("topics", [])]
    labels = df.filter(pl.col("source_key").str.contains(":intent:"))
    ratings = df.filter(pl.col("rating").is_not_null())
    topics = df.filter(pl.col("source_key").str.contains(":topics:"))
    assert sorted(labels.select("item_key", "annotator", "label", "status").rows()) == sorted(
        want_labels
    )
    assert sorted(ratings.select("item_key", "annotator", "rating", "status").rows()) == sorted(
        want_ratings
    )
    assert sorted(topics.select("item_key", "annotator", "label", "status").rows()) == sorted(
        want_topics
    )
    assert df.height == len(want_labels) + len(want_ratings) + len(want_topics) == 80
    per_response = Counter(s for *_, s, v in ENTERED["tickets"] for _ in range(2 + len(
        v.get("topics", []))))  # fmt: skip
    assert Counter(df["status"].to_list()) == per_response
    assert set(per_response) == {"submitted", "discarded", "draft"}
    assert set(df["item_source"]) == {"support_tickets"}


@pytest.mark.parametrize("file", ["rankings_flat.json", "rankings_datasets.jsonl"])
def test_rankings_equal_what_was_entered_as_response_keys(file):
    df = _load(file, rankings=["ranking"])
    want = sorted((rid, user, n, status) for _, user, status, order in ENTERED["rankings"]
                  for n, rid in enumerate(order, 1))  # fmt: skip
    assert sorted(df.select("item_key", "annotator", "rank", "status").rows()) == want
    assert df.height == 144 and df["judgement"].n_unique() == 36
    # every ranked key is one of the prompt's responses, never the dataset's option name
    assert df["item_key"].str.contains(r"^P-\d{4}-R\d$").all()
    assert set(df["item_source"]) == {"response_rankings"}


def test_a_ranking_not_declared_is_refused_not_read_as_labels():
    with pytest.raises(SourceError, match=r"rankings_flat\.json: record P-0001: .*ranking "
                                          r"options .* tool\.rankings"):  # fmt: skip
        _load("rankings_flat.json")


def test_nested_records_without_statuses_are_refused():
    with pytest.raises(SourceError, match=r"rankings_records\.json: record P-0001: nested "
                                          r"records .* to_list\(flatten=True\)"):  # fmt: skip
        _load("rankings_records.json", rankings=["ranking"])


def test_a_response_without_status_is_a_draft(tmp_path):
    # Response(status=None) is what the SDK flattens to null; it logs such a response as a draft
    records = json.loads((FIXTURES / "tickets_flat.json").read_text())
    records[0]["intent.responses.status"][0] = None
    (tmp_path / "r.json").write_text(json.dumps(records))
    df = _load("r.json", tmp_path, questions=["intent"])
    first = df.filter(pl.col("item_key") == records[0]["source_key"]).sort("source_key")
    assert first["status"][0] == "draft"


def test_server_shaped_rankings_map_options_too(tmp_path):
    # the REST API's form of the same answers: [{value, rank}], ties allowed
    records = json.loads((FIXTURES / "rankings_flat.json").read_text())
    for rec in records:
        rec["ranking.responses"] = [[{"value": o, "rank": n} for n, o in enumerate(order, 1)]
                                    for order in rec["ranking.responses"]]  # fmt: skip
    (tmp_path / "api.json").write_text(json.dumps(records))
    from_api = _load("api.json", tmp_path)
    from_sdk = _load("rankings_flat.json", rankings=["ranking"])
    cols = ["item_key", "annotator", "rank", "status"]
    assert sorted(from_api.select(cols).rows()) == sorted(from_sdk.select(cols).rows())


def test_sdk_rankings_through_the_preference_stage():
    from ftdata_pipeline.config.models import RecipeConfig
    from ftdata_pipeline.stages.label import label
    from ftdata_pipeline_tests.fixtures.responses_case import majority_pairs, response_records

    prompts = sorted({p for p, *_ in ENTERED["rankings"]})
    want, ties = set(), 0
    for prompt in prompts:
        orders = [o for p, _, s, o in ENTERED["rankings"] if p == prompt and s == "submitted"]
        decided, tied = majority_pairs(orders)
        want |= decided
        ties += tied
    recipe = RecipeConfig.model_validate(
        {"name": "pref", "kind": "preference", "sources": ["response_rankings"],
         "exports": {"formats": ["trl_preference"]},
         "label": {"method": "rankings", "annotations": "arg"}}  # fmt: skip
    )
    out = label(response_records(prompts), recipe, _load("rankings_flat.json",
                                                         rankings=["ranking"]).lazy())  # fmt: skip
    assert set(out.kept["source_key"]) == want and len(want) + ties == 72
    assert out.stats["tied_pairs_dropped"] == ties
    drafts = sum(1 for *_, s, _ in ENTERED["rankings"] if s == "draft")
    assert out.stats["annotations_excluded_by_status"] == {"draft": 4 * drafts} and drafts > 0


def test_validate_finds_an_undeclared_ranking_before_a_run(tmp_path, monkeypatch):
    import shutil

    from ftdata_pipeline.config.data_checks import check_against_data
    from ftdata_pipeline.config.loader import ConfigError, load_project

    root = Path(__file__).resolve().parents[2]
    shutil.copytree(root / "configs", tmp_path / "configs")
    path = tmp_path / "configs" / "sources.yaml"
    text = path.read_text().replace("path: demo_data/argilla_rankings.json",
                                    "path: ftdata_pipeline_tests/fixtures/argilla/"
                                    "rankings_flat.json")  # fmt: skip
    path.write_text(text)
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(root))
    check_against_data(load_project(tmp_path / "configs"), tmp_path / "configs")  # declared: ok
    path.write_text(text.replace("      rankings: [ranking]", "      rankings: []"))
    with pytest.raises(ConfigError, match=r"sources\.argilla_rankings: .*rankings_flat\.json: "
                                          r"record P-0001: .*tool\.rankings"):  # fmt: skip
        check_against_data(load_project(tmp_path / "configs"), tmp_path / "configs")
