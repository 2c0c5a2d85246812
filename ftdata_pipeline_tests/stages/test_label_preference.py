"""Preference pairs: exact pair counts for rankings (all / best-vs-worst / best-vs-rest), ratings
with a margin, pairwise A/B/tie from several annotators, ties, and prompts kept in one split."""

from __future__ import annotations

import json

import polars as pl
import pytest
from pydantic import ValidationError

from ftdata_pipeline.config.models import RecipeConfig, SourceConfig
from ftdata_pipeline.records import ANNOTATION_SCHEMA, conform, stable_id
from ftdata_pipeline.stages.label import label
from ftdata_pipeline.stages.raw import load_source
from ftdata_pipeline.stages.split import split


def _recipe(method="rankings", annotations=None, **preference) -> RecipeConfig:
    cfg = {"method": method, "preference": preference}
    if annotations:
        cfg["annotations"] = annotations
    return RecipeConfig.model_validate(
        {"name": "t", "kind": "preference", "sources": ["src"],
         "exports": {"formats": ["trl_preference"]}, "label": cfg}  # fmt: skip
    )


def _responses(prompt: str, n: int, ranks=None) -> pl.DataFrame:
    keys = [f"{prompt}-{chr(ord('a') + i)}" for i in range(n)]
    return conform(
        pl.DataFrame(
            {
                "record_id": [stable_id("src", k) for k in keys],
                "source": ["src"] * n,
                "source_key": keys,
                "conversation_id": [prompt] * n,
                "prompt": [f"question {prompt}"] * n,
                "response": [f"answer {k}" for k in keys],
                "rank": ranks if ranks is not None else [None] * n,
            }
        )
    )


def _ann(rows) -> pl.LazyFrame:
    """rows: (item_key, annotator, rank, rating, judgement[, status[, item_source]])."""
    full = [(*r, None, None)[:7] for r in rows]
    return conform(
        pl.DataFrame(
            {
                "source": ["ann"] * len(full),
                "source_key": [f"{i:03d}" for i in range(len(full))],
                "item_key": [r[0] for r in full],
                "annotator": [r[1] for r in full],
                "rank": [r[2] for r in full],
                "rating": [r[3] for r in full],
                "judgement": [r[4] for r in full],
                "status": [r[5] for r in full],
                "item_source": [r[6] or "src" for r in full],
            },
            schema_overrides={"rank": pl.Int32, "rating": pl.Float64, "judgement": pl.String,
                              "status": pl.String},  # fmt: skip
        ),
        ANNOTATION_SCHEMA,
    ).lazy()


def _pairs(result) -> set[tuple[str, str]]:
    return {tuple(k.split(">")) for k in result.kept["source_key"].to_list()}


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("all_pairs", 10),  # K(K-1)/2 with K = 5
        ("best_vs_worst", 1),
        ("best_vs_rest", 4),  # K - 1
    ],
)
def test_ranking_pair_strategies_exact_counts(strategy, expected):
    frame = _responses("p", 5, ranks=[3, 1, 5, 2, 4])
    result = label(frame.lazy(), _recipe(pairs=strategy))
    assert result.kept.height == expected == result.stats["pairs"]
    pairs = _pairs(result)
    if strategy == "best_vs_worst":
        assert pairs == {("p-b", "p-c")}  # rank 1 over rank 5
    if strategy == "best_vs_rest":
        assert {c for c, _ in pairs} == {"p-b"}
        assert result.rows_rejected == 0  # every response is in a pair with the best
    if strategy == "best_vs_worst":
        assert sorted(result.rejected["source_key"].to_list()) == ["p-a", "p-d", "p-e"]


def test_ranking_ties_dropped_and_counted():
    result = label(_responses("p", 5, ranks=[1, 2, 2, 3, 3]).lazy(), _recipe())
    assert result.stats["pairs"] == 8
    assert result.stats["tied_pairs_dropped"] == 2


