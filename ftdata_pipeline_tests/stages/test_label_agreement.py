"""Agreement figures against published worked examples; review queue; (source, key) joins."""

from __future__ import annotations

import json

import polars as pl
import pytest

from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.orchestration.checks import LABEL_AGREEMENT, CheckPlan, agreement_result
from ftdata_pipeline.records import ANNOTATION_SCHEMA, conform, stable_id
from ftdata_pipeline.stages.label import label
from ftdata_pipeline.stages.labeling.agreement import (
    annotation_agreement,
    cohen_kappas,
    fleiss_kappa,
    fleiss_kappa_per_category,
    krippendorff_alpha,
)
from ftdata_pipeline.stages.labeling.review import (
    DUPLICATE_CONFLICT,
    NEEDS_REVIEW,
    review_tasks,
    write_review_queue,
)

NAN = None

# Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011), the reliability data of
# 4 observers x 12 units with missing values; published alphas: nominal 0.743, ordinal 0.815,
# interval 0.849.
KRIPPENDORFF_DATA = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    "C": [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
}

# Fleiss (1971), "Measuring nominal scale agreement among many raters", Table 1: 30 patients,
# 6 psychiatrists each, 5 diagnoses (1 depression, 2 personality disorder, 3 schizophrenia,
# 4 neurosis, 5 other). Published: kappa = 0.430; per category 0.245, 0.245, 0.520, 0.471,
# 0.566.
FLEISS_1971 = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]  # fmt: skip


def _krippendorff_votes() -> pl.DataFrame:
    rows = [
        (f"u{unit:02d}", coder, value)
        for coder, values in KRIPPENDORFF_DATA.items()
        for unit, value in enumerate(values)
        if value is not None  # a missing rating is simply no vote
    ]
    votes = pl.DataFrame(rows, schema=["item_key", "annotator", "value"], orient="row")
    return votes.with_columns(pl.col("value").cast(pl.Float64), pl.col("value").cast(pl.String)
                              .alias("label"))  # fmt: skip


def _fleiss_1971_votes() -> pl.DataFrame:
    rows = [
        (f"p{i:02d}", f"r{j}", str(diagnosis))
        for i, row in enumerate(FLEISS_1971)
        for j, diagnosis in enumerate(row)
    ]
    return pl.DataFrame(rows, schema=["item_key", "annotator", "label"], orient="row")


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_krippendorff_alpha_equals_published_example_with_missing_values(level, published):
    assert krippendorff_alpha(_krippendorff_votes(), level) == pytest.approx(published, abs=5e-4)


def test_annotation_agreement_alpha_levels_from_label_order():
    votes = _krippendorff_votes().drop("value")
    # The labels "1".."5" coded by their order in the label set give the published figures.
    stats = annotation_agreement(votes, level="interval", label_order=["1", "2", "3", "4", "5"])
    assert stats["krippendorff_alpha"]["nominal"] == pytest.approx(0.743, abs=5e-4)
    assert stats["krippendorff_alpha"]["interval"] == pytest.approx(0.849, abs=5e-4)
    assert stats["alpha"] == stats["krippendorff_alpha"]["interval"]
    # A label order that reverses the scale changes interval alpha but not nominal alpha.
    shuffled = annotation_agreement(votes, level="interval", label_order=["3", "1", "5", "2", "4"])
    assert shuffled["krippendorff_alpha"]["nominal"] == stats["krippendorff_alpha"]["nominal"]
    assert shuffled["krippendorff_alpha"]["interval"] != pytest.approx(0.849, abs=5e-4)
    # Ratings used as numbers
    numeric = annotation_agreement(votes, level="ordinal", numeric=True)
    assert numeric["alpha"] == pytest.approx(0.815, abs=5e-4)


def test_fleiss_1971_overall_and_per_category():
    votes = _fleiss_1971_votes()
    assert fleiss_kappa(votes) == pytest.approx(0.430, abs=5e-4)
    per = fleiss_kappa_per_category(votes)
    published = {"1": 0.245, "2": 0.245, "3": 0.520, "4": 0.471, "5": 0.566}
    assert per == pytest.approx(published, abs=5e-4)
    stats = annotation_agreement(votes)
    assert stats["fleiss_kappa"] == pytest.approx(0.4302, abs=1e-4)
    assert {k: v["fleiss_kappa"] for k, v in stats["per_label"].items()} == pytest.approx(
        published, abs=5e-4
    )
    # one-vs-rest alpha per label is defined and below 1 for every diagnosis
    assert all(0 < v["krippendorff_alpha"] < 1 for v in stats["per_label"].values())


