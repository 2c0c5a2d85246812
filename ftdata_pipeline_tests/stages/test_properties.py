"""Property-based tests (hypothesis) of the invariants every run relies on: for normalization,
deduplication and splitting, rows in = kept + rejected (by record id, measured), no group in
two splits, and the same output for the same input in any row order."""

from __future__ import annotations

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftdata_pipeline.config.models import CurateConfig, RecipeConfig
from ftdata_pipeline.records import conform
from ftdata_pipeline.stages.curate import curate
from ftdata_pipeline.stages.curation.normalize import normalize_text
from ftdata_pipeline.stages.split import split

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
WORDS = ["alpha", "beta", "gamma", "delta", "reset", "invoice", "login", "the", "and", "a"]

# Text with the things normalization acts on: markup, entities, mojibake, odd spaces, unicode.
NOISY = st.lists(
    st.sampled_from(
        list("abcdeXYZ 019.,!?\n\t") + ["<b>", "</p>", "<br>", "&amp;", "&nbsp;", "Ã©", "â€™",
                                         "\u00a0", "\u200b", "e\u0301", "\u2028", "  "]),
    max_size=30,
).map("".join)
SENTENCE = st.lists(st.sampled_from(WORDS), min_size=0, max_size=14).map(" ".join)


def _frame(texts: list[str | None], **cols) -> pl.DataFrame:
    n = len(texts)
    return conform(pl.DataFrame({
        "record_id": [f"r{i:03d}" for i in range(n)], "source": ["s"] * n,
        "source_key": [str(i) for i in range(n)], "text": texts, **cols,
    }, schema_overrides={"text": pl.String}))


def _ids(df: pl.DataFrame) -> list[str]:
    return df["record_id"].to_list()


def _accounted(rows_in: pl.DataFrame, kept: pl.DataFrame, rejected: pl.DataFrame) -> None:
    kept_ids, rejected_ids = set(_ids(kept)), set(_ids(rejected))
    assert kept.height == len(kept_ids) and rejected.height == len(rejected_ids)
    assert not kept_ids & rejected_ids
    assert kept_ids | rejected_ids == set(_ids(rows_in))


@SETTINGS
@given(texts=st.lists(st.one_of(st.none(), NOISY), max_size=12), seed=st.randoms())
def test_normalization_is_row_wise_deterministic_and_keeps_nulls(texts, seed):
    cfg = CurateConfig()
    df = pl.DataFrame({"i": list(range(len(texts))), "t": texts}, schema={"i": pl.Int64,
                                                                         "t": pl.String})
    once = df.with_columns(normalize_text(pl.col("t"), cfg).alias("n"))
    order = list(range(len(texts)))
    seed.shuffle(order)
    shuffled = df[order].with_columns(normalize_text(pl.col("t"), cfg).alias("n")).sort("i")
    assert once["n"].to_list() == shuffled["n"].to_list()
    for raw, out in zip(texts, once["n"].to_list(), strict=True):
        assert (raw is None) == (out is None)
        if out is not None:
            # Leading indentation may be an indented code block, which is kept byte for byte;
            # trailing whitespace, leading blank lines and runs of blank lines never survive.
            assert out == out.rstrip() and not out.startswith(("\n", "\r"))
            assert "\n\n\n" not in out and "\u200b" not in out


@SETTINGS
@given(words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=10))
def test_clean_text_is_left_unchanged(words):
    text = " ".join(words)
    out = pl.select(normalize_text(pl.lit(text), CurateConfig())).item()
    assert out == text


RECIPE = RecipeConfig.model_validate(
    {"name": "p", "kind": "pretraining", "sources": ["s"],
     "curate": {"min_chars": 1, "min_words": 1, "dedup": "exact",
                "language": {"enabled": False}, "harmful": {"enabled": False}},
     "exports": {"formats": ["trl_text"]}}
)


@SETTINGS
@given(
    texts=st.lists(st.one_of(st.none(), SENTENCE, st.sampled_from(["", "  ", "<p></p>"])),
                   max_size=25),
    seed=st.randoms(),
)
def test_curation_and_exact_dedup_account_for_every_row(texts, seed):
    df = _frame(texts)
    result = curate(df.lazy(), RECIPE)
    _accounted(df, result.kept, result.rejected)
    assert result.rows_in == result.rows_kept + result.rows_rejected == len(texts)
    # no two kept records with the same normalized content
    assert result.kept["content_hash"].n_unique() == result.kept.height
    # every duplicate dropped points at a kept record with its content
    dups = result.rejected.filter(pl.col("rule") == "exact_duplicate")
    assert set(dups["content_hash"]) <= set(result.kept["content_hash"])
    # same result whatever the input order
    order = list(range(df.height))
    seed.shuffle(order)
    again = curate(df[order].lazy(), RECIPE)
    assert again.kept.sort("record_id").equals(result.kept.sort("record_id"))
    assert again.rejected.sort("record_id").equals(result.rejected.sort("record_id"))


GROUPS = st.one_of(st.none(), st.sampled_from(["g1", "g2", "g3", "g4", "g5"]))


@SETTINGS
@given(
    rows=st.lists(st.tuples(st.one_of(st.none(), SENTENCE.filter(bool)), GROUPS, GROUPS),
                  max_size=40),
    seed=st.integers(0, 2**31 - 1),
    shuffle=st.randoms(),
)
def test_split_accounts_for_every_row_and_no_group_crosses_splits(rows, seed, shuffle):
    recipe = RecipeConfig.model_validate(
        {"name": "p", "kind": "pretraining", "sources": ["s"],
         "split": {"seed": seed, "ratios": {"train": 0.6, "validation": 0.2, "test": 0.2}},
         "exports": {"formats": ["trl_text"]}})
    df = _frame([r[0] for r in rows],
                conversation_id=pl.Series([r[1] for r in rows], dtype=pl.String),
                dup_cluster_id=pl.Series([r[2] for r in rows], dtype=pl.String))
    result = split(df.lazy(), recipe)
    _accounted(df, result.kept, result.rejected)
    kept = result.kept
    assert kept["split"].is_in(["train", "validation", "test"]).all()
    for key in ("conversation_id", "dup_cluster_id"):
        crossing = (kept.filter(pl.col(key).is_not_null()).group_by(key)
                    .agg(pl.col("split").n_unique().alias("n")).filter(pl.col("n") > 1))
        assert crossing.is_empty(), key
    order = list(range(df.height))
    shuffle.shuffle(order)
    again = split(df[order].lazy(), recipe)
    assert again.kept.sort("record_id").select("record_id", "split").equals(
        kept.sort("record_id").select("record_id", "split"))
