"""Tests for the split stage: group-aware assignment, completeness, size target, leakage.

Records of a source other datasets read (``shared_sources``) keep their group's hash split;
the others are split by quota within each stratum.
"""

from __future__ import annotations

import hashlib

import polars as pl
import pytest

from ftdata_pipeline import records
from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.stages.split import leakage_report, split

FORMATS = {
    "chat_sft": "openai_chat",
    "classification": "classification_jsonl",
    "preference": "trl_preference",
    "pretraining": "trl_text",
    "distillation": "trl_messages",
}


def recipe(kind: str = "pretraining", **split_cfg) -> RecipeConfig:
    data = {
        "name": "demo",
        "kind": kind,
        "sources": ["src"],
        "exports": {"formats": [FORMATS[kind]]},
        "split": split_cfg,
    }
    if kind == "classification":
        data["label"] = {
            "method": "rules",
            "rules": [{"label": "pos", "pattern": "good"}],
            "label_set": ["pos", "neg"],
        }
    if kind == "preference":
        data["label"] = {"method": "rankings"}
    if kind == "distillation":
        data["label"] = {"method": "teacher", "teacher": {"outputs": "teacher_outputs"}}
    return RecipeConfig.model_validate(data)


def frame(rows: list[dict]) -> pl.DataFrame:
    return records.conform(pl.DataFrame(rows, infer_schema_length=None))


def synthetic(n: int = 2000) -> pl.DataFrame:
    """n text records: 100 conversations of 4 records, 50 duplicate clusters of 3, singletons."""
    rows = []
    for i in range(n):
        rows.append(
            {
                "record_id": f"r{i:05d}",
                "source": "src",
                "text": f"text {i}",
                "label": "pos" if i % 3 else "neg",
                "conversation_id": f"c{i // 4}" if i < 400 else None,
                "dup_cluster_id": f"d{(i - 400) // 3}" if 400 <= i < 550 else f"r{i:05d}",
                "content_hash": f"h{i:05d}",
            }
        )
    return frame(rows)


def expected_split(seed: int, key: str, ratios=(0.8, 0.1, 0.1)) -> str:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < ratios[0]:
        return "train"
    return "validation" if u < ratios[0] + ratios[1] else "test"


def splits_of(df: pl.DataFrame, column: str) -> pl.DataFrame:
    return df.group_by(column).agg(pl.col("split").n_unique().alias("n"))


def test_ratios_roughly_honored_and_groups_never_cross() -> None:
    df = synthetic()
    result = split(df.lazy(), recipe("classification", seed=1))
    kept = result.kept
    assert result.rows_in == 2000 and result.rejected.is_empty()
    counts = result.stats["records"]
    assert sum(counts.values()) == 2000
    assert counts == dict(kept.group_by("split").len().iter_rows())
    assert abs(counts["train"] / 2000 - 0.8) < 0.04
    assert abs(counts["validation"] / 2000 - 0.1) < 0.03
    assert abs(counts["test"] / 2000 - 0.1) < 0.03
    # 100 conversations + 50 duplicate clusters + 1450 singletons.
    assert sum(result.stats["groups"].values()) == 1600
    assert result.stats["groups_crossing_splits"] == 0
    assert splits_of(kept.filter(pl.col("conversation_id").is_not_null()), "conversation_id")["n"].max() == 1
    assert splits_of(kept, "dup_cluster_id")["n"].max() == 1
    assert leakage_report(kept) == {
        "group_keys": 0,
        "conversation_ids": 0,
        "dup_cluster_ids": 0,
        "content_hashes": 0,
    }
    labels = result.stats["labels"]
    assert sum(sum(v.values()) for v in labels.values()) == 2000
    assert labels["test"] == dict(
        kept.filter(pl.col("split") == "test").group_by("label").len().sort("label").iter_rows()
    )


SHARED = frozenset({"src"})


def test_assignment_follows_the_documented_hash() -> None:
    df = frame(
        [
            {"record_id": "a", "source": "src", "text": "t", "conversation_id": "conv1"},
            {"record_id": "b", "source": "src", "text": "t", "dup_cluster_id": "clu7"},
            {"record_id": "c", "source": "src", "text": "t"},
        ]
    )
    result = split(df.lazy(), recipe(seed=42), shared_sources=SHARED)
    got = dict(zip(result.kept["record_id"], result.kept["split"], strict=True))
    assert got == {
        "a": expected_split(42, "conv1"),
        "b": expected_split(42, "clu7"),
        "c": expected_split(42, "c"),
    }