def test_cohen_kappa_per_pair_undefined_when_one_category():
    votes = pl.DataFrame(
        {"item_key": ["1", "1", "2", "2"], "annotator": ["a", "b", "a", "b"],
         "label": ["x", "x", "x", "x"]}  # fmt: skip
    )
    (row,) = cohen_kappas(votes).iter_rows(named=True)
    assert row["items"] == 2 and row["kappa"] is None
    assert krippendorff_alpha(votes.with_columns(pl.lit(1.0).alias("value"))) is None


# --------------------------------------------------------------------------------------------
# labeled stage: review queue, (source, key) joins, statuses
# --------------------------------------------------------------------------------------------

LABELS = ["billing", "bug", "other"]


def _recipe(sources=("src",), **label_cfg) -> RecipeConfig:
    cfg = {"method": "majority_vote", "annotations": "ann", "label_set": LABELS, "min_votes": 2}
    return RecipeConfig.model_validate(
        {
            "name": "t",
            "kind": "classification",
            "sources": list(sources),
            "exports": {"formats": ["classification_jsonl"]},
            "label": {**cfg, **label_cfg},
        }
    )


def _records(keys, source="src", **cols) -> pl.DataFrame:
    return conform(
        pl.DataFrame(
            {
                "record_id": [stable_id(source, k) for k in keys],
                "source": [source] * len(keys),
                "source_key": keys,
                "text": [f"{source} text {k}" for k in keys],
                **cols,
            }
        )
    )


def _ann(rows, source="ann") -> pl.LazyFrame:
    """rows: (item_key, annotator, label[, item_source[, status]])."""
    full = [(*r, None, None)[:5] for r in rows]
    return conform(
        pl.DataFrame(
            {
                "source": [source] * len(full),
                "source_key": [f"{source}-{i}" for i in range(len(full))],
                "item_key": [r[0] for r in full],
                "annotator": [r[1] for r in full],
                "label": [r[2] for r in full],
                "item_source": [r[3] for r in full],
                "status": [r[4] for r in full],
            },
            schema_overrides={"item_source": pl.String, "status": pl.String},
        ),
        ANNOTATION_SCHEMA,
    ).lazy()


SPLIT_VOTES = [
    ("1", "a", "bug"), ("1", "b", "bug"), ("1", "c", "bug"),  # unanimous
    ("2", "a", "bug"), ("2", "b", "bug"), ("2", "c", "billing"),  # 2 of 3
    ("3", "a", "bug"), ("3", "b", "billing"), ("3", "c", "other"),  # three-way tie
]  # fmt: skip


def test_items_under_the_bar_go_to_the_review_queue_not_training(tmp_path):
    recipe = _recipe(agreement={"review_below": 0.8})
    result = label(_records(["1", "2", "3"]).lazy(), recipe, _ann(SPLIT_VOTES))
    assert result.kept["source_key"].to_list() == ["1"]
    rules = dict(zip(result.rejected["source_key"], result.rejected["rule"], strict=True))
    assert rules == {"2": NEEDS_REVIEW, "3": NEEDS_REVIEW}
    # the queue is exported as Label Studio tasks with the majority as pre-annotation
    meta = write_review_queue(result.rejected, tmp_path, LABELS)
    assert meta["review_queue"] == 2
    tasks = json.loads((tmp_path / "label_studio_tasks.json").read_text())
    assert [(t["data"]["source"], t["data"]["source_key"]) for t in tasks] == sorted(
        [("src", "2"), ("src", "3")], key=lambda k: stable_id(*k)
    )
    by_key = {t["data"]["source_key"]: t for t in tasks}
    assert by_key["2"]["predictions"][0]["result"][0]["value"] == {"choices": ["bug"]}
    assert by_key["2"]["data"]["text"] == "src text 2"
    config = (tmp_path / "label_studio_config.xml").read_text()
    assert all(f'<Choice value="{lab}"/>' in config for lab in LABELS)


def test_without_review_bar_disagreement_is_rejected_as_before():
    result = label(_records(["1", "2", "3"]).lazy(), _recipe(), _ann(SPLIT_VOTES))
    assert sorted(result.kept["source_key"].to_list()) == ["1", "2"]
    assert result.rejected["rule"].to_list() == ["no_majority"]


def test_review_answers_close_the_loop():
    recipe = _recipe(review_answers="review", agreement={"review_below": 0.8})
    answers = _ann([("2", "lead", "billing"), ("3", "lead", "other")], source="review")
    frames = pl.concat([_ann(SPLIT_VOTES), answers])
    result = label(_records(["1", "2", "3"]).lazy(), recipe, frames)
    assert result.rejected.is_empty()
    kept = dict(zip(result.kept["source_key"], result.kept["label"], strict=True))
    assert kept == {"1": "bug", "2": "billing", "3": "other"}
    assert result.stats["labeled_by"] == {"majority_vote": 1, "review": 2}
    assert result.stats["review_answers_used"] == 2
    # review answers are not votes: agreement is measured on the annotators only
    assert result.stats["agreement"]["votes"] == 9