@pytest.mark.parametrize(("margin", "pairs", "ties"), [(2, 4, 2), (1, 6, 0), (3, 3, 3)])
def test_ratings_pairs_with_minimum_margin(margin, pairs, ties):
    frame = _responses("p", 4)
    ratings = [("p-a", "u1", None, 5.0, None), ("p-b", "u1", None, 4.0, None),
               ("p-c", "u1", None, 2.0, None), ("p-d", "u1", None, 1.0, None)]  # fmt: skip
    recipe = _recipe("ratings", "ann", min_margin=margin)
    result = label(frame.lazy(), recipe, _ann(ratings))
    assert result.stats["pairs"] == pairs
    assert result.stats["tied_pairs_dropped"] == ties
    if margin == 2:
        assert _pairs(result) == {("p-a", "p-c"), ("p-a", "p-d"), ("p-b", "p-c"), ("p-b", "p-d")}


def test_pairwise_choices_from_several_annotators_with_pair_agreement():
    frame = _responses("p", 3)  # p-a, p-b, p-c
    votes = [
        # x=a vs y=b: a, b prefer a; c prefers b -> a>b with agreement 2/3
        ("p-a", "u1", 1, None, "j1"), ("p-b", "u1", 2, None, "j1"),
        ("p-a", "u2", 1, None, "j2"), ("p-b", "u2", 2, None, "j2"),
        ("p-a", "u3", 2, None, "j3"), ("p-b", "u3", 1, None, "j3"),
        # b vs c: two ties and one b>c -> majority tie, dropped
        ("p-b", "u1", 1, None, "j4"), ("p-c", "u1", 1, None, "j4"),
        ("p-b", "u2", 1, None, "j5"), ("p-c", "u2", 1, None, "j5"),
        ("p-b", "u3", 1, None, "j6"), ("p-c", "u3", 2, None, "j6"),
        # a vs c: one annotator, a>c
        ("p-a", "u1", 1, None, "j7"), ("p-c", "u1", 2, None, "j7"),
        # a cancelled judgement that would flip a vs c is excluded and counted
        ("p-a", "u2", 2, None, "j8", "cancelled"), ("p-c", "u2", 1, None, "j8", "cancelled"),
    ]  # fmt: skip
    result = label(frame.lazy(), _recipe("rankings", "ann"), _ann(votes))
    agreement = dict(zip(result.kept["source_key"], result.kept["label_agreement"], strict=True))
    assert agreement == pytest.approx({"p-a>p-b": 2 / 3, "p-a>p-c": 1.0})
    assert result.stats["tied_pairs_dropped"] == 1
    assert result.stats["pairs_with_several_annotators"] == 1
    assert result.stats["pairs_unanimous"] == 0
    assert result.stats["annotations_excluded_by_status"] == {"cancelled": 2}


def test_several_rankings_combined_by_majority_and_copeland_best():
    frame = _responses("p", 3)
    orders = {"u1": ["p-a", "p-b", "p-c"], "u2": ["p-a", "p-c", "p-b"], "u3": ["p-b", "p-a", "p-c"]}
    votes = [(k, u, i + 1, None, None) for u, order in orders.items() for i, k in enumerate(order)]
    result = label(frame.lazy(), _recipe("rankings", "ann"), _ann(votes))
    agreement = dict(zip(result.kept["source_key"], result.kept["label_agreement"], strict=True))
    assert agreement == pytest.approx({"p-a>p-b": 2 / 3, "p-a>p-c": 1.0, "p-b>p-c": 2 / 3})
    assert result.stats["pair_agreement_mean"] == pytest.approx(0.7778, abs=1e-4)
    best = label(frame.lazy(), _recipe("rankings", "ann", pairs="best_vs_worst"), _ann(votes))
    assert _pairs(best) == {("p-a", "p-c")}
    strict = label(frame.lazy(), _recipe("rankings", "ann", min_pair_agreement=0.9), _ann(votes))
    assert _pairs(strict) == {("p-a", "p-c")}
    assert strict.stats["low_agreement_pairs_dropped"] == 2