def test_output_sorted_deterministic_and_stable_when_data_is_added() -> None:
    df = synthetic(600)
    cfg = recipe(seed=5)
    first = split(df.lazy(), cfg, shared_sources=SHARED)
    shuffled = split(df.sample(fraction=1.0, shuffle=True, seed=3).lazy(), cfg, shared_sources=SHARED)
    assert first.kept.equals(shuffled.kept)
    assert first.stats == shuffled.stats
    assert first.kept.equals(first.kept.sort("split", "record_id"))

    more = split(synthetic(900).lazy(), cfg, shared_sources=SHARED).kept
    before = dict(zip(first.kept["record_id"], first.kept["split"], strict=True))
    after = dict(zip(more["record_id"], more["split"], strict=True))
    assert all(after[rid] == s for rid, s in before.items())

    other_seed = split(df.lazy(), recipe(seed=6), shared_sources=SHARED).kept.sort("record_id")
    assert not other_seed["split"].equals(first.kept.sort("record_id")["split"])


def test_cross_linked_groups_are_merged() -> None:
    # c1 and c2 share a near-duplicate cluster; x shares a content hash with c2's record.
    rows = [
        {"record_id": "a", "text": "t", "conversation_id": "c1", "dup_cluster_id": "k"},
        {"record_id": "b", "text": "t", "conversation_id": "c2", "dup_cluster_id": "k"},
        {"record_id": "c", "text": "t", "conversation_id": "c2", "dup_cluster_id": "c"},
        {"record_id": "x", "text": "t", "dup_cluster_id": "x", "content_hash": "h"},
        {"record_id": "y", "text": "t", "conversation_id": "c2", "content_hash": "h"},
    ]
    rows = [{**r, "source": "src"} for r in rows]
    for seed in range(20):
        result = split(frame(rows).lazy(), recipe(seed=seed), shared_sources=SHARED)
        assert result.kept["split"].n_unique() == 1
        # The merged group is keyed by its smallest member key, "c1".
        assert result.kept["split"][0] == expected_split(seed, "c1")
        assert result.stats["merged_groups"] == 1
        assert result.stats["groups"] == {
            s: (1 if s == expected_split(seed, "c1") else 0) for s in ("train", "validation", "test")
        }


@pytest.mark.parametrize(
    ("kind", "rows", "missing"),
    [
        (
            "chat_sft",
            [
                {"record_id": "ok", "messages": [{"role": "user", "content": "x"}]},
                {"record_id": "bad1", "messages": []},
                {"record_id": "bad2", "messages": None},
            ],
            {"bad1": "messages", "bad2": "messages"},
        ),
        (
            "classification",
            [
                {"record_id": "ok", "text": "good", "label": "pos"},
                {"record_id": "bad1", "text": "  ", "label": "pos"},
                {"record_id": "bad2", "text": None, "label": None},
            ],
            {"bad1": "text", "bad2": "text,label"},
        ),
        (
            "preference",
            [
                {"record_id": "ok", "prompt": "p", "chosen": "c", "rejected": "r"},
                {"record_id": "bad1", "prompt": "p", "chosen": "", "rejected": "r"},
                {"record_id": "bad2", "prompt": "p", "chosen": "c", "rejected": None},
            ],
            {"bad1": "chosen", "bad2": "rejected"},
        ),
    ],
)
def test_incomplete_examples_are_rejected(kind: str, rows: list[dict], missing: dict) -> None:
    result = split(frame(rows).lazy(), recipe(kind))
    assert result.kept["record_id"].to_list() == ["ok"]
    rej = result.rejected
    assert rej["record_id"].to_list() == ["bad1", "bad2"]
    assert set(rej["rule"]) == {"incomplete_example"} and set(rej["stage"]) == {"split"}
    assert dict(zip(rej["record_id"], rej["detail"], strict=True)) == missing
    assert result.rows_in == result.rows_kept + result.rows_rejected


