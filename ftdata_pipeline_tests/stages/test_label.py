"""Tests of the labeled stage: source labels, rules, majority vote, agreement, rankings."""

from __future__ import annotations

from itertools import combinations

import polars as pl
import pytest

from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.records import ANNOTATION_SCHEMA, RECORD_SCHEMA, conform, stable_id
from ftdata_pipeline.stages.label import (
    annotation_agreement,
    cohen_kappas,
    fleiss_kappa,
    label,
)

LABELS = ["billing", "bug", "other"]


def _recipe(kind: str = "classification", **label_cfg) -> RecipeConfig:
    fmt = {"classification": "classification_jsonl", "preference": "trl_preference"}.get(
        kind, "trl_messages"
    )
    return RecipeConfig.model_validate(
        {
            "name": "t",
            "kind": kind,
            "sources": ["src"],
            "exports": {"formats": [fmt]},
            "label": label_cfg,
        }
    )


def _records(keys: list[str], texts: list[str] | None = None, labels=None) -> pl.LazyFrame:
    return conform(
        pl.DataFrame(
            {
                "record_id": [stable_id("src", k) for k in keys],
                "source": ["src"] * len(keys),
                "source_key": keys,
                "text": texts or [f"text {k}" for k in keys],
                "label": labels or [None] * len(keys),
            }
        )
    ).lazy()


def _annotations(votes: list[tuple[str, str, str]]) -> pl.LazyFrame:
    """votes: (item_key, annotator, label)."""
    return conform(
        pl.DataFrame(
            {
                "source": ["ann"] * len(votes),
                "source_key": [str(i) for i in range(len(votes))],
                "item_key": [v[0] for v in votes],
                "annotator": [v[1] for v in votes],
                "label": [v[2] for v in votes],
            }
        ),
        ANNOTATION_SCHEMA,
    ).lazy()


def _by_key(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["source_key"]: row for row in frame.iter_rows(named=True)}


def _check_accounting(result) -> None:
    assert result.rows_in == result.rows_kept + result.rows_rejected
    assert set(result.rejected["stage"].unique().to_list()) <= {"labeled"}


# --------------------------------------------------------------------------------------------
# none / source / rules
# --------------------------------------------------------------------------------------------


def test_none_passes_through():
    recipe = _recipe("chat_sft")
    frame = _records(["b", "a"])
    result = label(frame, recipe)
    assert result.kept.equals(frame.collect().sort("record_id"))
    assert result.rows_rejected == 0 and result.rows_in == 2
    assert result.stats["method"] == "none" and result.stats["passthrough"] is True
    # records already in id order pass as the scan they came as: never all in memory
    ordered = _records(["a", "b", "c"])
    passed = label(ordered, recipe)
    assert isinstance(passed.kept, pl.LazyFrame)
    assert passed.kept.collect().equals(ordered.collect()) and passed.rows_kept == 3


def test_source_labels_checked_against_set():
    recipe = _recipe(method="source", label_set=LABELS)
    result = label(_records(["1", "2", "3"], labels=["bug", None, "spam"]), recipe)
    _check_accounting(result)
    assert result.kept["source_key"].to_list() == ["1"]
    rejected = _by_key(result.rejected)
    assert rejected["2"]["rule"] == "missing_label"
    assert rejected["3"]["rule"] == "label_not_in_set"
    assert result.stats["labels"] == {"bug": 1}
    assert result.drop_counts() == {"label_not_in_set": 1, "missing_label": 1}


def test_rules_first_match_wins_and_no_match_rejected():
    recipe = _recipe(
        method="rules",
        label_set=LABELS,
        rules=[
            {"label": "billing", "pattern": r"(?i)\binvoice\b"},
            {"label": "bug", "pattern": r"crash(?:[^-]|$)"},  # not "crash-free"
            {"label": "other", "pattern": "invoice|crash"},
        ],
    )
    texts = ["Invoice after the app crash", "app crash on start", "crash-free", "hello"]
    result = label(_records(["1", "2", "3", "4"], texts), recipe)
    _check_accounting(result)
    kept = _by_key(result.kept)
    assert kept["1"]["label"] == "billing"
    assert kept["2"]["label"] == "bug"
    assert kept["3"]["label"] == "other"
    assert kept["1"]["label_agreement"] is None
    assert _by_key(result.rejected)["4"]["rule"] == "no_rule_matched"
    assert result.stats["labeled_by"] == {"rules": 3}