def test_rankings_join_on_source_and_key():
    frame = _responses("p", 2)
    votes = [("p-a", "u1", 1, None, None), ("p-b", "u1", 2, None, None),
             ("p-a", "u2", 2, None, None, None, "elsewhere"),
             ("p-b", "u2", 1, None, None, None, "elsewhere")]  # fmt: skip
    result = label(frame.lazy(), _recipe("rankings", "ann"), _ann(votes))
    assert _pairs(result) == {("p-a", "p-b")}
    assert result.kept["label_agreement"].to_list() == [1.0]
    assert result.stats["annotations_for_other_records"] == 2


def test_every_pair_of_one_prompt_in_one_split():
    frame = pl.concat([_responses(f"p{i}", 4, ranks=[1, 2, 3, 4]) for i in range(40)])
    recipe = _recipe()
    pairs = label(frame.lazy(), recipe).kept
    assert pairs.height == 40 * 6
    result = split(pairs.lazy(), recipe)
    per_prompt = result.kept.group_by("conversation_id").agg(pl.col("split").n_unique())
    assert per_prompt["split"].max() == 1
    assert result.kept["split"].n_unique() > 1


def test_ratings_from_argilla_export(tmp_path):
    records = [
        {"id": f"r{i}", "source": "src", "source_key": key,
         "quality.responses": ratings, "quality.responses.users": ["u1", "u2"],
         "quality.responses.status": ["submitted", "submitted"]}
        for i, (key, ratings) in enumerate([("p-a", [5, 4]), ("p-b", [2, 2]), ("p-c", [4, 5])])
    ]  # fmt: skip
    (tmp_path / "ratings.json").write_text(json.dumps(records))
    cfg = SourceConfig.model_validate(
        {"kind": "file", "role": "annotations", "path": "ratings.json", "format": "argilla",
         "owner": "o", "licence": "l", "classification": "internal", "contains_pii": False}
    )  # fmt: skip
    ann = load_source("ann", cfg, tmp_path)
    result = label(_responses("p", 3).lazy(), _recipe("ratings", "ann", min_margin=2), ann.lazy())
    # u1: a5 b2 c4 -> a>b, c>b (a~c tie); u2: a4 b2 c5 -> a>b, c>b (a~c tie)
    assert _pairs(result) == {("p-a", "p-b"), ("p-c", "p-b")}
    assert result.stats["tied_pairs_dropped"] == 1
    assert result.stats["rating_alpha_interval"] is not None


def test_ratings_need_annotations():
    with pytest.raises(ValidationError, match="ratings"):
        _recipe("ratings")


def test_ratings_on_chat_examples_become_kto_labels():
    from ftdata_pipeline.formats import FORMATS_BY_NAME

    keys = ["c1", "c2", "c3", "c4"]
    chats = conform(pl.DataFrame({
        "record_id": [stable_id("src", k) for k in keys], "source": ["src"] * 4, "source_key": keys,
        "prompt": [f"q {k}" for k in keys], "response": [f"a {k}" for k in keys]}))  # fmt: skip
    ratings = [("c1", "u1", None, 5.0, None), ("c1", "u2", None, 4.0, None),  # mean 4.5
               ("c2", "u1", None, 1.0, None), ("c2", "u2", None, 2.0, None),  # mean 1.5
               ("c3", "u1", None, 3.0, None),  # neutral
               ("c1", "u3", None, 1.0, None, "discarded")]  # fmt: skip
    recipe = RecipeConfig.model_validate(
        {"name": "t", "kind": "chat_sft", "sources": ["src"], "exports": {"formats": ["trl_kto"]},
         "label": {"method": "ratings", "annotations": "ann",
                   "preference": {"desirable_at": 4, "undesirable_at": 2}}}  # fmt: skip
    )
    result = label(chats.lazy(), recipe, _ann(ratings))
    assert dict(zip(result.kept["source_key"], result.kept["label"], strict=True)) == {
        "c1": "desirable", "c2": "undesirable"}
    rules = dict(zip(result.rejected["source_key"], result.rejected["rule"], strict=True))
    assert rules == {"c3": "neutral_rating", "c4": "unrated"}
    assert result.stats["annotations_excluded_by_status"] == {"discarded": 1}
    lines = [FORMATS_BY_NAME["trl_kto"].to_example(r) for r in result.kept.iter_rows(named=True)]
    assert sorted(line["label"] for line in lines) == [False, True]
