"""Planted leakage (exact, near-duplicate, prompt-level) fails the split checks, and the
stratified group split removes it; two datasets over one source agree on every record's split."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from ftdata_pipeline import records
from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.orchestration.split_checks import (
    CROSS_DATASET_SPLITS,
    NEAR_DUPLICATE_LEAKAGE,
    PROMPT_LEAKAGE,
    SPLIT_RATIOS,
    evaluate,
)
from ftdata_pipeline.stages.split import cross_dataset_conflicts, leakage_report, split
from ftdata_pipeline.stages.split.leakage import near_duplicate_leaks, prompt_leaks
from ftdata_pipeline.stages.split.similarity import _left_counts, shingle_matrix, similar_pairs

WORDS = (
    "account invoice sync folder upload password router camera refund order delivery screen "
    "firmware backup storage login device laptop phone error report window button settings "
    "plan upgrade billing card network cable printer mail calendar share photo video music"
).split()
LABELS = ("billing", "technical", "access")


def recipe(kind: str = "classification", **split_cfg) -> RecipeConfig:
    data = {
        "name": f"ds_{kind}",
        "kind": kind,
        "sources": ["tickets"],
        "exports": {"formats": [{"classification": "classification_jsonl", "chat_sft": "openai_chat",
                                 "pretraining": "trl_text", "distillation": "trl_messages"}[kind]]},
        "split": split_cfg,
    }
    if kind == "classification":
        data["label"] = {"method": "rules", "rules": [{"label": "billing", "pattern": "x"}],
                         "label_set": list(LABELS)}
    if kind == "distillation":
        data["label"] = {"method": "teacher", "teacher": {"outputs": "teacher_outputs"}}
    return RecipeConfig.model_validate(data)


def sentence(rng: random.Random, n: int = 24) -> list[str]:
    return [rng.choice(WORDS) for _ in range(n)]


def tickets(n: int = 600, near_pairs: int = 40, seed: int = 0) -> pl.DataFrame:
    """n tickets of random words, 3 unbalanced labels, with ``near_pairs`` planted pairs whose
    texts differ in 2 of 24 words (Jaccard of 3-shingles 16/28 = 0.57: under a 0.8 dedup threshold)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = sentence(rng)
        rows.append({"source_key": f"T{i:04d}", "words": words,
                     "label": LABELS[0] if i % 10 < 6 else LABELS[1 + i % 2]})
    for p in range(near_pairs):
        words = list(rows[p]["words"])
        for pos in (6, 15):
            words[pos] = "changed" + str(p)
        rows.append({"source_key": f"N{p:04d}", "words": words, "label": rows[p]["label"]})
    return records.conform(
        pl.DataFrame(
            {
                "record_id": [records.stable_id("tickets", r["source_key"]) for r in rows],
                "source": ["tickets"] * len(rows),
                "source_key": [r["source_key"] for r in rows],
                "text": [" ".join(r["words"]) for r in rows],
                "label": [r["label"] for r in rows],
                "content_hash": [f"h{r['source_key']}" for r in rows],
            }
        )
    )


def names(outcomes) -> dict:
    return {o.name: o for o in outcomes}


def test_jaccard_of_shingles_matches_hand_count() -> None:
    a = "the cat sat on the mat"   # shingles: the cat sat / cat sat on / sat on the / on the mat
    b = "the cat sat on a mat"     # the cat sat / cat sat on / sat on a / on a mat
    pairs = similar_pairs(shingle_matrix([a, b, "unrelated words here"], 3), 0.1)
    assert pairs.i.tolist() == [0] and pairs.j.tolist() == [1]
    assert pairs.sim[0] == pytest.approx(2 / 6)


def templated(seed: int, n: int = 300, variable: int = 12) -> list[str]:
    """Texts drawn from one template and a small vocabulary, of every length from empty up,
    with exact copies and texts shorter than a shingle."""
    rng = np.random.default_rng(seed)
    common = "thank you for contacting us about your order and the delivery".split()
    texts = []
    for _ in range(n):
        words = list(common[: rng.integers(0, len(common))])
        words += [f"w{v}" for v in rng.integers(0, 40, size=rng.integers(0, variable))]
        rng.shuffle(words)
        texts.append(" ".join(words))
    return texts + texts[:5] + ["", "one", "one two"]


def dense_jaccard(x) -> np.ndarray:
    """Every pair's Jaccard, from the dense matrix: what the searches are compared with."""
    dense = x.toarray() > 0
    inter = dense.astype(np.int64) @ dense.T.astype(np.int64)
    size = dense.sum(axis=1)
    union = size[:, None] + size[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def as_set(pairs) -> set[tuple[int, int]]:
    return set(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True))


@pytest.mark.parametrize(
    ("threshold", "seed", "variable"),
    [(0.2, 7, 12), (0.5, 7, 12), (0.75, 7, 12), (1.0, 7, 12),
     # longer texts: prefixes ending at every rank, sizes where threshold x size is whole
     (0.3, 8, 40), (0.5, 9, 40), (0.6, 10, 40), (2 / 3, 11, 30), (0.7, 12, 40), (0.9, 13, 60)],
)
def test_similar_pairs_are_every_pair_at_the_threshold(threshold, seed, variable) -> None:
    """The prefix-filtered, bounded and verified pairs are every pair at or above the
    threshold, as a dense all-pairs count finds them (templated texts, short ones, empty
    ones, exact duplicates), within one set and between two."""
    texts = templated(seed, variable=variable)
    x = shingle_matrix(texts, 2)
    jac = dense_jaccard(x)
    expected = {(i, j) for i, j in zip(*np.nonzero(jac >= threshold - 1e-6)) if i < j}
    got = similar_pairs(x, threshold)
    assert got.exact
    assert set(zip(got.i.tolist(), got.j.tolist(), strict=True)) == expected
    assert np.allclose(got.sim, jac[got.i, got.j])
    rows, cols = np.arange(0, 150), np.arange(150, len(texts))
    expected_between = {(i, j) for i in rows for j in cols if jac[i, j] >= threshold - 1e-6}
    got = similar_pairs(x, threshold, rows=rows, cols=cols)
    assert set(zip(got.i.tolist(), got.j.tolist(), strict=True)) == expected_between
    # overlapping sets (the same input on both sides pairs with itself)
    rows, cols = np.arange(0, 200), np.arange(100, len(texts))
    expected_overlap = {(i, j) for i in rows for j in cols if jac[i, j] >= threshold - 1e-6}
    got = similar_pairs(x, threshold, rows=rows, cols=cols)
    assert set(zip(got.i.tolist(), got.j.tolist(), strict=True)) == expected_overlap


