"""Imports of human work: Label Studio JSON exports, Argilla 2.x flattened records, CSV/JSONL;
and the Label Studio round trip of the review queue."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from ftdata_pipeline.config.models import RecipeConfig, SourceConfig
from ftdata_pipeline.records import conform, stable_id
from ftdata_pipeline.stages.label import label
from ftdata_pipeline.stages.labeling.review import review_rows, write_review_queue
from ftdata_pipeline.stages.raw import SourceError, load_source

GOV = {"owner": "o", "licence": "l", "classification": "internal", "contains_pii": False}


def _source(fmt: str, path: str, **extra) -> SourceConfig:
    return SourceConfig.model_validate(
        {"kind": "file", "role": "annotations", "path": path, "format": fmt, **GOV, **extra}
    )


def _ls_annotation(ann_id, user, results, cancelled=False):
    """One annotation as Label Studio exports it (JSON export of a project)."""
    return {
        "id": ann_id,
        "completed_by": user,
        "result": results,
        "was_cancelled": cancelled,
        "ground_truth": False,
        "created_at": "2026-03-09T22:16:08.728353Z",
        "updated_at": "2026-03-09T22:16:08.728378Z",
        "lead_time": 4.288,
        "prediction": {},
        "result_count": 0,
        "task": 1,
        "parent_prediction": None,
        "parent_annotation": None,
    }


def _choice(label, from_name="label"):
    return {"value": {"choices": [label]}, "id": "r1", "from_name": from_name, "to_name": "text",
            "type": "choices", "origin": "manual"}  # fmt: skip


def _task(task_id, data, annotations):
    return {"id": task_id, "annotations": annotations, "file_upload": "tasks.json",
            "drafts": [], "predictions": [], "data": data, "meta": {},
            "created_at": "2026-03-09T21:52:49.513742Z", "updated_at": "2026-03-09T22:16:08.746926Z",
            "inner_id": task_id, "total_annotations": len(annotations), "cancelled_annotations": 0,
            "total_predictions": 0, "comment_count": 0, "unresolved_comment_count": 0,
            "last_comment_updated_at": None, "project": 83, "updated_by": None,
            "comment_authors": []}  # fmt: skip


def test_label_studio_choices_rating_pairwise_ranker(tmp_path):
    tasks = [
        _task(1, {"text": "refund please", "source": "tickets", "source_key": "T-1"}, [
            _ls_annotation(11, 1, [_choice("billing")]),
            _ls_annotation(12, {"id": 2, "email": "b@x.example"}, [_choice("billing")]),
            _ls_annotation(13, 3, [], cancelled=True),
        ]),
        _task(2, {"text": "answer", "source": "answers", "source_key": "A-1"}, [
            _ls_annotation(21, 1, [{"type": "rating", "from_name": "stars", "to_name": "text",
                                    "value": {"rating": 4}}]),
        ]),
        _task(3, {"prompt": "q", "source": "answers", "source_key": "P-1", "left_key": "A-1",
                  "right_key": "A-2"}, [
            _ls_annotation(31, 1, [{"type": "pairwise", "from_name": "pw", "to_name": "a,b",
                                    "value": {"selected": "right"}}]),
        ]),
        _task(4, {"source": "answers", "source_key": "P-2", "items": []}, [
            _ls_annotation(41, 2, [{"type": "ranker", "from_name": "rank", "to_name": "results",
                                    "value": {"ranker": {"results": ["A-5", "A-3", "A-4"]}}}]),
        ]),
    ]  # fmt: skip
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    df = load_source("ls", _source("label_studio", "export.json"), tmp_path)
    rows = df.select("item_source", "item_key", "annotator", "label", "rating", "rank", "status")
    got = sorted(rows.rows(), key=lambda r: (r[0], r[1], r[2] or ""))
    assert got == [
        ("answers", "A-1", "1", None, 4.0, None, "submitted"),
        ("answers", "A-1", "1", None, None, 2, "submitted"),  # pairwise: left lost
        ("answers", "A-2", "1", None, None, 1, "submitted"),  # pairwise: right chosen
        ("answers", "A-3", "2", None, None, 2, "submitted"),
        ("answers", "A-4", "2", None, None, 3, "submitted"),
        ("answers", "A-5", "2", None, None, 1, "submitted"),
        ("tickets", "T-1", "1", "billing", None, None, "submitted"),
        ("tickets", "T-1", "3", None, None, None, "cancelled"),
        ("tickets", "T-1", "b@x.example", "billing", None, None, "submitted"),
    ]
    assert df["source"].unique().to_list() == ["ls"]
    assert df["source_key"].n_unique() == df.height


def test_argilla_flattened_records(tmp_path):
    # Records as Argilla 2.x `dataset.records.to_list(flatten=True)` writes them: fields and
    # metadata flattened to the top level, responses side by side per question.
    records = [
        {"id": "rec-1", "status": "completed", "_server_id": "8b0e3f0c-0000-4000-8000-000000000001",
         "text": "my card was charged twice", "source": "tickets", "source_key": "T-1",
         "intent.responses": ["billing", "billing", "bug"],
         "intent.responses.users": ["u1", "u2", "u3"],
         "intent.responses.status": ["submitted", "submitted", "discarded"],
         "quality.responses": [5, 3], "quality.responses.users": ["u1", "u2"],
         "quality.responses.status": ["submitted", "draft"],
         "intent.suggestion": "billing", "intent.suggestion.score": 0.9,
         "intent.suggestion.agent": "model"},
        {"id": "rec-2", "status": "completed", "_server_id": "8b0e3f0c-0000-4000-8000-000000000002",
         "prompt": "q", "source": "answers", "source_key": "P-1",
         "order.responses": [[{"value": "A-2", "rank": 1}, {"value": "A-1", "rank": 2}]],
         "order.responses.users": ["u1"], "order.responses.status": ["submitted"],
         "best.responses": [["A-1", "A-2"]], "best.responses.users": ["u2"],
         "best.responses.status": ["submitted"]},
    ]  # fmt: skip
    (tmp_path / "argilla.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    cfg = _source("argilla", "argilla.jsonl", tool={"rankings": ["best"]})
    df = load_source("arg", cfg, tmp_path)
    rows = df.select("item_source", "item_key", "annotator", "label", "rating", "rank", "status")
    assert sorted(rows.rows(), key=lambda r: (r[0], r[1], r[2], r[3] or "", r[4] or 0)) == [
        ("answers", "A-1", "u1", None, None, 2, "submitted"),
        ("answers", "A-1", "u2", None, None, 1, "submitted"),
        ("answers", "A-2", "u1", None, None, 1, "submitted"),
        ("answers", "A-2", "u2", None, None, 2, "submitted"),
        ("tickets", "T-1", "u1", None, 5.0, None, "submitted"),
        ("tickets", "T-1", "u1", "billing", None, None, "submitted"),
        ("tickets", "T-1", "u2", None, 3.0, None, "draft"),
        ("tickets", "T-1", "u2", "billing", None, None, "submitted"),
        ("tickets", "T-1", "u3", "bug", None, None, "discarded"),
    ]


def test_tool_export_errors_name_file_and_record(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps([_task(7, {"text": "x"}, [
        _ls_annotation(1, 1, [_choice("billing")])])]))  # fmt: skip
    with pytest.raises(SourceError, match=r"'ls'.*bad\.json.*task 7.*'source_key'"):
        load_source("ls", _source("label_studio", "bad.json"), tmp_path)
    (tmp_path / "broken.jsonl").write_text('{"id": 1}\n{not json\n')
    with pytest.raises(SourceError, match=r"broken\.jsonl: line 2"):
        load_source("arg", _source("argilla", "broken.jsonl"), tmp_path)


def test_tool_export_config_rules():
    with pytest.raises(ValidationError, match="role: annotations"):
        SourceConfig.model_validate(
            {"kind": "file", "path": "x.json", "format": "label_studio", **GOV}
        )
    with pytest.raises(ValidationError, match="mapping"):
        _source("argilla", "x.json", mapping={"item_key": "k"})
    with pytest.raises(ValidationError, match="one of"):
        SourceConfig.model_validate({"kind": "file", "role": "annotations", "path": "x.csv",
                                     "format": "csv", "mapping": {"item_key": "k",
                                                                  "annotator": "a"}, **GOV})


def test_csv_and_jsonl_annotation_sources(tmp_path):
    (tmp_path / "a.csv").write_text("ticket,who,intent\nT-1,ann_a,billing\nT-1,ann_b,billing\n")
    (tmp_path / "r.jsonl").write_text('{"id": "A-1", "by": "u1", "stars": 4}\n')
    csv = load_source("a", _source("csv", "a.csv", annotates="tickets", mapping={
        "item_key": "ticket", "annotator": "who", "label": "intent"}), tmp_path)
    assert csv.select("item_source", "item_key", "label").rows() == [
        ("tickets", "T-1", "billing"), ("tickets", "T-1", "billing")]
    jsonl = load_source("r", _source("jsonl", "r.jsonl", annotates="answers", mapping={
        "item_key": "id", "annotator": "by", "rating": "stars"}), tmp_path)
    assert jsonl.select("item_source", "item_key", "rating").rows() == [("answers", "A-1", 4.0)]


# --------------------------------------------------------------------------------------------
# Label Studio round trip: review queue out, reviewers' answers in, items leave the queue
# --------------------------------------------------------------------------------------------

LABELS = ["billing", "bug", "other"]


def _recipe(**label_cfg) -> RecipeConfig:
    return RecipeConfig.model_validate(
        {
            "name": "t", "kind": "classification", "sources": ["tickets"],
            "exports": {"formats": ["classification_jsonl"]},
            "label": {"method": "majority_vote", "annotations": "votes", "label_set": LABELS,
                      "agreement": {"review_below": 0.8}, **label_cfg},
        }
    )  # fmt: skip


def _records(keys) -> pl.LazyFrame:
    return conform(pl.DataFrame({
        "record_id": [stable_id("tickets", k) for k in keys], "source": ["tickets"] * len(keys),
        "source_key": keys, "text": [f"ticket {k}" for k in keys]})).lazy()  # fmt: skip


def _export_with_answers(tasks: list[dict], answers: dict[str, str]) -> list[dict]:
    """What Label Studio exports after reviewers answered the imported tasks: the same data,
    an id, and one annotation per task whose result is a choice."""
    out = []
    for n, task in enumerate(tasks, 1):
        label = answers[task["data"]["source_key"]]
        out.append(_task(n, task["data"], [_ls_annotation(100 + n, 7, [_choice(label)])]))
    return out


def test_label_studio_round_trip(tmp_path: Path):
    votes_csv = "ticket,who,intent\n" + "".join(
        f"{k},{a},{lab}\n" for k, a, lab in [
            ("T-1", "a", "bug"), ("T-1", "b", "bug"), ("T-1", "c", "bug"),
            ("T-2", "a", "bug"), ("T-2", "b", "billing"), ("T-2", "c", "billing"),
            ("T-3", "a", "bug"), ("T-3", "b", "billing"), ("T-3", "c", "other")]
    )  # fmt: skip
    (tmp_path / "votes.csv").write_text(votes_csv)
    votes = load_source("votes", _source("csv", "votes.csv", annotates="tickets", mapping={
        "item_key": "ticket", "annotator": "who", "label": "intent"}), tmp_path)  # fmt: skip

    # run 1: two items under the bar go out as Label Studio tasks
    first = label(_records(["T-1", "T-2", "T-3"]), _recipe(), votes.lazy())
    assert first.kept["source_key"].to_list() == ["T-1"]
    queue = write_review_queue(first.rejected, tmp_path / "review", LABELS)
    assert queue["review_queue"] == 2
    tasks = json.loads((tmp_path / "review" / "label_studio_tasks.json").read_text())

    # reviewers answer in Label Studio; its JSON export comes back as an annotations source
    export = _export_with_answers(tasks, {"T-2": "billing", "T-3": "other"})
    (tmp_path / "review_export.json").write_text(json.dumps(export))
    answers = load_source("review", _source("label_studio", "review_export.json"), tmp_path)

    # run 2: the answered items are labelled by the reviewers and leave the queue
    second = label(
        _records(["T-1", "T-2", "T-3"]),
        _recipe(review_answers="review"),
        pl.concat([votes.lazy(), answers.lazy()], how="diagonal_relaxed"),
    )
    assert dict(zip(second.kept["source_key"], second.kept["label"], strict=True)) == {
        "T-1": "bug", "T-2": "billing", "T-3": "other"}
    assert review_rows(second.rejected).is_empty()
    again = write_review_queue(second.rejected, tmp_path / "review", LABELS)
    assert again["review_queue"] == 0
    assert json.loads((tmp_path / "review" / "label_studio_tasks.json").read_text()) == []


def test_validate_names_a_wrong_annotates_target(tmp_path, monkeypatch):
    import shutil

    from ftdata_pipeline.config.loader import ConfigError, load_project

    root = Path(__file__).resolve().parents[2]
    shutil.copytree(root / "configs", tmp_path / "configs")
    path = tmp_path / "configs" / "sources.yaml"
    path.write_text(path.read_text().replace("annotates: support_tickets", "annotates: tickets"))
    monkeypatch.setenv("FTDATA_PROJECT_ROOT", str(root))
    with pytest.raises(ConfigError, match=r"sources\.ticket_labels\.annotates: 'tickets'"):
        load_project(tmp_path / "configs")