def test_max_records_keeps_whole_groups_within_budget() -> None:
    df = synthetic()
    result = split(df.lazy(), recipe(seed=2, max_records=1000))
    kept, rej = result.kept, result.rejected
    assert kept.height <= 1000 and kept.height >= 990  # groups are at most 4 records
    assert kept.height + rej.height == 2000
    assert set(rej["rule"]) == {"size_target"}
    assert rej["score"].min() > 1000
    # No group is split between kept and rejected.
    for column in ("conversation_id", "dup_cluster_id"):
        kept_keys = set(kept[column].drop_nulls())
        assert kept_keys.isdisjoint(set(rej[column].drop_nulls()))
    # Sampling is independent of assignment: every split still gets its share.
    assert all(n > 50 for s, n in result.stats["records"].items() if s != "train")
    assert abs(result.stats["records"]["train"] / kept.height - 0.8) < 0.05
    # Deterministic.
    assert split(df.lazy(), recipe(seed=2, max_records=1000)).kept.equals(kept)


def test_max_records_not_reached_rejects_nothing() -> None:
    result = split(synthetic(100).lazy(), recipe(max_records=100))
    assert result.rejected.is_empty() and result.kept.height == 100


def test_zero_ratio_split_stays_empty() -> None:
    result = split(synthetic(500).lazy(), recipe(ratios={"train": 0.5, "validation": 0.5, "test": 0.0}))
    assert result.stats["records"]["test"] == 0
    assert result.stats["records"]["train"] > 0 and result.stats["records"]["validation"] > 0


def test_leakage_report_counts_values_in_several_splits() -> None:
    df = frame(
        [
            {"record_id": "1", "conversation_id": "c", "dup_cluster_id": "1", "content_hash": "h1", "split": "train"},
            {"record_id": "2", "conversation_id": "c", "dup_cluster_id": "2", "content_hash": "h2", "split": "test"},
            {"record_id": "3", "dup_cluster_id": "d", "content_hash": "h1", "split": "validation"},
            {"record_id": "4", "dup_cluster_id": "d", "content_hash": "h4", "split": "train"},
            {"record_id": "5", "dup_cluster_id": "e", "content_hash": None, "split": "train"},
            {"record_id": "6", "dup_cluster_id": "e", "content_hash": None, "split": "train"},
        ]
    )
    assert leakage_report(df) == {
        "group_keys": 2,  # c and d
        "conversation_ids": 1,
        "dup_cluster_ids": 1,  # d
        "content_hashes": 1,  # h1
    }


@pytest.mark.parametrize("kind", ["pretraining", "classification"])
def test_spilled_output_is_the_sorted_output_one_split_at_a_time(tmp_path, kind, monkeypatch):
    """With a spill directory the split is written one file per split (rows already in id
    order, so no sorted copy of the frame) and ``kept`` scans them: the same rows, order,
    rejects and stats as the in-memory result."""
    from ftdata_pipeline.stages.split import stage

    df = synthetic(700).sample(fraction=1.0, shuffle=True, seed=1)
    cfg = recipe(kind, seed=5)
    eager = split(df.lazy(), cfg, shared_sources=SHARED)
    spilled = split(df.lazy(), cfg, shared_sources=SHARED, spill=tmp_path / "a")
    assert isinstance(spilled.kept, pl.LazyFrame)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "test.parquet", "train.parquet", "validation.parquet"]
    assert spilled.kept.collect().equals(eager.kept)
    assert spilled.rows_out == eager.kept.height
    assert spilled.rejected.equals(eager.rejected) and spilled.stats == eager.stats

    # rows out of id order are sorted one split at a time, to the same result
    real = stage.conform
    monkeypatch.setattr(stage, "conform", lambda f, *a: real(f, *a).reverse()
                        if isinstance(f, pl.DataFrame) and "split" in f.columns else real(f, *a))
    reordered = split(df.lazy(), cfg, shared_sources=SHARED, spill=tmp_path / "b")
    assert reordered.kept.collect().equals(eager.kept)