def test_similar_pairs_do_not_depend_on_the_block_size(monkeypatch) -> None:
    """Blocks cut by the candidate budget (down to one row each) give the same pairs."""
    from ftdata_pipeline.stages.split import similarity

    x = shingle_matrix(templated(4, variable=30), 2)
    one_block = similar_pairs(x, 0.5)
    rows, cols = np.arange(0, 120), np.arange(120, x.shape[0])
    one_between = similar_pairs(x, 0.5, rows=rows, cols=cols)
    for budget, most in ((1, 2048), (40, 7), (400, 2048)):
        monkeypatch.setattr(similarity, "_BLOCK_PAIRS", budget)
        monkeypatch.setattr(similarity, "_BLOCK", most)
        assert len(list(similarity._blocks(np.ones(50) * 30))) > 1
        for got, want in ((similar_pairs(x, 0.5), one_block),
                          (similar_pairs(x, 0.5, rows=rows, cols=cols), one_between)):
            assert np.array_equal(got.i, want.i) and np.array_equal(got.j, want.j)
            assert np.array_equal(got.sim, want.sim)


def slotted(seed: int, n: int = 600, templates: int = 6, words: int = 20) -> list[str]:
    """Ticket-like texts: a few fixed templates with one to four slots filled at random, so
    each template's texts are mutual near duplicates and LSH buckets run to hundreds."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        template = rng.integers(templates)
        text = [f"t{template}w{w}" for w in range(words)]
        for pos in rng.integers(0, words, size=rng.integers(1, 5)):
            text[pos] = f"s{rng.integers(300)}"
        out.append(" ".join(text))
    return out


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_lsh_search_returns_true_pairs_and_connects_what_the_exact_search_does(threshold) -> None:
    """Past the exact budget: every pair returned reaches the threshold with its exact
    Jaccard, almost every exact pair's inputs end up connected (what grouping needs), the
    same pairs on every run, and between two overlapping sets the shared inputs pair with
    themselves as in the exact search, and almost every input with a neighbour has one."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from ftdata_pipeline.stages.split.similarity import _BAND_RECALL

    x = shingle_matrix(slotted(21) + templated(21, n=300, variable=8), 2)
    jac = dense_jaccard(x)
    exact = similar_pairs(x, threshold)
    lsh = similar_pairs(x, threshold, exact_work=0)
    assert exact.exact and not lsh.exact
    assert len(lsh) > 0 and as_set(lsh) <= as_set(exact)
    assert np.allclose(lsh.sim, jac[lsh.i, lsh.j])
    n = x.shape[0]
    graph = coo_matrix((np.ones(len(lsh)), (lsh.i, lsh.j)), shape=(n, n))
    component = connected_components(graph, directed=False)[1]
    assert np.mean(component[exact.i] == component[exact.j]) >= 0.99
    again = similar_pairs(x, threshold, exact_work=0)
    assert np.array_equal(again.i, lsh.i) and np.array_equal(again.j, lsh.j)
    rows, cols = np.arange(0, 600), np.arange(400, n)
    between = similar_pairs(x, threshold, rows=rows, cols=cols, exact_work=0)
    want = as_set(similar_pairs(x, threshold, rows=rows, cols=cols))
    assert not between.exact and as_set(between) <= want
    shared = [i for i in range(400, 600) if x[i].nnz]
    assert {(i, i) for i in shared} <= as_set(between)
    # what the leakage check reports per held-out input: whether it has a train neighbour
    have = {i for i, _ in want}
    found = set(between.i.tolist())
    # (a pair exactly at the threshold shares a band with probability _BAND_RECALL)
    assert len(found & have) >= _BAND_RECALL * len(have)