def test_votes_join_on_source_and_key_never_key_alone():
    records = pl.concat([_records(["1"], source="src"), _records(["1"], source="other")])
    votes = [("1", "a", "bug", "src"), ("1", "b", "bug", "src"),
             ("1", "a", "billing", "other"), ("1", "b", "billing", "other")]  # fmt: skip
    result = label(records.lazy(), _recipe(sources=("src", "other")), _ann(votes))
    kept = {(r["source"], r["source_key"]): r["label"] for r in result.kept.iter_rows(named=True)}
    assert kept == {("src", "1"): "bug", ("other", "1"): "billing"}
    assert result.stats["agreement"]["items"] == 2


def test_annotations_without_item_source_are_ambiguous_with_two_sources():
    records = pl.concat([_records(["1"], source="src"), _records(["1"], source="other")])
    with pytest.raises(ValueError, match=r"\['ann'\].*annotates"):
        label(records.lazy(), _recipe(sources=("src", "other")), _ann([("1", "a", "bug")]))


def test_cancelled_and_discarded_answers_excluded_and_counted():
    votes = [("1", "a", "bug", None, "submitted"), ("1", "b", "bug", None, None),
             ("1", "c", "billing", None, "cancelled"), ("1", "d", "billing", None, "discarded"),
             ("1", "e", "billing", None, "draft")]  # fmt: skip
    result = label(_records(["1"]).lazy(), _recipe(), _ann(votes))
    assert result.kept["label"].to_list() == ["bug"]
    assert result.kept["label_agreement"].to_list() == [1.0]
    assert result.stats["annotations_excluded_by_status"] == {
        "cancelled": 1, "discarded": 1, "draft": 1
    }


def test_conflicting_labels_on_exact_and_near_duplicates_flagged():
    records = _records(
        ["1", "2", "3", "4", "5"],
        content_hash=["h1", "h1", "h3", "h4", "h5"],  # 1 and 2 are exact duplicates
        dup_cluster_id=["c1", "c2", "c3", "c3", "c5"],  # 3 and 4 are near duplicates
    )
    votes = [(k, a, lab) for k, lab in
             [("1", "bug"), ("2", "billing"), ("3", "bug"), ("4", "other"), ("5", "bug")]
             for a in ("a", "b")]  # fmt: skip
    result = label(records.lazy(), _recipe(), _ann(votes))
    flagged = result.rejected.filter(pl.col("rule") == DUPLICATE_CONFLICT)["source_key"]
    assert sorted(flagged.to_list()) == ["1", "2", "3", "4"]
    assert result.kept["source_key"].to_list() == ["5"]
    assert len(review_tasks(result.rejected)) == 4
    # same labels on duplicates are no conflict
    same = [(k, a, "bug") for k in ("1", "2", "3", "4", "5") for a in ("a", "b")]
    assert label(records.lazy(), _recipe(), _ann(same)).rejected.is_empty()


# --------------------------------------------------------------------------------------------
# blocking check
# --------------------------------------------------------------------------------------------


def test_agreement_check_blocks_under_min_alpha():
    recipe = _recipe(agreement={"min_alpha": 0.8})
    low = label(_records(["1", "2", "3"]).lazy(), recipe, _ann(SPLIT_VOTES))
    check = agreement_result(recipe, low.stats)
    assert check.check_name == LABEL_AGREEMENT
    assert low.stats["agreement"]["alpha"] < 0.8
    assert not check.passed
    unanimous = [(k, a, lab) for k, lab in [("1", "bug"), ("2", "billing"), ("3", "other")]
                 for a in ("a", "b", "c")]  # fmt: skip
    high = label(_records(["1", "2", "3"]).lazy(), recipe, _ann(unanimous))
    assert high.stats["agreement"]["alpha"] == 1.0
    assert agreement_result(recipe, high.stats).passed
    # no measurable agreement fails too
    assert not agreement_result(recipe, {"agreement": {"alpha": None}}).passed


def test_agreement_check_declared_only_with_min_alpha():
    from dagster import AssetKey

    with_bar = CheckPlan(AssetKey(["t", "labeled"]), "labeled", _recipe(agreement={"min_alpha": 0.6}),
                         "classification")  # fmt: skip
    without = CheckPlan(AssetKey(["t", "labeled"]), "labeled", _recipe(), "classification")
    assert LABEL_AGREEMENT in {s.name for s in with_bar.specs()}
    assert LABEL_AGREEMENT not in {s.name for s in without.specs()}