def test_rule_patterns_the_rust_engine_cannot_run_are_config_errors():
    # look-around would need a backtracking engine: refused, never run through Python's re
    with pytest.raises(ValueError, match=r"(?s)rules\.0\.pattern.*invalid regular expression.*look-around"):
        _recipe(method="rules", label_set=LABELS, rules=[{"label": "bug", "pattern": "crash(?!-free)"}])


# --------------------------------------------------------------------------------------------
# majority vote
# --------------------------------------------------------------------------------------------


def _vote_recipe(**extra) -> RecipeConfig:
    return _recipe(
        method="majority_vote", annotations="ann", label_set=LABELS, min_votes=2, **extra
    )


def test_majority_vote_two_one_split_and_tie():
    votes = [
        ("1", "a", "bug"), ("1", "b", "bug"), ("1", "c", "billing"),  # 2-1 -> bug
        ("2", "a", "bug"), ("2", "b", "billing"), ("2", "c", "other"),  # three-way tie
    ]  # fmt: skip
    result = label(_records(["1", "2"]), _vote_recipe(), _annotations(votes))
    _check_accounting(result)
    kept = _by_key(result.kept)
    assert kept["1"]["label"] == "bug"
    assert kept["1"]["label_agreement"] == pytest.approx(2 / 3)
    tie = _by_key(result.rejected)["2"]
    assert tie["rule"] == "no_majority"
    assert tie["score"] == pytest.approx(1 / 3)
    assert result.stats["labeled_by"] == {"majority_vote": 1}


def test_min_agreement_and_duplicate_votes():
    votes = [
        ("1", "a", "bug"), ("1", "b", "bug"), ("1", "c", "other"),
        ("1", "a", "other"),  # a second vote by "a" on item 1 is ignored
    ]  # fmt: skip
    result = label(_records(["1"]), _vote_recipe(min_agreement=0.7), _annotations(votes))
    rejected = _by_key(result.rejected)["1"]
    assert rejected["rule"] == "low_agreement"
    assert rejected["score"] == pytest.approx(2 / 3)
    assert result.stats["annotations_duplicate"] == 1


def test_too_few_votes_without_rules():
    votes = [("1", "a", "bug")]
    result = label(_records(["1", "2"]), _vote_recipe(), _annotations(votes))
    _check_accounting(result)
    rejected = _by_key(result.rejected)
    assert rejected["1"]["rule"] == "insufficient_votes"
    assert rejected["1"]["score"] == 1.0
    assert rejected["2"]["rule"] == "unlabeled"
    assert result.kept.is_empty()


def test_too_few_votes_falls_back_to_rules():
    votes = [("1", "a", "bug"), ("3", "a", "bug"), ("3", "b", "bug")]
    recipe = _vote_recipe(rules=[{"label": "billing", "pattern": "invoice"}])
    texts = ["my invoice is wrong", "invoice again", "app crash", "nothing"]
    result = label(_records(["1", "2", "3", "4"], texts), recipe, _annotations(votes))
    _check_accounting(result)
    kept = _by_key(result.kept)
    assert kept["1"]["label"] == "billing"  # one vote only -> rule
    assert kept["1"]["label_agreement"] is None
    assert kept["2"]["label"] == "billing"  # no annotations -> rule
    assert kept["3"]["label"] == "bug" and kept["3"]["label_agreement"] == 1.0
    assert _by_key(result.rejected)["4"]["rule"] == "unlabeled"
    assert result.stats["labeled_by"] == {"majority_vote": 1, "rules": 2}
    assert result.stats["labels"] == {"billing": 2, "bug": 1}


def test_winner_outside_label_set_rejected():
    votes = [("1", "a", "spam"), ("1", "b", "spam"), ("2", "a", "bug"), ("2", "b", "bug")]
    result = label(_records(["1", "2"]), _vote_recipe(), _annotations(votes))
    _check_accounting(result)
    assert result.kept["source_key"].to_list() == ["2"]
    assert _by_key(result.rejected)["1"]["rule"] == "label_not_in_set"


def test_annotations_of_other_records_ignored_in_agreement():
    votes = [("1", "a", "bug"), ("1", "b", "bug"), ("99", "a", "bug"), ("99", "b", "other")]
    result = label(_records(["1"]), _vote_recipe(), _annotations(votes))
    assert result.stats["annotations_for_other_records"] == 2
    assert result.stats["agreement"]["items"] == 1