def _every_field(n: int) -> pl.DataFrame:
    """n records with every content field filled, scores of earlier stages, a few incomplete
    records, repeated and near-duplicate inputs, in no particular order."""
    rows = []
    for i in range(n):
        topic = f"topic {i % 37} " + "word " * (i % 11)
        rows.append({
            "record_id": f"r{i:04d}", "source": "src", "source_key": str(i),
            "conversation_id": f"c{i // 3}" if i % 5 == 0 else None,
            "text": None if i % 97 == 0 else f"{topic} ticket text {i % 200} " + "more " * (i % 35),
            "system": "You are a support assistant." if i % 2 else None,
            "messages": [] if i % 89 == 0 else [
                {"role": "user", "content": f"{topic} question {i % 150}"},
                {"role": "assistant", "content": f"answer {i} " + "long " * (i % 40)},
            ] * (1 + i % 2),
            "prompt": f"{topic} prompt {i % 120}", "response": f"response {i}",
            "chosen": f"chosen {i} " + "good " * (i % 30), "rejected": None if i % 83 == 0 else f"rejected {i}",
            "label": "pos" if i % 3 else "neg",
            "dup_cluster_id": f"d{i // 4}" if i % 7 == 0 else f"r{i:04d}",
            "content_hash": f"h{i % 450:04d}",
            "q_lang": "en" if i % 4 else "de", "q_quality": i / n, "q_words": i % 50,
        })
    return records.conform(pl.DataFrame(rows, infer_schema_length=None)).sample(
        fraction=1.0, shuffle=True, seed=3)


@pytest.mark.parametrize("kind", ["pretraining", "classification", "chat_sft", "preference"])
@pytest.mark.parametrize("policy", ["truncate", "drop"])
def test_carried_columns_are_read_back_into_the_same_output(tmp_path, kind, policy, monkeypatch):
    """With a spill directory the columns no rule reads (other kinds' content fields, earlier
    stages' scores) are not held while the split is decided, only read back from the input as
    the output is written: kept rows, rejects (incomplete, over the token limit, over the size
    target) and stats equal the in-memory result, for every kind and token policy."""
    from ftdata_pipeline.stages.split import stage

    df = _every_field(600)
    cfg = RecipeConfig.model_validate({
        **recipe(kind).model_dump(exclude_none=True),
        "split": {"seed": 3, "max_records": 120, "stratify_by": ["language"],
                  "group_near_duplicates": 0.6},
        "tokens": {"max_tokens": 45, "policy": policy},
    })
    carried = stage.carried_columns(df.schema, kind)
    assert {"q_quality", "q_words"} <= set(carried) and "q_lang" not in carried
    assert "response" in carried and "text" not in carried or kind in ("chat_sft", "preference")

    seen = {}
    real = stage.apply_token_limit
    monkeypatch.setattr(stage, "apply_token_limit",
                        lambda frame, *a: seen.setdefault("frame", frame) is None or real(frame, *a))
    eager = split(df.lazy(), cfg)
    seen.clear()
    spilled = split(df.lazy(), cfg, spill=tmp_path / "out")
    # what the rules saw: no values of a carried column
    assert all(seen["frame"][c].null_count() == seen["frame"].height for c in carried)

    rules = eager.rejected["rule"].unique().sort().to_list()
    assert rules == ["incomplete_example", "over_max_tokens", "size_target"] or (
        rules == ["incomplete_example", "size_target"] and policy == "truncate")
    assert policy == "drop" or kind not in ("pretraining", "chat_sft") or (
        eager.stats["tokens"]["truncated"] > 0)
    assert spilled.kept.collect().equals(eager.kept)
    assert spilled.rejected.equals(eager.rejected)
    assert spilled.stats == eager.stats


def _buffer_bytes(series: pl.Series) -> int:
    """Bytes of the buffers a column holds on to: a filtered string column shares the
    buffers of every row it was taken from, which its values do not show."""
    return series.to_arrow(compat_level=pl.CompatLevel.newest()).nbytes


def _strings(series: pl.Series) -> set[str]:
    """Every string a column holds, in lists and structs too."""
    dtype = series.dtype
    if dtype == pl.String:
        return set(series.drop_nulls().to_list())
    if isinstance(dtype, pl.List):
        return _strings(series.explode())
    if isinstance(dtype, pl.Struct):
        return set().union(*(_strings(series.struct.field(f.name)) for f in dtype.fields))
    return set()


