"""Precision and recall of every removal on a corpus with planted duplicates, junk and leaks.

The corpus is generated deterministically: English-like base documents, exact copies (case and
whitespace changed), near copies (one word replaced or a short line appended), junk of four
kinds and documents that embed an evaluation-set text. Each removal must find its planted
records (recall) and nothing else (precision); near-dup tolerates MinHash's estimation noise.
"""

from __future__ import annotations

import json
import random
import tracemalloc

import numpy as np
import polars as pl
import pytest

from ftdata_pipeline import records
from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.stages.curate import curate
from ftdata_pipeline.stages.curation import neardup
from ftdata_pipeline.stages.spill import Matrix
from ftdata_pipeline_tests.stages.test_spill import resident_bytes

VOCAB = (
    "the a to of and that have with is are was it in on for you we my your this not can do "
    "account billing invoice order shipping refund password login server backup storage sync "
    "device router update error screen customer support team plan upgrade price payment card "
    "email report export import folder file share link access admin user setting network "
    "monday friday week month today quickly slowly again always never please thanks help issue "
    "problem request question answer reply ticket agent review check open close reset restart "
    "install remove enable disable migrate restore download upload delete create change move"
).split()
EVAL = [
    {"id": f"E{i}", "prompt": " ".join(random.Random(f"eval{i}").choices(VOCAB, k=16))}
    for i in range(10)
]