def test_majority_vote_requires_annotations():
    with pytest.raises(ValueError, match="annotations"):
        label(_records(["1"]), _vote_recipe())


# --------------------------------------------------------------------------------------------
# kappa
# --------------------------------------------------------------------------------------------

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def _fleiss_votes() -> pl.DataFrame:
    # Each of the 14 raters labels every subject once.
    rows = [
        (f"s{i}", f"r{rater:02d}", label)
        for i, counts in enumerate(FLEISS_TABLE)
        for rater, label in enumerate(f"c{j}" for j, n in enumerate(counts) for _ in range(n))
    ]
    return pl.DataFrame(rows, schema=["item_key", "annotator", "label"], orient="row")


def test_fleiss_kappa_textbook_value():
    assert fleiss_kappa(_fleiss_votes()) == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_kappa_edge_cases():
    perfect = pl.DataFrame({"item_key": ["1", "1", "2", "2"], "label": ["x", "x", "y", "y"]})
    assert fleiss_kappa(perfect) == pytest.approx(1.0)
    one_category = pl.DataFrame({"item_key": ["1", "1"], "label": ["x", "x"]})
    assert fleiss_kappa(one_category) is None
    uneven = pl.DataFrame({"item_key": ["1", "1", "2"], "label": ["x", "x", "y"]})
    with pytest.raises(ValueError):
        fleiss_kappa(uneven)


def _cohen_votes(table: dict[tuple[str, str], int]) -> pl.DataFrame:
    rows, item = [], 0
    for (label_a, label_b), n in table.items():
        for _ in range(n):
            rows += [(str(item), "ann_a", label_a), (str(item), "ann_b", label_b)]
            item += 1
    return pl.DataFrame(rows, schema=["item_key", "annotator", "label"], orient="row")


