"""The Label Studio import on files a real Label Studio wrote, not the project.

The fixtures in ``ftdata_pipeline_tests/fixtures/label_studio/`` were exported by Label Studio
1.20.0 (PyPI ``label-studio==1.20.0``, SQLite backend, run locally) with
``fixtures/make_label_studio_exports.py``: three users (the admin and two who signed up through
the web form), each with a personal access token, created five projects through the REST API
(single-choice ``Choices``, ``Rating``, ``Pairwise`` left/right, ``List`` + ``Ranker``, the
project's own review queue with its labeling config, and a ``Ranker`` with ``Bucket``s; six in
all), imported a dozen tasks each (three for the buckets) whose data
keys are the ones the review queue and the demo use, annotated them (one skipped annotation per
project but the ranker, one saved draft) and exported each project with
``/api/projects/{id}/export`` as ``JSON`` and ``JSON_MIN``. ``entered.json`` is what was sent
through the API; the tests compare the import with it. These tests need no Label Studio.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from ftdata_pipeline.config.models import SourceConfig
from ftdata_pipeline.records import conform
from ftdata_pipeline.stages.label import label
from ftdata_pipeline.stages.labeling.review import review_rows, write_review_queue
from ftdata_pipeline.stages.raw import SourceError, load_source
from ftdata_pipeline_tests.fixtures import review_queue_case as case
from ftdata_pipeline_tests.fixtures.responses_case import majority_pairs, response_records

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "label_studio"
ENTERED = json.loads((FIXTURES / "entered.json").read_text())
GOV = {"owner": "o", "licence": "l", "classification": "internal", "contains_pii": False}
CONTROLS = {"choices": "label", "rating": "stars", "pairwise": "pw", "ranker": "rank",
            "review": "label", "buckets": "rank"}  # fmt: skip


def _load(stem: str, minimal: bool = False, questions: bool = True) -> pl.DataFrame:
    file = f"{stem}_export{'_min' if minimal else ''}.json"
    tool = {"questions": [CONTROLS[stem]]} if questions else {}
    cfg = SourceConfig.model_validate({"kind": "file", "role": "annotations", "path": file,
                                       "format": "label_studio", "tool": tool, **GOV})  # fmt: skip
    return load_source("ls", cfg, FIXTURES)


def _submitted(df: pl.DataFrame) -> pl.DataFrame:
    return df.filter(pl.col("status") == "submitted")


def _status_counts(df: pl.DataFrame) -> dict[str, int]:
    return dict(Counter(df["status"].to_list()))


def test_fixtures_come_from_label_studio_and_hold_no_secrets_or_local_paths():
    assert ENTERED["label_studio_version"] == "1.20.0"
    for path in FIXTURES.iterdir():
        text = path.read_text(encoding="utf-8")
        for needle in ("/tmp/", "/work/", "/home/", "Bearer", "eyJ", "password", "localhost"):
            assert needle not in text, (path.name, needle)
    # the real export's envelope: fields the project never writes itself
    task = json.loads((FIXTURES / "choices_export.json").read_text())[0]
    ann = task["annotations"][0]
    assert {"was_cancelled", "result_count", "lead_time", "prediction", "ground_truth",
            "unique_id"} <= set(ann)  # fmt: skip
    assert isinstance(ann["completed_by"], int) and isinstance(task["id"], int)
    assert task["drafts"] and "file_upload" not in task


@pytest.mark.parametrize("minimal", [False, True], ids=["JSON", "JSON_MIN"])
def test_choices_export_labels_equal_what_was_entered(minimal):
    df = _load("choices", minimal)
    entered = ENTERED["choices"]
    assert len(entered) == 36  # 12 tasks x 3 annotators
    want = sorted((k, str(u), lab) for k, u, lab, status in entered if status == "submitted")
    got = _submitted(df).select("item_key", "annotator", "label").rows()
    assert sorted(got) == want and len(got) == 35
    assert set(_submitted(df)["item_source"]) == {"support_tickets"}
    # JSON keeps the skipped annotation and the saved draft as rows the stage counts;
    # JSON_MIN leaves both out of the file.
    assert _status_counts(df) == (
        {"submitted": 35} if minimal else {"submitted": 35, "cancelled": 1, "draft": 1}
    )
    if not minimal:
        skipped = df.filter(pl.col("status") == "cancelled").row(0, named=True)
        assert (skipped["item_key"], skipped["annotator"], skipped["label"]) == ("T-9005", "3",
                                                                                 None)  # fmt: skip


def test_choices_export_through_the_label_stage_counts_the_excluded():
    keys = [f"T-90{n:02d}" for n in range(1, 13)]
    records = conform(pl.DataFrame({"record_id": [f"r{k}" for k in keys],
                                    "source": ["support_tickets"] * 12, "source_key": keys,
                                    "text": [f"ticket {k}" for k in keys]}))  # fmt: skip
    recipe = case.recipe(annotations="ls", agreement={"review_below": 0.01})
    out = label(records.lazy(), recipe, _load("choices").lazy())
    assert out.stats["annotations_used"] == 35
    assert out.stats["annotations_excluded_by_status"] == {"cancelled": 1, "draft": 1}
    by_key: dict[str, Counter] = {}
    for k, _, lab, status in ENTERED["choices"]:
        if status == "submitted":
            by_key.setdefault(k, Counter())[lab] += 1
    want = {}
    for k, votes in by_key.items():  # a strict majority decides; ties go to review
        top = votes.most_common(2)
        if len(top) == 1 or top[0][1] > top[1][1]:
            want[k] = top[0][0]
    assert dict(zip(out.kept["source_key"], out.kept["label"], strict=True)) == want
    assert len(want) == 9 and review_rows(out.rejected).height == 3


@pytest.mark.parametrize("minimal", [False, True], ids=["JSON", "JSON_MIN"])
def test_rating_export_ratings_equal_what_was_entered(minimal):
    df = _load("rating", minimal)
    want = sorted((k, str(u), float(r)) for k, u, r, s in ENTERED["rating"] if s == "submitted")
    got = _submitted(df).select("item_key", "annotator", "rating").rows()
    assert sorted(got) == want and len(got) == 24
    assert set(df["item_source"]) == {"response_rankings"}
    assert _status_counts(df) == ({"submitted": 24} if minimal else {"submitted": 24,
                                                                      "cancelled": 1})  # fmt: skip


@pytest.mark.parametrize("minimal", [False, True], ids=["JSON", "JSON_MIN"])
def test_pairwise_export_pairs_equal_what_was_entered(minimal):
    df = _submitted(_load("pairwise", minimal))
    tasks = {t["data"]["source_key"]: t["data"]
             for t in json.loads((FIXTURES / "pairwise_export.json").read_text())}  # fmt: skip
    want = []
    for prompt, user, side, status in ENTERED["pairwise"]:
        if status != "submitted":
            continue
        won, lost = ("left", "right") if side == "left" else ("right", "left")
        want += [(tasks[prompt][f"{won}_key"], str(user), 1),
                 (tasks[prompt][f"{lost}_key"], str(user), 2)]  # fmt: skip
    assert sorted(df.select("item_key", "annotator", "rank").rows()) == sorted(want)
    assert df.height == 48
    # each choice is one judgement holding exactly its two sides
    assert df.group_by("judgement").agg(pl.col("rank").sort())["rank"].to_list() == [[1, 2]] * 24
    if not minimal:
        assert _status_counts(_load("pairwise")) == {"submitted": 48, "cancelled": 1}


@pytest.mark.parametrize("minimal", [False, True], ids=["JSON", "JSON_MIN"])
def test_ranker_export_ranks_equal_what_was_entered(minimal):
    df = _submitted(_load("ranker", minimal))
    want = sorted((rid, str(user), n) for _, user, order, _ in ENTERED["ranker"]
                  for n, rid in enumerate(order, 1))  # fmt: skip
    assert sorted(df.select("item_key", "annotator", "rank").rows()) == want
    assert df.height == 144 and df["judgement"].n_unique() == 36  # 12 prompts x 3 annotators


def test_json_export_reads_every_control_without_questions():
    df = _load("choices", questions=False)
    assert _submitted(df).height == 35


def test_shapes_the_import_cannot_read_are_named(tmp_path):
    with pytest.raises(SourceError, match=r"choices_export_min\.json: task \d+ annotation \d+: "
                                          r"a JSON_MIN export .* tool\.questions"):  # fmt: skip
        _load("choices", minimal=True, questions=False)
    # the review queue's import file is not an export of answers
    (tmp_path / "tasks.json").write_text((FIXTURES / "review_queue_tasks.json").read_text())
    cfg = SourceConfig.model_validate({"kind": "file", "role": "annotations", "path": "tasks.json",
                                       "format": "label_studio", **GOV})  # fmt: skip
    with pytest.raises(SourceError, match=r"tasks\.json: item 0 .* neither 'annotations'"):
        load_source("ls", cfg, tmp_path)
    # a control named to be read whose result type is not a label, rating or ranking
    tasks = json.loads((FIXTURES / "choices_export.json").read_text())
    tasks[1]["annotations"][0]["result"][0]["type"] = "textarea"
    (tmp_path / "odd.json").write_text(json.dumps(tasks))
    cfg = SourceConfig.model_validate({"kind": "file", "role": "annotations", "path": "odd.json",
                                       "format": "label_studio", "tool": {"questions": ["label"]},
                                       **GOV})  # fmt: skip
    with pytest.raises(SourceError, match=r"odd\.json: task 2: control 'label' .* 'textarea'"):
        load_source("ls", cfg, tmp_path)


# --------------------------------------------------------------------------------------------
# The project's review queue through a real Label Studio and back
# --------------------------------------------------------------------------------------------


def test_review_queue_file_is_what_the_project_writes_today(tmp_path):
    counts = case.write_queue(tmp_path)
    assert counts["review_queue"] == 5
    for ours, saved in (("label_studio_tasks.json", "review_queue_tasks.json"),
                        ("label_studio_config.xml", "review_queue_config.xml")):  # fmt: skip
        assert (tmp_path / ours).read_bytes() == (FIXTURES / saved).read_bytes()


@pytest.mark.parametrize("minimal", [False, True], ids=["JSON", "JSON_MIN"])
def test_review_round_trip_through_label_studio(tmp_path, minimal):
    answers = _load("review", minimal)
    entered = {k: lab for k, _, lab, s in ENTERED["review"] if s == "submitted"}
    skipped = [k for k, _, _, s in ENTERED["review"] if s == "cancelled"]
    assert len(entered) == 4 and skipped == ["T-7006"]

    second = label(case.records(), case.recipe(review_answers="ls"),
                   pl.concat([case.votes().lazy(), answers.lazy()], how="diagonal_relaxed"))
    kept = dict(zip(second.kept["source_key"], second.kept["label"], strict=True))
    assert kept == {"T-7001": "billing", **entered}  # the reviewers' answers decide
    assert second.stats["review_answers_used"] == 4
    # the skipped item stays in the queue; the answered ones left it
    assert review_rows(second.rejected)["source_key"].to_list() == skipped
    assert write_review_queue(second.rejected, tmp_path, case.LABELS)["review_queue"] == 1


# --------------------------------------------------------------------------------------------
# Pairwise and ranker answers through the preference stage
# --------------------------------------------------------------------------------------------


def _preference_recipe():
    from ftdata_pipeline.config.models import RecipeConfig

    return RecipeConfig.model_validate(
        {"name": "pref", "kind": "preference", "sources": ["response_rankings"],
         "exports": {"formats": ["trl_preference"]},
         "label": {"method": "rankings", "annotations": "ls"}}  # fmt: skip
    )


def test_pairwise_export_through_the_preference_stage():
    prompts = sorted({p for p, *_ in ENTERED["pairwise"]})
    tasks = {t["data"]["source_key"]: t["data"]
             for t in json.loads((FIXTURES / "pairwise_export.json").read_text())}  # fmt: skip
    by_prompt: dict[str, list] = {}
    for prompt, _, side, status in ENTERED["pairwise"]:
        if status == "submitted":
            left, right = tasks[prompt]["left_key"], tasks[prompt]["right_key"]
            by_prompt.setdefault(prompt, []).append([left, right] if side == "left"
                                                    else [right, left])  # fmt: skip
    want, ties = set(), 0
    for orders in by_prompt.values():
        decided, tied = majority_pairs(orders)
        want |= decided
        ties += tied
    out = label(response_records(prompts), _preference_recipe(), _load("pairwise").lazy())
    assert set(out.kept["source_key"]) == want and len(want) + ties == 12
    assert out.stats["tied_pairs_dropped"] == ties
    assert out.stats["annotations_excluded_by_status"] == {"cancelled": 1}


def test_ranker_export_through_the_preference_stage():
    prompts = sorted({p for p, *_ in ENTERED["ranker"]})
    want, ties = set(), 0
    for prompt in prompts:
        decided, tied = majority_pairs([o for p, _, o, _ in ENTERED["ranker"] if p == prompt])
        want |= decided
        ties += tied
    out = label(response_records(prompts), _preference_recipe(), _load("ranker").lazy())
    assert ties == 0 and len(want) == 72  # three rankers: every pair of four has a majority
    assert set(out.kept["source_key"]) == want


@pytest.mark.parametrize("minimal", [False, True], ids=["JSON", "JSON_MIN"])
def test_ranker_buckets_are_refused_by_name(minimal):
    # Buckets sort items into groups ("best", "worst", and "_" for those left in the list);
    # they are not a ranking, and reading them as one would invent an order.
    assert len(ENTERED["buckets"]) == 3
    file = r"buckets_export_min\.json" if minimal else r"buckets_export\.json"
    with pytest.raises(SourceError, match=file + r": task \d+.*several buckets "
                                                 r"\['_', 'best', 'worst'\]"):  # fmt: skip
        _load("buckets", minimal)