@pytest.mark.parametrize("kind", ["pretraining", "chat_sft"])
def test_content_is_put_aside_while_the_similarity_searches_run(tmp_path, kind, monkeypatch):
    """With a spill directory the kind's content is on disk while the grouping's and the leak
    report's similarity searches run: no Polars frame or column alive then holds a text of
    a record being split, and the rejects made before (incomplete, over the token limit)
    hold their own texts' buffers, not the input's. The result equals the in-memory one."""
    import gc

    from ftdata_pipeline.stages.base import detached
    from ftdata_pipeline.stages.split import groups, leakage

    source = tmp_path / "labeled.parquet"  # as the stage reads it: a scan of a file
    _every_field(3000).write_parquet(source)
    content = "text" if kind == "pretraining" else "messages"
    input_bytes = _buffer_bytes(pl.read_parquet(source, columns=[content])[content])
    cfg = RecipeConfig.model_validate({
        **recipe(kind).model_dump(exclude_none=True),
        "split": {"seed": 3, "group_near_duplicates": 0.6},
        "tokens": {"max_tokens": 45, "policy": "drop"},
    })
    eager = split(pl.scan_parquet(source), cfg)
    kept = _strings(eager.kept[content]) - _strings(eager.rejected[content])
    assert len(kept) > 100
    # what the rejects made before the searches hold of their own (in buffers of their own)
    own = _buffer_bytes(detached(eager.rejected.filter(pl.col("rule") != "size_target"))[content])
    eager.kept.write_parquet(tmp_path / "kept.parquet")
    eager.rejected.write_parquet(tmp_path / "rejected.parquet")
    stats = eager.stats
    del eager  # nothing of the test's own holds a text while the stage runs

    held, buffers = [], []
    # frames other tests left alive are not the stage's
    earlier = {id(obj) for obj in gc.get_objects() if isinstance(obj, (pl.DataFrame, pl.Series))}

    def spy(real):
        def search(*args, **kwargs):
            alive, size = set(), 0
            for obj in gc.get_objects():
                if id(obj) in earlier:
                    continue
                columns = (obj.get_columns() if isinstance(obj, pl.DataFrame)
                           else [obj] if isinstance(obj, pl.Series) else [])
                for column in columns:
                    alive.update(_strings(column))
                    if column.name == content and column.null_count() < column.len():
                        size += _buffer_bytes(column)  # (a placeholder holds no text)
            held.append(alive & kept)
            buffers.append(size)
            return real(*args, **kwargs)
        return search

    monkeypatch.setattr(groups, "similar_pairs", spy(groups.similar_pairs))
    monkeypatch.setattr(leakage, "similar_pairs", spy(leakage.similar_pairs))
    spilled = split(pl.scan_parquet(source), cfg, spill=tmp_path / "out")
    assert len(held) == 2 and held == [set(), set()], [len(h) for h in held]
    assert max(buffers) < own + 0.05 * input_bytes, (buffers, own, input_bytes)
    assert spilled.kept.collect().equals(pl.read_parquet(tmp_path / "kept.parquet"))
    assert spilled.rejected.equals(pl.read_parquet(tmp_path / "rejected.parquet"))
    assert spilled.stats == stats
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "test.parquet", "train.parquet", "validation.parquet"]

    # without a spill directory the content stays in the frame (the searches see it there)
    held.clear()
    split(pl.scan_parquet(source), cfg)
    assert len(held) == 2 and all(held), [len(h) for h in held]


def test_a_search_reads_columns_beside_the_content_put_aside(tmp_path):
    """The searches' texts are read with every column their expressions name, content or not:
    a distillation dataset's input expression names ``text``, which is not among its
    content columns (``messages``, ``system``); reading back the content alone failed."""
    df = _every_field(300)
    cfg = RecipeConfig.model_validate({
        **recipe("distillation").model_dump(exclude_none=True),
        "split": {"seed": 3, "group_near_duplicates": 0.6},
    })
    spilled = split(df.lazy(), cfg, spill=tmp_path / "out")
    assert spilled.kept.collect().height + spilled.rejected.height == df.height
    assert spilled.stats["near_duplicates"]["threshold"] > 0