def test_cohen_kappa_textbook_values():
    # Wikipedia, "Cohen's kappa": 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15
    # -> p_o = 0.7, p_e = 0.5, kappa = 0.4.
    wiki = _cohen_votes({("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15})
    (row,) = cohen_kappas(wiki).iter_rows(named=True)
    assert (row["annotator_a"], row["annotator_b"], row["items"]) == ("ann_a", "ann_b", 50)
    assert row["kappa"] == pytest.approx(0.4)
    # Second example there: 45/15/25/15 -> kappa ~= 0.1304.
    other = _cohen_votes(
        {("yes", "yes"): 45, ("yes", "no"): 15, ("no", "yes"): 25, ("no", "no"): 15}
    )
    assert cohen_kappas(other)["kappa"][0] == pytest.approx(0.1304, abs=1e-4)


def test_agreement_stats_use_modal_rater_count_and_all_pairs():
    votes = _fleiss_votes()
    # An extra item with only two raters must not enter Fleiss' kappa (modal count is 14).
    extra = pl.DataFrame(
        {"item_key": ["x", "x"], "annotator": ["r00", "r01"], "label": ["c0", "c1"]}
    )
    stats = annotation_agreement(pl.concat([votes, extra]))
    assert stats["fleiss_raters"] == 14
    assert stats["fleiss_items"] == 10
    assert stats["fleiss_kappa"] == pytest.approx(0.2099, abs=1e-4)
    assert len(stats["cohen_kappa"]) == len(list(combinations(range(14), 2)))
    first = stats["cohen_kappa"][0]
    assert first["annotators"] == ["r00", "r01"] and first["items"] == 11
    assert all(pair["items"] == 10 for pair in stats["cohen_kappa"][1:])


def test_majority_vote_reports_agreement():
    votes = [(k, a, "bug" if k != "3" or a != "c" else "other")
             for k in ("1", "2", "3") for a in ("a", "b", "c")]  # fmt: skip
    result = label(_records(["1", "2", "3"]), _vote_recipe(), _annotations(votes))
    agreement = result.stats["agreement"]
    assert agreement["fleiss_raters"] == 3 and agreement["fleiss_items"] == 3
    assert agreement["annotators"] == 3
    assert {tuple(p["annotators"]) for p in agreement["cohen_kappa"]} == {
        ("a", "b"), ("a", "c"), ("b", "c")
    }


# --------------------------------------------------------------------------------------------
# rankings
# --------------------------------------------------------------------------------------------


def _responses(prompt_id: str, ranks: list[int | None], source: str = "src") -> pl.DataFrame:
    keys = [f"{prompt_id}-{i}" for i in range(len(ranks))]
    return conform(
        pl.DataFrame(
            {
                "record_id": [stable_id(source, k) for k in keys],
                "source": [source] * len(keys),
                "source_key": keys,
                "conversation_id": [prompt_id] * len(keys),
                "prompt": [f"question {prompt_id}"] * len(keys),
                "response": [f"answer {k}" for k in keys],
                "rank": ranks,
                "dup_cluster_id": [f"dup-{k}" for k in keys],
            }
        )
    )


def _rank_recipe() -> RecipeConfig:
    return _recipe("preference", method="rankings")


def test_rankings_four_responses_give_six_pairs_in_rank_order():
    frame = _responses("p1", [2, 1, 4, 3])
    result = label(frame.lazy(), _rank_recipe())
    kept = result.kept
    assert kept.height == 6
    assert kept.columns == list(RECORD_SCHEMA)
    rank_of = dict(zip(frame["response"].to_list(), frame["rank"].to_list(), strict=True))
    for row in kept.iter_rows(named=True):
        assert rank_of[row["chosen"]] < rank_of[row["rejected"]]
        assert row["conversation_id"] == "p1" and row["prompt"] == "question p1"
        assert row["response"] is None and row["rank"] is None
        chosen_key, rejected_key = row["source_key"].split(">")
        assert row["chosen"] == f"answer {chosen_key}"
        assert row["rejected"] == f"answer {rejected_key}"
        assert row["dup_cluster_id"] == f"dup-{chosen_key}"
        pair_of = (stable_id("src", chosen_key), stable_id("src", rejected_key))
        assert row["record_id"] == stable_id(*pair_of)
    # rank 1 beats everyone: p1-1 is chosen in 3 pairs
    assert sum(k.startswith("p1-1>") for k in kept["source_key"]) == 3
    assert kept["record_id"].is_sorted()
    assert {k: result.stats[k] for k in
            ("method", "pairs", "prompts", "tied_pairs_dropped", "responses_used")} == {
        "method": "rankings", "pairs": 6, "prompts": 1, "tied_pairs_dropped": 0, "responses_used": 4
    }  # fmt: skip
    assert kept["label_agreement"].to_list() == [1.0] * 6
    assert result.rows_in == 4 and result.rows_kept == 4 and result.rows_rejected == 0


def test_rankings_tie_drops_one_pair():
    result = label(_responses("p1", [1, 2, 2, 3]).lazy(), _rank_recipe())
    assert result.kept.height == 5
    assert result.stats["tied_pairs_dropped"] == 1
    assert "p1-1>p1-2" not in result.kept["source_key"].to_list()
    assert "p1-2>p1-1" not in result.kept["source_key"].to_list()


def test_rankings_unpaired_responses_rejected_and_prompts_separate():
    frame = pl.concat(
        [
            _responses("p1", [1, 2]),
            _responses("p2", [1]),  # alone
            _responses("p3", [1, 1]),  # all tied
            _responses("p4", [None, 1, 2]),  # one unranked
            _responses("p1", [1, 2], source="other"),  # same prompt id, other source
        ]
    )
    result = label(frame.lazy(), _rank_recipe())
    _check_accounting(result)
    assert result.stats["pairs"] == 3  # p1 (src), p4, p1 (other)
    assert result.stats["prompts"] == 3
    assert result.stats["tied_pairs_dropped"] == 1
    assert sorted(result.rejected["source_key"].to_list()) == ["p2-0", "p3-0", "p3-1", "p4-0"]
    assert set(result.rejected["rule"].to_list()) == {"no_pair"}
    assert result.rows_kept == 6 == result.stats["responses_used"]
    assert result.kept.filter(pl.col("source") == "other").height == 1


def test_rankings_deterministic():
    frame = pl.concat([_responses("p1", [3, 1, 2]), _responses("p2", [1, 2])])
    first = label(frame.lazy(), _rank_recipe())
    second = label(frame.reverse().lazy(), _rank_recipe())
    assert first.kept.equals(second.kept)
    assert first.rejected.equals(second.rejected)


def test_preference_source_pairs_need_all_fields():
    frame = conform(
        pl.DataFrame(
            {
                "record_id": ["1", "2"],
                "prompt": ["q", "q"],
                "chosen": ["good", None],
                "rejected": ["bad", "bad"],
            }
        )
    )
    result = label(frame.lazy(), _recipe("preference", method="source"))
    _check_accounting(result)
    assert result.kept["record_id"].to_list() == ["1"]
    assert result.rejected["rule"].to_list() == ["missing_pair"]