def _doc(rng: random.Random, n: int) -> str:
    words = rng.choices(VOCAB, k=n)
    return " ".join(words[:n // 2]) + ".\n" + " ".join(words[n // 2 :]) + "."


def planted_corpus() -> tuple[pl.DataFrame, dict[str, set[str]], set[tuple[str, str]]]:
    """Rows, planted ids per expected rule, and planted (original, near copy) pairs."""
    rng = random.Random(20261001)
    rows: list[dict] = []
    planted: dict[str, set[str]] = {k: set() for k in (
        "exact_duplicate", "near_duplicate", "contaminated", "duplicate_lines", "symbol_ratio",
        "alpha_ratio", "too_few_words",
    )}
    pairs: set[tuple[str, str]] = set()
    base = []
    for i in range(300):
        rid = f"b{i:04d}"
        base.append((rid, _doc(rng, rng.randint(80, 120))))
        rows.append({"record_id": rid, "text": base[-1][1]})
    for i in range(25):  # exact copies: case and whitespace differ, hash is equal
        orig_id, text = base[i]
        rid = f"x{i:04d}"
        rows.append({"record_id": rid, "text": "  " + text.upper().replace(" ", "  ")})
        planted["exact_duplicate"].add(rid)
    for i in range(40):  # near copies of distinct originals
        orig_id, text = base[100 + i]
        words = text.split(" ")
        if i % 2:
            words[rng.randrange(len(words))] = "zebra"
            edited = " ".join(words)
        else:
            edited = text + "\nStill waiting on this."
        rid = f"n{i:04d}"
        rows.append({"record_id": rid, "text": edited})
        planted["near_duplicate"].add(rid)
        pairs.add((orig_id, rid))
    for i, ev in enumerate(EVAL):  # an eval prompt pasted into an otherwise fresh document
        prefix = _doc(rng, 40)
        pasted = ev["prompt"].upper() + "?!" if i % 2 else ev["prompt"]
        rid = f"c{i:04d}"
        rows.append({"record_id": rid, "text": f"{prefix}\n{pasted}\n{_doc(rng, 30)}"})
        planted["contaminated"].add(rid)
    for i in range(5):
        line = " ".join(rng.choices(VOCAB, k=6))
        rows.append({"record_id": f"jl{i}", "text": "\n".join([line] * 6 + [_doc(rng, 20)])})
        planted["duplicate_lines"].add(f"jl{i}")
        rows.append({"record_id": f"js{i}", "text": " ".join(f"### {w} ..." for w in rng.choices(VOCAB, k=20))})
        planted["symbol_ratio"].add(f"js{i}")
        rows.append({"record_id": f"ja{i}", "text": " ".join(str(rng.randint(100, 99999)) for _ in range(30)) + " total"})
        planted["alpha_ratio"].add(f"ja{i}")
        rows.append({"record_id": f"jw{i}", "text": rng.choice(["help", "?", "test", "hi"])})
        planted["too_few_words"].add(f"jw{i}")
    df = records.conform(
        pl.DataFrame([{"source": "src", "source_key": r["record_id"], **r} for r in rows])
    )
    return df, planted, pairs


def recipe(tmp_path, **near) -> RecipeConfig:
    (tmp_path / "eval.jsonl").write_text("\n".join(json.dumps(e) for e in EVAL))
    return RecipeConfig.model_validate(
        {
            "name": "t",
            "kind": "pretraining",
            "sources": ["src"],
            "exports": {"formats": ["trl_text"]},
            "curate": {
                "min_words": 3,
                "quality": {"repetition_min_words": 30, "min_stop_words": 2},
                # synthetic word salad is not a language; language ID has its own tests
                "language": {"enabled": False},
                "harmful": {"model": False, "words": ["zzzbadword"]},
                "decontamination": {
                    "eval_sets": [{"path": "eval.jsonl", "fields": ["prompt"]}],
                    "ngram": 13,
                },
                "near_dedup": {"threshold": 0.8, **near},
            },
        }
    )


@pytest.fixture(scope="module")
def corpus():
    return planted_corpus()


def test_every_removal_has_its_precision_and_recall(corpus, tmp_path) -> None:
    df, planted, pairs = corpus
    result = curate(df.lazy(), recipe(tmp_path), root=tmp_path)
    assert result.rows_in == result.kept.height + result.rejected.height
    assert result.rejected["record_id"].n_unique() == result.rejected.height
    by_rule = {
        rule: set(ids)
        for rule, ids in result.rejected.group_by("rule").agg("record_id").iter_rows()
    }
    # exact for everything but near duplicates
    for rule in ("exact_duplicate", "contaminated", "duplicate_lines", "symbol_ratio", "alpha_ratio", "too_few_words"):
        assert by_rule.get(rule, set()) == planted[rule], rule
    found = by_rule.get("near_duplicate", set())
    recall = len(found & planted["near_duplicate"]) / len(planted["near_duplicate"])
    precision = len(found & planted["near_duplicate"]) / max(len(found), 1)
    assert recall >= 0.9, recall
    assert precision >= 0.95, precision
    assert set(by_rule) <= {*planted, "near_duplicate"}  # nothing else was dropped
    # each removed near copy points at its original, with its estimated similarity
    rej = result.rejected.filter(pl.col("rule") == "near_duplicate")
    for rid, rep, score in rej.select("record_id", "detail", "score").iter_rows():
        assert (rep, rid) in pairs
        assert 0.8 <= score <= 1.0
    # the kept original carries its cluster id; every kept row has its scores
    assert result.kept["dup_cluster_id"].n_unique() == result.kept.height
    for col in ("q_dup_line_frac", "q_top2gram_frac", "q_symbol_ratio", "q_alpha_frac", "q_harm", "q_quality"):
        assert result.kept[col].null_count() == 0, col
    steps = result.stats["steps"]
    assert sum(s["dropped"] for s in steps.values()) == result.rows_rejected
    assert steps["near_duplicate"]["dropped"] == len(found)


def test_deterministic_and_order_independent(corpus, tmp_path) -> None:
    df, _, _ = corpus
    cfg = recipe(tmp_path)
    first = curate(df.lazy(), cfg, root=tmp_path)
    again = curate(df.lazy(), cfg, root=tmp_path)
    shuffled = curate(df.sample(fraction=1.0, shuffle=True, seed=3).lazy(), cfg, root=tmp_path)
    for other in (again, shuffled):
        assert first.kept.equals(other.kept)
        assert first.rejected.equals(other.rejected)
        assert first.stats == other.stats


@pytest.mark.parametrize("keep", ["first", "longest", "best_quality"])
def test_keep_policy(tmp_path, keep: str) -> None:
    base = " ".join(random.Random(5).choices(VOCAB, k=60))
    rows = [
        {"record_id": "a", "text": base},
        {"record_id": "b", "text": base + " again"},
    ]
    df = records.conform(pl.DataFrame([{"source": "s", "source_key": r["record_id"], **r} for r in rows]))
    cfg = recipe(tmp_path, keep=keep)
    cfg = cfg.model_copy(update={"curate": cfg.curate.model_copy(update={"decontamination": cfg.curate.decontamination.model_copy(update={"eval_sets": []})})})
    result = curate(df.lazy(), cfg)
    kept = result.kept["record_id"].to_list()
    # a and b have the same quality score, so best_quality falls back to the first
    assert kept == (["b"] if keep == "longest" else ["a"])
    assert result.rejected["detail"].to_list() == kept
    assert result.kept["dup_cluster_id"].to_list() == kept


def test_neardup_building_blocks() -> None:
    labels = neardup.connected_components(6, np.array([0, 3, 4]), np.array([1, 4, 5]))
    assert labels.tolist() == [0, 0, 2, 3, 3, 3]
    labels = neardup.connected_components(4, np.array([2, 1]), np.array([3, 3]))
    assert labels.tolist() == [0, 1, 1, 1]
    reps = neardup.representatives(np.array([0, 0, 2, 3, 3, 3]), np.array([0, 5, 0, 1, 9, 9.0]))
    assert reps.tolist() == [1, 1, 2, 4, 4, 4]
    texts = pl.Series(["one two three four five six seven", "one two three four five six seven", "x", None, ""])
    sh, per = neardup.shingle_hashes(texts, 5)
    assert per.tolist() == [3, 3, 1, 0, 0]
    sig = neardup.minhash(sh, per, 16, seed=1)
    assert (sig[0] == sig[1]).all() and not (sig[0] == sig[2]).all()
    again = neardup.minhash(sh, per, 16, seed=1)
    assert (sig == again).all()


def _clustered_texts(n_base: int = 300) -> pl.Series:
    """Base documents, each followed by 0-3 copies with one or two words replaced."""
    rng = random.Random(7)
    out = []
    for _ in range(n_base):
        words = rng.choices(VOCAB, k=rng.randint(12, 60))
        out.append(" ".join(words))
        for _ in range(rng.randint(0, 3)):
            copy = list(words)
            for _ in range(rng.randint(1, 2)):
                copy[rng.randrange(len(copy))] = rng.choice(VOCAB)
            out.append(" ".join(copy))
    out += ["", None, "short"]
    rng.shuffle(out)
    return pl.Series(out, dtype=pl.String)


def test_neardup_bounded_batches_give_the_clusters_of_every_candidate(monkeypatch) -> None:
    """Clusters equal those of verifying every LSH candidate at once (the textbook way), for
    any signature batch and pair chunk size; skipped candidates never change a cluster."""
    texts = _clustered_texts()
    params = dict(shingle_words=3, num_perm=64, bands=16, rows=4, threshold=0.7, seed=3)
    k, perms = params["shingle_words"], params["num_perm"]
    sh, per = neardup.shingle_hashes(texts, k)
    sig = neardup.minhash(sh, per, perms, params["seed"])
    idx = np.flatnonzero(per > 0)
    every = [np.concatenate(p) for p in zip(*(
        pair for band in range(params["bands"])
        for pair in neardup.band_candidates(sig, band, params["rows"], idx, batch=10**9)
    ), strict=True)]
    ok = neardup.jaccard_estimate(sig, *every) >= params["threshold"]
    expected = neardup.connected_components(texts.len(), every[0][ok], every[1][ok])
    assert (expected != np.arange(texts.len())).sum() > 100  # real clusters to find

    results = []
    for doc_batch, pair_batch in [(10**6, 10**9), (37, 5), (1, 1)]:
        monkeypatch.setattr(neardup, "_DOC_BATCH", doc_batch)
        monkeypatch.setattr(neardup, "_PAIR_BATCH", pair_batch)
        r = neardup.find_near_duplicates(texts, **params)
        assert (r.signatures == sig).all() and (r.has_tokens == (per > 0)).all()
        assert r.labels.tolist() == expected.tolist()
        assert (r.pair_sim >= params["threshold"]).all() and (r.pair_i < r.pair_j).all()
        results.append(r)
    # the reported pairs connect exactly the clusters
    again = neardup.connected_components(texts.len(), results[0].pair_i, results[0].pair_j)
    assert again.tolist() == expected.tolist()


@pytest.mark.parametrize("language", [False, True])
def test_curation_runs_in_batches_with_the_same_result(corpus, tmp_path, monkeypatch,
                                                       language) -> None:
    """Every filter judges at most CURATE_ROWS records at a time, and near dedup gets
    signatures, not texts: kept rows, rejects (with their columns) and every count equal the
    one-batch run's, in memory and spilled to disk, whatever the input order."""
    from ftdata_pipeline.stages import curate as stage
    from ftdata_pipeline.stages.curation import filtering

    df, _, _ = corpus
    data = recipe(tmp_path).model_dump(mode="json", exclude_unset=True)
    data["curate"]["language"] = {"enabled": language}
    data["curate"]["harmful"] = {"model": True, "words": ["zzzbadword"]}
    cfg = RecipeConfig.model_validate(data)
    whole = curate(df.lazy(), cfg, root=tmp_path)
    seen: list[int] = []
    real = filtering.run_filters
    monkeypatch.setattr(stage, "run_filters",
                        lambda frame, *a: seen.append(frame.height) or real(frame, *a))
    monkeypatch.setattr(stage, "CURATE_ROWS", 37)
    batched = curate(df.lazy(), cfg, root=tmp_path)
    assert len(seen) > 5 * 3 and max(seen) == 37
    assert batched.kept.equals(whole.kept)
    assert batched.rejected.equals(whole.rejected)
    assert batched.stats == whole.stats
    assert list(batched.stats["steps"]) == list(whole.stats["steps"])

    spill = tmp_path / "spill"
    spilled = curate(df.sample(fraction=1.0, shuffle=True, seed=3).lazy(), cfg, root=tmp_path,
                     spill=spill)
    assert isinstance(spilled.kept, pl.LazyFrame) and isinstance(spilled.rejected, pl.LazyFrame)
    assert spilled.rows_rejected == whole.rows_rejected
    assert spilled.kept.collect().equals(whole.kept)
    assert spilled.rejected.collect().equals(whole.rejected)
    assert spilled.stats == whole.stats
    # one sorted file per output bucket; the scratch parts of the passes are gone
    assert len(list((spill / "kept").glob("sorted-*.parquet"))) > 1
    assert not list(spill.glob("pass*/*.parquet")) and not list(spill.glob("*/bucket-*"))
    # the signatures were a file of the spill folder, deleted once clustered
    assert (spill / "near").is_dir() and not list((spill / "near").iterdir())

    empty = curate(df.clear().lazy(), cfg, root=tmp_path)
    assert empty.kept.height == 0 and empty.stats["steps"]["too_few_words"]["in"] == 0
    empty_spilled = curate(df.clear().lazy(), cfg, root=tmp_path, spill=tmp_path / "spill0")
    assert empty_spilled.kept.collect().equals(empty.kept)
    assert empty_spilled.rejected.collect().equals(empty.rejected)


def test_minhash_signs_in_place_with_one_signature_array() -> None:
    """Signatures equal the textbook broadcast (min over shingles of each permutation), and
    signing holds one (documents x permutations) array, not a second copy of it: the split's
    similarity search signs every distinct input of a dataset at once."""
    rng = np.random.default_rng(0)
    per = rng.integers(0, 60, size=200_000)  # some documents without shingles
    sh = rng.integers(0, 2**63, size=int(per.sum()), dtype=np.uint64)
    tracemalloc.start()
    tracemalloc.reset_peak()
    sig = neardup.minhash(sh, per, 64, seed=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1.5 * sig.nbytes, (peak, sig.nbytes)  # two arrays: 2x

    seeded = np.random.default_rng(1)
    a = (seeded.integers(0, 2**63, size=64, dtype=np.uint64) << np.uint64(1)) | np.uint64(1)
    b = seeded.integers(0, 2**63, size=64, dtype=np.uint64)
    starts = np.concatenate([[0], np.cumsum(per)])
    for d in [*np.flatnonzero(per == 0)[:3], *np.flatnonzero(per > 0)[:50], len(per) - 1]:
        x = sh[starts[d] : starts[d + 1]]
        with np.errstate(over="ignore"):
            want = (((x[:, None] * a) + b) >> np.uint64(32)).min(axis=0) if x.size else (
                np.full(64, np.iinfo(np.uint32).max))
        assert (sig[d] == want.astype(np.uint32)).all(), d


@pytest.mark.parametrize("spilled", [False, True])
def test_near_dedup_inputs_are_signed_into_their_rows_and_closed_up_in_place(
    monkeypatch, tmp_path, spilled
) -> None:
    """Batches arrive in any order and some records that passed the first pass never arrive
    (a later rule dropped them): the signatures come back in the dedup order, equal to
    signing those texts in that order, and putting them in order holds no second copy of
    the signature array (the old gather-and-copy did, at the corpus's largest moment).
    Spilled, the array is a file and none of its pages stay with the process."""
    from ftdata_pipeline.config.models import CurateConfig
    from ftdata_pipeline.stages import curate as stage
    from ftdata_pipeline.stages.curation.views import NEAR
    from ftdata_pipeline.stages.spill import SEQ

    monkeypatch.setattr(stage, "_COMPACT_ROWS", 256)
    rng = np.random.default_rng(3)
    n = 12_000
    words = np.array(VOCAB)
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 12)))) for _ in range(n)]
    pos = rng.permutation(n).astype(np.int64)  # each record's rank in the dedup order
    passed = np.sort(rng.choice(n, size=9_000, replace=False))  # pass 1's survivors
    arrive = rng.permutation(passed)[:7_000]  # the rest are dropped in pass 2
    cfg = CurateConfig(near_dedup={"num_perm": 32, "bands": 8, "rows": 4})
    tracemalloc.start()
    spill = tmp_path / "near" if spilled else None
    inputs = stage._NearInputs(cfg, passed, pos, spill)
    for part in np.array_split(arrive, 9):
        inputs.add(pl.DataFrame({
            SEQ: part, records.RECORD_ID: [f"r{s}" for s in part], NEAR: [texts[s] for s in part],
        }))

    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    seqs, ids, sig, has, priority = inputs.in_dedup_order()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    full = sig.shape[0] * sig.shape[1] * 4
    assert peak - held < 0.3 * full, (peak - held, full)  # a second array: >= 1x
    assert inputs.sig.mapped == spilled
    if spilled:
        assert isinstance(sig, neardup.SpilledSignatures)
        assert resident_bytes(spill / "signatures.bin") < 0.1 * full
        assert (sig.sketch == sig.in_memory().astype(np.uint8)).all()
        sig = sig.in_memory()

    want_seqs = arrive[np.argsort(pos[arrive])]
    assert (seqs == want_seqs).all()
    assert ids.to_list() == [f"r{s}" for s in want_seqs]
    want_sig, want_has = neardup.signatures(pl.Series([texts[s] for s in want_seqs]),
                                            cfg.near_dedup.shingle_words, 32, cfg.near_dedup.seed)
    assert sig.shape == want_sig.shape and (sig == want_sig).all()
    assert (has == want_has).all() and not has.all()  # empty texts are among them
    assert priority.shape == (want_seqs.size,)