@pytest.mark.parametrize("threshold", [0.2, 0.3, 0.5, 0.6, 0.8, 0.9, 1.0])
def test_lsh_bands_find_a_pair_at_the_threshold_with_high_probability(threshold) -> None:
    """The most rows per band (fewest false candidates) that still keep recall at the threshold."""
    from ftdata_pipeline.stages.split.similarity import _BAND_RECALL, _PERMS, band_rows

    def recall(r: int) -> float:
        return 1 - (1 - threshold**r) ** (_PERMS // r)

    r = band_rows(threshold)
    assert recall(r) >= _BAND_RECALL
    assert r == _PERMS or recall(r + 1) < _BAND_RECALL


def test_near_duplicate_leaks_count_every_record_pair_of_repeated_inputs() -> None:
    """Computed once per distinct input, the report still counts record pairs: inputs repeated
    across and within splits give the pairs, neighbours and examples of a record-by-record
    count."""
    rng = np.random.default_rng(3)
    distinct = templated(5, n=60, variable=8)
    texts = [distinct[int(k)] for k in rng.integers(0, len(distinct), size=400)]
    splits = rng.choice(["train", "validation", "test"], size=len(texts), p=[0.6, 0.2, 0.2])
    df = pl.DataFrame({"record_id": [f"r{k:04d}" for k in range(len(texts))], "text": texts,
                       "split": splits.tolist()})
    cfg = recipe().split.leakage
    report = near_duplicate_leaks(df, "classification", cfg)

    x = shingle_matrix(texts, cfg.shingle_words)
    dense = (x.toarray() > 0).astype(np.int64)
    inter = dense @ dense.T
    size = dense.sum(axis=1)
    union = size[:, None] + size[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(union > 0, inter / union, 0.0)
    held = [k for k, s in enumerate(splits) if s != "train"]
    train = [k for k, s in enumerate(splits) if s == "train"]
    pairs = [(jac[i, j], i, j) for i in held for j in train
             if jac[i, j] >= cfg.near_duplicate_threshold - 1e-6]
    assert len(pairs) > 100
    assert report["pairs"] == len(pairs)
    for name in ("validation", "test"):
        assert report["eval_with_train_neighbour"][name] == len(
            {i for _, i, _ in pairs if splits[i] == name})
    best = sorted(pairs, key=lambda p: (-p[0], p[1], p[2]))[:10]
    assert [(e["eval"], e["train"]) for e in report["examples"]] == [
        (f"r{i:04d}", f"r{j:04d}") for _, i, j in best]
    assert [e["jaccard"] for e in report["examples"]] == [round(float(s), 3) for s, _, _ in best]


@pytest.mark.parametrize("search", ["exact", "lsh"])
def test_planted_near_duplicates_fail_the_check_and_grouping_removes_them(
    search, monkeypatch
) -> None:
    """Found by either search: every pair (small data), or LSH candidates (past the budget)."""
    from ftdata_pipeline.stages.split import similarity

    if search == "lsh":
        monkeypatch.setattr(similarity, "_EXACT_WORK", 0)
    df = tickets()
    leaky = split(df.lazy(), recipe(group_near_duplicates=None, group_prompts=False))
    near = leaky.stats["near_duplicates"]
    assert near["pairs"] > 0 and sum(near["eval_with_train_neighbour"].values()) > 0
    assert not names(evaluate(recipe(), leaky.stats))[
        NEAR_DUPLICATE_LEAKAGE].passed
    # the planted pairs are what leaks: every reported pair is one of them
    planted = {records.stable_id("tickets", f"N{p:04d}") for p in range(40)}
    assert all(e["eval"] in planted or e["train"] in planted for e in near["examples"])

    assert near["search"] == search
    # the check and the card say when the count is a lower bound
    from ftdata_pipeline.governance.card_split import leakage_section

    outcome = names(evaluate(recipe(), leaky.stats))[NEAR_DUPLICATE_LEAKAGE]
    assert ("LSH" in outcome.description) == (search == "lsh")
    assert outcome.metadata["search"] == search
    assert ("LSH" in "\n".join(leakage_section(leaky.stats))) == (search == "lsh")
    grouped = split(df.lazy(), recipe())
    assert grouped.stats["grouping"]["near_duplicate_search"] == search
    assert grouped.stats["near_duplicates"]["pairs"] == 0
    assert names(evaluate(recipe(), grouped.stats))[NEAR_DUPLICATE_LEAKAGE].passed
    # every planted pair is merged and shares a split; LSH promises each pair at the
    # threshold a shared band with probability >= _BAND_RECALL (0.95), so nearly all
    found = 40 if search == "exact" else int(np.ceil(similarity._BAND_RECALL * 40))
    assert grouped.stats["grouping"]["merged"] >= found
    by_key = dict(zip(grouped.kept["source_key"], grouped.kept["split"], strict=True))
    assert sum(by_key[f"N{p:04d}"] == by_key[f"T{p:04d}"] for p in range(40)) >= found


def test_planted_exact_duplicates_across_splits_are_found_and_grouped() -> None:
    df = tickets(near_pairs=0)
    # ten tickets re-sent verbatim: same content hash, different record
    copies = df.head(10).with_columns(
        (pl.col("source_key") + "-copy").alias("source_key"),
        (pl.col("record_id") + "c").alias("record_id"),
    )
    df = pl.concat([df, copies])
    result = split(df.lazy(), recipe())
    assert leakage_report(result.kept)["content_hashes"] == 0
    # the same frame with the copies' splits moved elsewhere: the report catches it
    moved = result.kept.with_columns(
        pl.when(pl.col("source_key").str.ends_with("-copy"))
        .then(pl.when(pl.col("split") == "train").then(pl.lit("test")).otherwise(pl.lit("train")))
        .otherwise(pl.col("split")).alias("split")
    )
    assert leakage_report(moved)["content_hashes"] == 10
    assert near_duplicate_leaks(moved, "classification", recipe().split.leakage)["pairs"] > 0


def chats(n: int = 300) -> pl.DataFrame:
    """n conversations; 30 open with "How do I cancel?" and get different answers."""
    rng = random.Random(1)
    rows = []
    for i in range(n):
        first = "How do I cancel?" if i < 30 else " ".join(sentence(rng, 12))
        rows.append({
            "record_id": f"c{i:04d}", "source": "chats", "source_key": f"c{i:04d}",
            "conversation_id": f"conv{i:04d}",
            "messages": [
                {"role": "user", "content": first if i % 2 else first.lower().rstrip("?")},
                {"role": "assistant", "content": " ".join(sentence(rng, 15))},
            ],
        })
    return records.conform(pl.DataFrame(rows))


def test_planted_prompt_leakage_fails_and_prompt_grouping_removes_it() -> None:
    cfg = recipe("chat_sft", group_prompts=False, group_near_duplicates=None)
    leaky = split(chats().lazy(), cfg)
    found = leaky.stats["prompt_leakage"]
    assert found["prompts"] == 1 and found["records"] == 30
    outcome = names(evaluate(cfg, leaky.stats))[PROMPT_LEAKAGE]
    assert not outcome.passed and outcome.blocking  # prompts: block is the default

    grouped = split(chats().lazy(), recipe("chat_sft"))
    assert prompt_leaks(grouped.kept, "chat_sft")["prompts"] == 0
    assert grouped.kept.filter(pl.col("record_id") < "c0030")["split"].n_unique() == 1


def distilled(chat: pl.DataFrame) -> pl.DataFrame:
    """The same conversations as distillation examples: the labeled stage keeps the prompt
    record's ``prompt`` beside the messages it builds, and leaves ``text`` empty."""
    first = pl.col("messages").list.first().struct.field("content")
    return records.conform(chat.with_columns(first.alias("prompt"), pl.lit(None, pl.String).alias("text")))


@pytest.mark.parametrize("split_cfg", [{}, {"group_prompts": False, "group_near_duplicates": None}])
def test_a_distillation_dataset_is_split_and_measured_as_the_sft_examples_it_exports(split_cfg):
    """Distilled examples are chat examples: grouped by their user turns, their prompt leaks
    and near duplicates found, their tokens counted from the messages (not from ``text``,
    which a distilled example does not have: read as empty, every input was one group)."""
    chat = split(chats().lazy(), recipe("chat_sft", **split_cfg))
    dist = split(distilled(chats()).lazy(), recipe("distillation", **split_cfg))
    keys = ["record_id", "split", "n_tokens", "n_tokens_seq"]
    assert dist.kept.select(keys).equals(chat.kept.select(keys))
    assert dist.kept["n_tokens"].min() > 0
    assert dist.kept["split"].n_unique() == 3
    for report in ("prompt_leakage", "near_duplicates", "tokens"):
        assert dist.stats[report] == chat.stats[report], report
    if split_cfg:  # the planted prompt leak is seen in the distillation dataset too
        assert dist.stats["prompt_leakage"]["records"] == 30


def test_stratified_split_honours_ratios_per_label() -> None:
    cfg = recipe(ratios={"train": 0.8, "validation": 0.1, "test": 0.1})
    result = split(tickets(near_pairs=0).lazy(), cfg)
    kept = result.kept
    for label in LABELS:
        part = kept.filter(pl.col("label") == label)
        shares = part.group_by("split").len().with_columns(pl.col("len") / part.height)
        for split_name, share in shares.iter_rows():
            assert share == pytest.approx(cfg.split.ratios[split_name], abs=1.5 / part.height)
    assert result.stats["ratios"]["within_tolerance"]
    assert result.stats["ratios"]["max_deviation"] <= 0.005
    assert names(evaluate(cfg, result.stats))[SPLIT_RATIOS].passed


def test_ratio_check_flags_a_split_outside_tolerance() -> None:
    cfg = recipe(tolerance=0.01)
    stats = {"ratios": {"within_tolerance": False, "max_deviation": 0.024, "tolerance": 0.01,
                        "configured": {}, "actual": {}}}
    outcome = names(evaluate(cfg, stats))[SPLIT_RATIOS]
    assert not outcome.passed and not outcome.blocking


def test_similarity_groups_never_exceed_the_size_cap(monkeypatch) -> None:
    """Also with the links merged a few at a time (``_UNION_BATCH``): the same groups."""
    from ftdata_pipeline.stages.split import groups

    # templated texts: every one within Jaccard 0.5 of the next -> one chain without a cap
    rng = random.Random(3)
    base = sentence(rng, 30)
    rows = []
    for i in range(200):
        words = list(base)
        words[i % 30] = f"v{i}"
        rows.append({"record_id": f"t{i:03d}", "source": "tickets", "source_key": str(i),
                     "text": " ".join(words), "label": LABELS[i % 3]})
    result = split(records.conform(pl.DataFrame(rows)).lazy(), recipe(max_group_fraction=0.05))
    sizes = result.kept.group_by("split").len()
    assert sizes.height == 3  # not everything in one split
    assert result.stats["grouping"]["left_apart_by_size_cap"] > 0
    assert result.stats["grouping"]["merged"] > 0
    monkeypatch.setattr(groups, "_UNION_BATCH", 7)
    batched = split(records.conform(pl.DataFrame(rows)).lazy(), recipe(max_group_fraction=0.05))
    assert batched.kept.equals(result.kept) and batched.stats == result.stats


def test_two_datasets_over_one_source_agree_on_every_shared_record() -> None:
    df = tickets()
    shared = frozenset({"tickets"})
    # a stratified classification set and an unstratified pre-training set over the same
    # tickets, each with records the other lacks
    classification = split(df.filter(pl.col("source_key") > "T0100").lazy(), recipe(),
                           shared_sources=shared).kept
    pretraining = split(df.filter(pl.col("source_key") < "T0500").lazy(), recipe("pretraining"),
                        shared_sources=shared).kept
    joined = classification.join(pretraining, on=["source", "source_key"], suffix="_other")
    assert joined.height > 300
    assert (joined["split"] == joined["split_other"]).all()
    report = cross_dataset_conflicts(classification, {"pretraining": pretraining})
    assert report["pretraining"]["different_split"] == 0
    outcome = names(evaluate(recipe(), {"cross_dataset": report}))[CROSS_DATASET_SPLITS]
    assert outcome.passed


def test_cross_dataset_check_reports_train_in_one_test_in_another() -> None:
    df = tickets(near_pairs=0)
    shared = frozenset({"tickets"})
    a = split(df.lazy(), recipe(seed=1), shared_sources=shared).kept
    b = split(df.lazy(), recipe("pretraining", seed=2), shared_sources=shared).kept
    report = cross_dataset_conflicts(a, {"other": b})["other"]
    expected = a.join(b, on=["source", "source_key"]).filter(
        ((pl.col("split") == "train") & (pl.col("split_right") == "test"))
        | ((pl.col("split") == "test") & (pl.col("split_right") == "train"))
    ).height
    assert report["train_test"] == expected > 0
    outcome = names(evaluate(recipe(), {"cross_dataset": {"other": report}}))[CROSS_DATASET_SPLITS]
    assert not outcome.passed and not outcome.blocking  # cross_dataset: report by default
    blocking = recipe(leakage={"cross_dataset": "block"})
    assert names(evaluate(blocking, {"cross_dataset": {"other": report}}))[
        CROSS_DATASET_SPLITS].blocking


def test_unshared_sources_are_stratified_shared_ones_pinned() -> None:
    df = tickets(near_pairs=0)
    pinned = split(df.lazy(), recipe(), shared_sources=frozenset({"tickets"}))
    free = split(df.lazy(), recipe())
    assert pinned.stats["pinned_records"] == df.height and free.stats["pinned_records"] == 0
    # stratification makes the unpinned split exact; the pinned one is a hash (close, not exact)
    assert free.stats["ratios"]["max_deviation"] <= pinned.stats["ratios"]["max_deviation"]


def test_shared_source_grouping_keeps_near_duplicates_together_in_every_dataset() -> None:
    raw = tickets()  # the whole source, as read by every dataset
    shared = frozenset({"tickets"})
    # each dataset keeps a different subset (its own curation), over the same source rows
    first = raw.filter(~pl.col("source_key").is_in(["T0003", "N0007"]))
    second = raw.filter(pl.col("source_key") != "T0011")
    a = split(first.lazy(), recipe(), shared_sources=shared, shared_raw={"tickets": raw}).kept
    b = split(second.lazy(), recipe("pretraining"), shared_sources=shared,
              shared_raw={"tickets": raw}).kept
    joined = a.join(b, on=["source", "source_key"], suffix="_other")
    assert (joined["split"] == joined["split_other"]).all()
    for kept in (a, b):
        by_key = dict(zip(kept["source_key"], kept["split"], strict=True))
        together = [by_key[f"N{p:04d}"] == by_key[f"T{p:04d}"] for p in range(40)
                    if f"N{p:04d}" in by_key and f"T{p:04d}" in by_key]
        assert len(together) >= 38 and all(together)
    # without the source-level grouping, pinned near-duplicates fall where their hash says
    apart = split(first.lazy(), recipe(), shared_sources=shared).stats
    assert apart["near_duplicates"]["pairs"] > 0


def test_a_shared_source_is_grouped_alone_whatever_other_sources_a_dataset_reads() -> None:
    """Dataset A reads tickets and a mail source that copies 100 of them; dataset B reads the
    tickets only. Both pin the tickets: each ticket's split must be the same in both, though
    A's tickets have links into the mail source that B never sees."""
    raw = tickets(near_pairs=0)
    mail = raw.head(100).with_columns(
        pl.lit("mail").alias("source"),
        pl.format("M{}", pl.col("source_key")).alias("source_key"),
    ).with_columns(
        pl.col("source_key").map_elements(lambda k: records.stable_id("mail", k),
                                          return_dtype=pl.String).alias("record_id"),
        pl.format("hm{}", pl.col("source_key")).alias("content_hash"),
    )
    both = frozenset({"tickets", "mail"})
    a = split(pl.concat([raw, mail]).lazy(), recipe(), shared_sources=both,
              shared_raw={"tickets": raw, "mail": mail}).kept
    b = split(raw.lazy(), recipe("pretraining"), shared_sources=frozenset({"tickets"}),
              shared_raw={"tickets": raw}).kept
    joined = a.filter(pl.col("source") == "tickets").join(
        b, on=["source", "source_key"], suffix="_other")
    assert joined.height == raw.height
    assert (joined["split"] == joined["split_other"]).all()


def test_records_made_from_several_rows_follow_their_conversation_s_source_group() -> None:
    """A dataset of the source's rows (responses) and a dataset of records built from two rows
    each (preference pairs "R1>R2", no row of the source) pin every prompt alike, also where
    the source-level grouping merged near-duplicate prompts of different conversations."""
    rng = random.Random(3)
    prompts = [sentence(rng) for _ in range(200)]
    for i in range(60):  # conversation 100+i asks what i asks, one word changed
        prompts[100 + i] = list(prompts[i])
        prompts[100 + i][12] = f"other{i}"
    rows = [{"conversation_id": f"P{c:03d}", "source_key": f"P{c:03d}-R{r}",
             "prompt": " ".join(prompts[c]), "response": f"answer {r} to {c}"}
            for c in range(200) for r in (1, 2)]
    raw = records.conform(pl.DataFrame(rows).with_columns(
        pl.lit("answers").alias("source"),
        pl.col("source_key").map_elements(lambda k: records.stable_id("answers", k),
                                          return_dtype=pl.String).alias("record_id"),
    ))
    responses = raw.with_columns(pl.col("prompt").alias("text"))
    pairs = records.conform(
        raw.group_by("conversation_id").agg(pl.col("source_key").sort(), pl.col("prompt").first())
        .select(
            pl.lit("answers").alias("source"), "conversation_id",
            pl.col("source_key").list.join(">").alias("source_key"),
            pl.col("prompt").alias("text"),
        ).with_columns(
            pl.col("source_key").map_elements(lambda k: records.stable_id("answers", k),
                                              return_dtype=pl.String).alias("record_id"))
    )
    shared = frozenset({"answers"})
    a = split(responses.lazy(), recipe("pretraining"), shared_sources=shared,
              shared_raw={"answers": raw})
    b = split(pairs.lazy(), recipe("pretraining"), shared_sources=shared,
              shared_raw={"answers": raw})
    assert a.stats["pinned_records"] == raw.height and b.stats["pinned_records"] == 200
    by_prompt = a.kept.select("conversation_id", "split").unique().join(
        b.kept.select("conversation_id", pl.col("split").alias("pair_split")),
        on="conversation_id")
    assert by_prompt.height == 200
    assert (by_prompt["split"] == by_prompt["pair_split"]).all()


def _column_sets(m) -> list[tuple[int, ...]]:
    """The rows of each column, sorted: a matrix up to the order of its columns."""
    c = sp.csc_matrix(m)
    c.sort_indices()
    return sorted(tuple(c.indices[c.indptr[j]:c.indptr[j + 1]]) for j in range(c.shape[1]))


def test_shingle_matrix_holds_one_text_s_shingles_at_a_time(monkeypatch):
    """The matrix is built from each text's shingles as the text is reached (never every
    text's shingle strings at once), with alphabetical columns as before."""
    import weakref

    from ftdata_pipeline.stages.split import similarity

    class Shingles(list):
        pass

    alive: set[int] = set()
    most = [0]
    real = similarity.shingles

    def tracked(text, k):
        out = Shingles(real(text, k))
        alive.add(id(out))
        weakref.finalize(out, alive.discard, id(out))
        most[0] = max(most[0], len(alive))
        return out

    monkeypatch.setattr(similarity, "shingles", tracked)
    rng = random.Random(5)
    words = "refund order late parcel broken screen invoice account password reset".split()
    texts = [" ".join(rng.choices(words, k=rng.randint(0, 12))) for _ in range(60)] + ["", "!!"]
    x = shingle_matrix(texts, 3)
    assert most[0] <= 2  # this text's shingles (and at most the previous one's)

    vocab = sorted({s for t in texts for s in real(t, 3)})
    expected = np.zeros((len(texts), len(vocab)), dtype=np.float32)
    for row, t in enumerate(texts):
        for s in real(t, 3):
            expected[row, vocab.index(s)] = 1
    assert _column_sets(x) == _column_sets(sp.csr_matrix(expected))
    assert shingle_matrix(["", "!!", "  "], 3).shape == (3, 0)


def test_shingle_matrix_equals_the_vectorizer_s_in_a_few_bytes_per_entry(monkeypatch):
    """Batch by batch (texts of a Polars column), the matrix is scikit-learn
    CountVectorizer's up to the order of its columns (the same shingle sets per row), and
    building it peaks at a few bytes per entry above nothing (the vectorizer's int64 entries
    and their copies: ~30), with no vocabulary of the shingle strings (~110 bytes each)."""
    import tracemalloc
    from functools import partial

    from sklearn.feature_extraction.text import CountVectorizer

    from ftdata_pipeline.stages.split import similarity

    rng = random.Random(11)
    words = "refund order late parcel broken screen invoice account password reset".split()
    texts = [" ".join(rng.choices(words, k=rng.randint(0, 60))) for _ in range(4000)] + ["", "!!"]
    vectorizer = CountVectorizer(analyzer=partial(similarity.shingles, k=3), binary=True,
                                 dtype=np.int8)
    expected = vectorizer.fit_transform(texts).tocsr()
    vocabulary = vectorizer.get_feature_names_out()
    monkeypatch.setattr(similarity, "_TEXT_BATCH", 7)
    tracemalloc.start()
    x = shingle_matrix(pl.Series(texts), 3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert x.shape == expected.shape and x.dtype == expected.dtype and x.has_sorted_indices
    assert np.array_equal(x.indptr, expected.indptr)
    # one shingle per column: each column of ours holds the rows of one vectorizer column
    assert _column_sets(x) == _column_sets(expected) and len(vocabulary) == x.shape[1]
    assert peak / x.nnz < 16, peak / x.nnz
    assert x.data.nbytes == x.nnz  # int8 values: the matrix lives through the whole search
    # the same texts give the same matrix
    again = shingle_matrix(texts, 3)
    assert (again != x).nnz == 0 and again.shape == x.shape

    # many distinct shingles: a few tens of bytes each at the peak (strings in a dict: ~110)
    words = [f"w{i}" for i in range(60)]
    texts = [" ".join(rng.choices(words, k=rng.randint(0, 60))) for _ in range(4000)]
    tracemalloc.start()
    x = shingle_matrix(pl.Series(texts), 3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert x.shape[1] > 50_000 and peak / x.shape[1] < 40, (x.shape, peak / x.shape[1])


def test_prefixes_are_the_rarest_shingles_of_each_row_in_a_few_bytes_per_entry():
    """Each row's prefix holds its |A| - ceil(t |A|) + 1 rarest shingles (ties by column),
    found without sorting every entry: the old lexsort over (row, rank) took ~45 bytes per
    entry at its peak, the largest allocation of the split stage."""
    import math
    import tracemalloc

    from ftdata_pipeline.stages.split import similarity

    rng = random.Random(3)
    words = [f"w{i}" for i in range(150)]
    texts = [" ".join(rng.choices(words, k=rng.randint(0, 80))) for _ in range(20_000)]
    x = shingle_matrix(texts, 2)
    threshold = 0.5
    tracemalloc.start()
    try:
        pre = similarity._prefixes(x, threshold)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * x.nnz, peak / x.nnz

    freq = np.bincount(x.indices, minlength=x.shape[1])
    rank = {col: r for r, col in enumerate(sorted(range(x.shape[1]), key=lambda c: (freq[c], c)))}
    for row in rng.sample(range(x.shape[0]), 300):
        cols = x.indices[x.indptr[row]:x.indptr[row + 1]]
        ranks = sorted(rank[c] for c in cols)
        n = len(ranks) - math.ceil(threshold * len(ranks) - 1e-6) + 1 if ranks else 0
        got = pre.matrix.indices[pre.matrix.indptr[row]:pre.matrix.indptr[row + 1]]
        assert sorted(got.tolist()) == ranks[:n]  # columns are numbered by rank
        assert pre.last[row] == (ranks[n - 1] if n else -1)
        assert pre.rest[row] == max(len(ranks) - n, 0)


def test_shingle_matrix_reads_a_polars_column_a_batch_of_texts_at_a_time(monkeypatch):
    """A column's texts become Python strings a batch at a time; the matrix is the list's."""
    from ftdata_pipeline.stages.split import similarity

    rng = random.Random(8)
    words = "refund order late parcel broken screen invoice account".split()
    texts = [" ".join(rng.choices(words, k=rng.randint(0, 9))) for _ in range(95)]
    monkeypatch.setattr(similarity, "_TEXT_BATCH", 10)
    sliced: list[int] = []
    real_slice = pl.Series.slice
    monkeypatch.setattr(pl.Series, "slice", lambda self, offset, length=None: sliced.append(
        length) or real_slice(self, offset, length))
    x = shingle_matrix(pl.Series(texts), 3)
    assert sliced and set(sliced) == {10}
    y = shingle_matrix(texts, 3)
    assert x.shape == y.shape and (x != y).nnz == 0
    assert shingle_matrix(pl.Series(["", "!!"]), 3).shape == (2, 0)


def test_distinct_inputs_are_positions_in_the_column_in_text_order(monkeypatch):
    """The distinct inputs the split compares are named by a row of the column holding them,
    in the order ``unique().sort()`` gives (which copied every distinct text beside the
    column), and the matrix of those rows equals the matrix of the copied texts, gathered a
    batch at a time."""
    from ftdata_pipeline.stages.split import similarity
    from ftdata_pipeline.stages.split.similarity import distinct_texts

    rng = random.Random(11)
    words = "refund order late parcel broken screen invoice account Ärger".split()
    texts = pl.Series([" ".join(rng.choices(words, k=rng.randint(0, 6))) for _ in range(3000)]
                      + [None, "", "b", "a", "B"])
    rows, inverse = distinct_texts(texts)
    unique = texts.unique().sort()
    assert texts.gather(rows).to_list() == unique.to_list()
    assert rows.size < 3000 and inverse.dtype == np.int32
    # each row's number names its own text
    assert unique.gather(inverse).to_list() == texts.to_list()
    monkeypatch.setattr(similarity, "_TEXT_BATCH", 64)
    gathered: list[int] = []
    real_gather = pl.Series.gather
    monkeypatch.setattr(pl.Series, "gather", lambda self, at: gathered.append(len(at))
                        or real_gather(self, at))
    x = shingle_matrix(texts.fill_null(""), 3, rows=rows)
    y = shingle_matrix(unique.fill_null("").to_list(), 3)
    assert x.shape == y.shape and (x != y).nnz == 0 and max(gathered) == 64
    assert distinct_texts(pl.Series([], dtype=pl.String))[0].size == 0


@pytest.mark.parametrize("exact_work", [None, 0])  # the exact search, and LSH candidates
def test_long_inputs_sharing_hundreds_of_shingles_keep_their_exact_jaccard(exact_work):
    """One-byte matrix values never overflow a count: two inputs sharing 290 of their 300
    shingles (and their shared prefix shingles) are compared at their true Jaccard."""
    from ftdata_pipeline.stages.split import similarity

    base = [f"w{i}" for i in range(302)]
    texts = [" ".join(base), " ".join(base[:292] + [f"v{i}" for i in range(10)]), "other text here"]
    x = shingle_matrix(texts, 3)
    assert np.asarray(x.sum(axis=1)).ravel().tolist() == [300, 300, 1]
    pairs = similarity.similar_pairs(x, 0.9, exact_work=exact_work)
    assert pairs.i.tolist() == [0] and pairs.j.tolist() == [1]
    assert pairs.sim[0] == pytest.approx(290 / 310)


def test_left_counts_equal_the_column_counts_of_the_row_copy() -> None:
    """The exact search's work bound counts, per column, the left rows holding it; counted on
    the matrix itself (no row copy before the LSH search), it equals counting a copy of the
    rows: all rows, a subset, and rows listed twice."""
    x = shingle_matrix(templated(3, variable=True), 2)
    assert (_left_counts(x, None) == np.bincount(x.indices, minlength=x.shape[1])).all()
    for cols in (np.arange(40, 170), np.array([5, 9, 9, 120, 5, 7]), np.array([], dtype=int)):
        want = np.bincount(x[cols].tocsr().indices, minlength=x.shape[1])
        assert (_left_counts(x, cols) == want).all(), cols


def test_lsh_pairs_are_held_as_ordered_keys_in_a_few_bytes_per_pair(monkeypatch) -> None:
    """The LSH search keeps the pairs it finds as ordered keys with their similarities
    (16 bytes a pair, int32 inputs), not as per-batch (i, j, similarity) arrays sorted into
    copies at the end (~115 bytes a pair at the peak): at half a million ticket inputs its
    ~7M pairs were the split stage's peak. The pairs are those of a search without the
    key structure: every candidate verified, in (i, j) order, each once."""
    import tracemalloc

    from ftdata_pipeline.stages.split import similarity

    # small verification chunks and candidate batches: the pairs dominate what is allocated
    monkeypatch.setattr(similarity, "_VERIFY", 2000)
    monkeypatch.setattr(similarity, "_LSH_BATCH", 1 << 14)
    x = shingle_matrix(slotted(1, n=6000, templates=2), 2)
    tracemalloc.start()
    try:
        pairs = similar_pairs(x, 0.5, exact_work=0)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not pairs.exact and len(pairs) > 100_000
    assert pairs.i.dtype == np.int32 and pairs.j.dtype == np.int32
    assert current / len(pairs) < 20, current / len(pairs)
    assert peak / len(pairs) < 80, peak / len(pairs)
    keys = pairs.i.astype(np.int64) << 32 | pairs.j
    assert (np.diff(keys) > 0).all()  # (i, j) order, each pair once
    assert (pairs.sim >= 0.5).all()
    for k in np.random.default_rng(0).choice(len(pairs), 500, replace=False):
        a = set(x.indices[x.indptr[pairs.i[k]]:x.indptr[pairs.i[k] + 1]].tolist())
        b = set(x.indices[x.indptr[pairs.j[k]]:x.indptr[pairs.j[k] + 1]].tolist())
        assert pairs.sim[k] == pytest.approx(len(a & b) / len(a | b))


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_found_pairs_give_their_memory_back_as_they_become_the_result() -> None:
    """The LSH search's found pairs are runs replaced batch after batch; each run sits in
    pages of its own, so ``pairs()`` hands them back as it fills the result (the resident set
    does not grow by the result's size) and nothing stays resident once the result is freed.
    From glibc's heap, the freed runs stayed resident: the result came on top (+16 bytes a
    pair) and the runs' size stayed after (measured: +109 MB and 126 MB left over 7M pairs)."""
    from ftdata_pipeline.stages.split.similarity import _Found

    rng = np.random.default_rng(0)
    n = 500_000
    found = _Found(n)
    base = _rss()
    for _ in range(60):
        i = rng.integers(0, n - 1, 60_000)
        j = i + 1 + rng.integers(0, 1000, i.size)
        keys = found.unseen((i.astype(np.uint64) << np.uint64(32)) | j.astype(np.uint64))
        other = np.ones(200_000)  # the search's temporaries between two batches
        found.add_keys(keys, rng.random(keys.size))
        del other
    size = len(found) * 16
    added = _rss()
    pairs = found.pairs(exact=False)
    assert len(pairs) * 16 == size and (np.diff(pairs.i) >= 0).all()
    assert _rss() - added < 0.3 * size, (_rss() - added) / size
    del pairs
    assert _rss() - base < 0.3 * size, (_rss() - base) / size


def test_group_links_are_given_most_similar_first_without_joining_them(monkeypatch) -> None:
    """Links between groups come out in the order (-similarity, a, b), links within one group
    left out, the same sequence as sorting every link joined into one array, without joining
    them: links of similarity 1 as ordered keys, the others a range of similarities at a time.
    The peak beyond the arrays given is a few bytes a link; joining the parts and sorting all
    of them by index held ~32 bytes a link more, and fails here."""
    import tracemalloc

    from ftdata_pipeline.stages.split import groups

    monkeypatch.setattr(groups, "_SORT_LINKS", 20_000)  # many ranges of similarities
    rng = np.random.default_rng(4)
    n = 400_000
    chain_a = rng.integers(0, 1000, 5000).astype(np.int32)
    chain_b = rng.integers(0, 1000, 5000).astype(np.int32)
    near_a = rng.integers(0, 50_000, n).astype(np.int32)
    near_b = np.where(rng.random(n) < 0.1, near_a, rng.integers(0, 50_000, n)).astype(np.int32)
    # Jaccard values are ratios of small counts: many ties, some exactly 1
    near_sim = rng.integers(30, 61, n) / 60
    want_sim = np.concatenate((np.ones(5000), near_sim))
    want_a, want_b = np.concatenate((chain_a, near_a)), np.concatenate((chain_b, near_b))
    apart = want_a != want_b
    want_sim, want_a, want_b = want_sim[apart], want_a[apart], want_b[apart]
    order = np.lexsort((want_b, want_a, -want_sim))
    want_sim, want_a, want_b = want_sim[order], want_a[order], want_b[order]
    edges = groups._Edges()
    at = 0
    tracemalloc.start()
    try:
        edges.add(1.0, chain_a, chain_b)
        edges.add(near_sim, near_a, near_b)
        for sim, a, b in edges.ordered(10_000):
            assert a.dtype == np.int32 and b.dtype == np.int32 and sim.size <= 10_000
            assert np.array_equal(sim, want_sim[at : at + sim.size])
            assert np.array_equal(a, want_a[at : at + sim.size])
            assert np.array_equal(b, want_b[at : at + sim.size])
            at += sim.size
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert at == want_sim.size
    assert peak / (n + 5000) < 4, peak / (n + 5000)


def test_lsh_search_signs_one_band_at_a_time(monkeypatch) -> None:
    """Each band's permutations are computed when its turn comes, the same columns as the
    whole signature's: the search never holds every input's whole signature (288 bytes an
    input; ~260 MB at 900k distinct inputs), and finds what banding the whole one finds."""
    from ftdata_pipeline.stages.curation.neardup import minhash
    from ftdata_pipeline.stages.split import similarity

    x = shingle_matrix(slotted(5, n=2000, templates=4), 2)
    lengths = np.diff(x.indptr)
    whole = minhash(x.indices, lengths, similarity._PERMS, similarity._SEED)
    r = similarity.band_rows(0.5)
    for band in (0, 5, similarity._PERMS // r - 1):
        part = minhash(x.indices, lengths, similarity._PERMS, similarity._SEED,
                       perms=range(band * r, (band + 1) * r))
        assert np.array_equal(part, whole[:, band * r : (band + 1) * r])
    widths = []
    real = similarity.minhash
    monkeypatch.setattr(similarity, "minhash", lambda *a, **k: widths.append(
        (res := real(*a, **k)).shape[1]) or res)
    pairs = similar_pairs(x, 0.5, exact_work=0)
    assert len(pairs) > 0 and widths == [r] * (similarity._PERMS // r)


def test_the_exact_search_bound_is_counted_a_block_of_rows_at_a_time(monkeypatch):
    """The bound that chooses between the exact and the LSH search is the one the whole prefix
    matrix gives (per row, the left rows sharing each prefix shingle), within one set and
    between two (rows listed twice included), counted a block of rows at a time in a few
    bytes an entry: built whole, the prefix matrix was both of the split's searches' peak."""
    import tracemalloc

    from ftdata_pipeline.stages.split import similarity

    rng = random.Random(5)
    words = [f"w{i}" for i in range(120)]
    texts = [" ".join(rng.choices(words, k=rng.randint(0, 70))) for _ in range(30_000)]
    x = shingle_matrix(texts, 2)
    monkeypatch.setattr(similarity, "_BOUND_ROWS", 1000)
    for threshold in (0.5, 0.8):
        pre = similarity._prefixes(x, threshold)
        for rows, cols in ((np.arange(x.shape[0]), None),
                           (np.arange(0, 20_000, 3), np.concatenate(
                               (np.arange(1, 30_000, 2), np.arange(1, 500))))):
            want = float((pre.matrix @ _left_counts(pre.matrix, cols))[rows].sum())
            tracemalloc.start()
            got = similarity._exact_bound(x, threshold, rows, cols)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert got == want > 0, (got, want)
            assert peak < 3 * x.nnz, peak / x.nnz  # the prefix matrix alone: 8 bytes an entry

    # the LSH search is chosen on the bound without the prefix matrix ever being built
    built = []
    real = similarity._prefixes
    monkeypatch.setattr(similarity, "_prefixes", lambda *a: built.append(1) or real(*a))
    lsh = similar_pairs(x[:3000], 0.8, exact_work=1)
    assert not lsh.exact and not built
    exact = similar_pairs(x[:3000], 0.8)
    assert exact.exact and built
    assert set(zip(lsh.i.tolist(), lsh.j.tolist())) <= set(zip(exact.i.tolist(), exact.j.tolist()))