def test_near_dedup_over_spilled_signatures_holds_a_quarter_of_them(tmp_path, monkeypatch) -> None:
    """Signatures in a file with their low bytes in memory (``SpilledSignatures``) give the
    clusters, pairs and similarities of full signatures in memory. The file is read a run of
    rows at a time (the pages the process holds stay a small share of it) and by position
    for the pairs whose low bytes reach the threshold only: few, not every candidate."""
    rng = np.random.default_rng(5)
    n, perms = 300_000, 64
    want = rng.integers(0, 2**32, size=(n, perms), dtype=np.uint32)
    copies = rng.choice(n, size=(3_000, 2), replace=False)
    near = want[copies[:, 0]].copy()
    near[:1_000, rng.integers(0, perms, size=4)] += 1  # 60 of 64 slots equal: 0.94
    near[1_000:2_000, :14] += 1  # 50 of 64: 0.78, below the threshold
    near[2_000:, :14] += 256  # and their low bytes equal: reaches it on the sketch only
    want[copies[:, 1]] = near
    has = np.ones(n, dtype=bool)
    has[rng.choice(n, 50, replace=False)] = False
    memory = neardup.cluster_signatures(want, has, bands=16, rows=4, threshold=0.8)

    m = Matrix(tmp_path, "signatures", (n, perms), np.uint32)
    m.array[:] = want
    m.release()
    path, held, taken = tmp_path / "signatures.bin", [], []
    real_release, real_take = m.release, m.take
    monkeypatch.setattr(m, "release", lambda: held.append(resident_bytes(path)) or real_release())
    monkeypatch.setattr(m, "take", lambda rows: taken.append(rows) or real_take(rows))
    spilled = neardup.SpilledSignatures(m, want.astype(np.uint8))
    found = neardup.cluster_signatures(spilled, has, bands=16, rows=4, threshold=0.8)
    assert (found.labels == memory.labels).all()
    assert (found.pair_i == memory.pair_i).all() and (found.pair_j == memory.pair_j).all()
    assert (found.pair_sim == memory.pair_sim).all()
    assert np.unique(memory.labels).size == n - 1_000  # only the pairs at 0.94 joined
    assert len(held) >= 16 * 4 and max(held) < 0.3 * want.nbytes, (max(held), want.nbytes)
    # full rows read: those of the pairs reaching the threshold on the sketch (the 1,000 that
    # joined and the 1,000 equal in their low bytes), never of a pair the sketch rules out
    read = np.unique(np.concatenate(taken))
    planted = np.concatenate([copies[:1_000], copies[2_000:]]).ravel()
    assert np.isin(read, planted).all() and read.size > 0.99 * planted.size  # (no-token rows)

    rep = memory.labels
    taken.clear()
    sims = neardup.similarity(spilled, np.arange(n), rep)
    assert (sims == neardup.jaccard_estimate(want, np.arange(n), rep)).all()
    assert sum(t.size for t in taken) == 2_000  # the rows whose representative is another
    rows = np.sort(rng.choice(n, 5_000, replace=False))
    assert (m.take(rows) == want[rows]).all() and resident_bytes(path) < 0.1 * want.nbytes
