"""Representativeness against production inputs (PSI, JS, coverage, edge cases) and bias."""

from __future__ import annotations

import math

import polars as pl
import pytest

from ftdata_pipeline import records
from ftdata_pipeline.config.models import BiasConfig, RecipeConfig, ReferenceConfig
from ftdata_pipeline.governance.card import render_card
from ftdata_pipeline.orchestration.split_checks import BIAS_BALANCE, REPRESENTATIVENESS, evaluate
from ftdata_pipeline.stages.split import split
from ftdata_pipeline.stages.split.bias import bias_report
from ftdata_pipeline.stages.split.representativeness import (
    PSI_EPSILON,
    coverage_report,
    distribution_report,
    edge_case_report,
    js_divergence,
    psi,
)


def test_psi_and_js_equal_hand_computed_values() -> None:
    p, q = [0.5, 0.3, 0.2], [0.4, 0.4, 0.2]
    # PSI = (0.5-0.4) ln(0.5/0.4) + (0.3-0.4) ln(0.3/0.4) + 0 = 0.1 x 0.223144 + 0.1 x 0.287682
    assert psi(p, q) == pytest.approx(0.0510826, abs=1e-7)
    # m = (0.45, 0.35, 0.2); KL(p||m) = 0.5 log2(0.5/0.45) + 0.3 log2(0.3/0.35) = 0.0092839
    # KL(q||m) = 0.4 log2(0.4/0.45) + 0.4 log2(0.4/0.35) = 0.0090880; JS = mean = 0.0091860
    assert js_divergence(p, q) == pytest.approx(0.0091860, abs=1e-6)
    assert psi(p, p) == 0 and js_divergence(p, p) == pytest.approx(0, abs=1e-12)
    # disjoint supports: JS is 1 bit; PSI uses the epsilon for the empty bins
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    e = PSI_EPSILON
    assert psi([1, 0], [0, 1]) == pytest.approx(2 * (1 - e) * math.log(1 / e))


def frame(rows: list[dict]) -> pl.DataFrame:
    return records.conform(pl.DataFrame(rows, infer_schema_length=None))


def labelled(labels: list[str], split_name: str = "train") -> list[dict]:
    return [{"record_id": f"{split_name}{i}", "source": "tickets", "source_key": str(i),
             "text": f"ticket {i}", "label": lab, "split": split_name}
            for i, lab in enumerate(labels)]


def reference(labels: list[str], texts: list[str] | None = None) -> pl.DataFrame:
    texts = texts or [f"query {i}" for i in range(len(labels))]
    return frame([{"record_id": f"q{i}", "source": "prod", "source_key": f"Q-{i:03d}",
                   "text": t, "label": lab} for i, (lab, t) in enumerate(zip(labels, texts))])


def test_distribution_report_on_a_small_example() -> None:
    df = frame(labelled(["a"] * 5 + ["b"] * 3 + ["c"] * 2))
    ref = reference(["a"] * 4 + ["b"] * 4 + ["c"] * 2)
    cfg = ReferenceConfig(source="prod", slices=["label"], psi_warn=0.05, psi_error=0.5)
    [row] = distribution_report(df, ref, "classification", cfg)
    assert row["dataset"] == {"a": 0.5, "b": 0.3, "c": 0.2}
    assert row["reference"] == {"a": 0.4, "b": 0.4, "c": 0.2}
    assert row["psi"] == pytest.approx(0.0511, abs=1e-4)
    assert row["js"] == pytest.approx(0.0092, abs=1e-4)
    assert row["status"] == "warn"  # 0.051 >= psi_warn 0.05


def test_coverage_lists_the_least_covered_production_inputs() -> None:
    df = frame([{"record_id": str(i), "source": "t", "source_key": str(i), "split": "train",
                 "text": t, "label": "x"}
                for i, t in enumerate(["how do I reset my password", "my invoice is wrong",
                                       "the sync client is slow"])])
    ref = reference(["x"] * 3, ["reset password", "wrong invoice amount", "cancel my plan today"])
    cfg = ReferenceConfig(source="prod", coverage_threshold=0.2, least_covered=2)
    cover = coverage_report(df, ref, "classification", cfg)
    assert cover["reference"] == 3 and cover["covered"] == 2
    assert cover["coverage"] == pytest.approx(2 / 3, abs=1e-4)
    # "cancel my plan today" shares only "my" with the train inputs
    assert [c["id"] for c in cover["least_covered"]] == ["Q-002", "Q-001"]
    assert cover["least_covered"][0]["similarity"] < 0.2 <= cover["least_covered"][1]["similarity"]


def _coverage_corpus(n_train: int = 400, n_ref: int = 30):
    import random

    rng = random.Random(11)
    words = ("reset password invoice wrong sync client slow cancel plan refund order "
             "delivery login error printer upgrade billing card router backup").split()
    texts = [" ".join(rng.choices(words, k=rng.randint(2, 14))) for _ in range(n_train + n_ref)]
    df = frame([{"record_id": str(i), "source": "t", "source_key": str(i), "split": "train",
                 "text": t, "label": "x"} for i, t in enumerate(texts[:n_train])])
    return df, reference(["x"] * n_ref, texts[n_train:]), texts[:n_train], texts[n_train:]


def test_coverage_is_tf_idf_cosine_of_word_1_2_grams_read_a_block_at_a_time(monkeypatch):
    """The hashed features give the similarities of a vocabulary fitted on both sides
    (TfidfVectorizer, sublinear tf, smoothed idf), and the train inputs are vectorized a
    block at a time (no vocabulary or matrix of every train input), with the same result."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer

    from ftdata_pipeline.stages.split import representativeness as rep

    df, ref, train, queries = _coverage_corpus()
    cfg = ReferenceConfig(source="prod", coverage_threshold=0.5, least_covered=len(queries))
    whole = coverage_report(df, ref, "classification", cfg)

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
    vec.fit(train + queries)
    best = (vec.transform(queries) @ vec.transform(train).T).max(axis=1).toarray().ravel()
    expected = sorted(round(float(b), 4) for b in best)
    assert [c["similarity"] for c in whole["least_covered"]] == pytest.approx(expected, abs=1e-4)
    assert whole["covered"] == int((best >= 0.5).sum()) and 0 < whole["covered"] < len(queries)

    sizes = []
    real = HashingVectorizer.transform
    monkeypatch.setattr(HashingVectorizer, "transform",
                        lambda self, texts: sizes.append(len(texts)) or real(self, texts))
    monkeypatch.setattr(rep, "COVERAGE_BLOCK", 64)
    assert coverage_report(df, ref, "classification", cfg) == whole
    assert max(sizes) == 64 and sum(sizes) == 2 * len(train) + len(queries)


def test_edge_case_quota() -> None:
    df = frame(labelled(["a"] * 10))
    df = df.with_columns(pl.when(pl.col("record_id") == "train0").then(pl.lit("?!"))
                         .otherwise(pl.col("text")).alias("text"))
    ref = reference(["a"] * 4, ["?", "??", "a query", "b query"])
    cfg = ReferenceConfig(source="prod", edge_cases=[
        {"name": "no_words", "pattern": r"^\W*$", "min_share": 0.2}])
    [edge] = edge_case_report(df, ref, "classification", cfg)
    assert edge == {"name": "no_words", "train": 1, "train_share": 0.1, "reference_share": 0.5,
                    "min_share": 0.2, "ok": False}


def recipe(**extra) -> RecipeConfig:
    return RecipeConfig.model_validate({
        "name": "intents", "kind": "classification", "sources": ["tickets"],
        "label": {"method": "rules", "rules": [{"label": "a", "pattern": "x"}],
                  "label_set": ["a", "b"]},
        "exports": {"formats": ["classification_jsonl"]}, **extra,
    })


def test_split_stage_reports_and_the_check_fails_on_a_shifted_reference(tmp_path) -> None:
    topics = ["my password reset fails", "invoice shows a double charge",
              "sync client stuck on upload", "cancel my subscription now", "package never arrived"]
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    rows = [{"record_id": f"r{i}", "source": "tickets", "source_key": str(i),
             "text": f"{topics[i % 5]} since {days[i % 7]} ticket {i}", "label": "a" if i % 2 else "b"}
            for i in range(200)]
    cfg = recipe(reference={"source": "prod", "slices": ["label", "length_bucket"]})
    matching = reference(["a", "b"] * 50,
                         [f"{topics[i % 5]} since {days[i % 3]} query {i}" for i in range(100)])
    shifted = reference(["a"] * 100, ["refund"] * 100)
    good = split(frame(rows).lazy(), cfg, reference=matching)
    bad = split(frame(rows).lazy(), cfg, reference=shifted)
    assert good.stats["representativeness"]["errors"] == []
    assert good.stats["representativeness"]["coverage"]["coverage"] == 1.0
    assert {o.name: o for o in evaluate(cfg, good.stats)}[REPRESENTATIVENESS].passed
    rep = bad.stats["representativeness"]
    assert "label/train" in rep["errors"] and rep["coverage"]["coverage"] == 0.0
    outcome = {o.name: o for o in evaluate(cfg, bad.stats)}[REPRESENTATIVENESS]
    assert not outcome.passed and not outcome.blocking
    # the card shows the table, the plot, coverage and the least-covered ids
    render_card(cfg, {}, [], {}, {"counts": bad.stats["records"], "report": bad.stats}, {}, {},
                tmp_path)
    md = (tmp_path / "README.md").read_text()
    assert "## Representativeness" in md and "| label | train |" in md
    assert "![Dataset vs production](representativeness.png)" in md
    assert (tmp_path / "representativeness.png").stat().st_size > 1000
    assert "| Q-000 | 0 |" in md


GENDER = {"attributes": {"gender": {"groups": {"female": ["she", "her", "woman"],
                                               "male": ["he", "his", "man"]},
                                    "max_ratio": 2.0, "min_mentions": 10}}}


def test_bias_counts_mentions_per_split_and_judges_the_ratio() -> None:
    texts = ["she called about her bill"] * 10 + ["he lost his phone"] * 30 + ["no one"] * 10
    df = frame([{"record_id": str(i), "source": "t", "source_key": str(i), "text": t,
                 "label": "a", "split": "train"} for i, t in enumerate(texts)])
    report = bias_report(df, "classification", BiasConfig.model_validate(GENDER))
    train = report["gender"]["splits"]["train"]
    assert train["mentions"] == {"female": 10, "male": 30} and train["mentioning"] == 40
    assert train["ratio"] == 3.0 and train["status"] == "imbalanced"
    assert report["gender"]["splits"]["test"]["status"] == "too_few"
    # words inside other words do not count ("the", "shell", "manual")
    df2 = frame([{"record_id": "x", "source": "t", "source_key": "x", "text": "the shell manual",
                  "label": "a", "split": "train"}])
    assert bias_report(df2, "classification", BiasConfig.model_validate(GENDER))[
        "gender"]["splits"]["train"]["mentioning"] == 0


def test_bias_check_fails_on_imbalance() -> None:
    texts = ["she called about her bill"] * 10 + ["he lost his phone"] * 40
    rows = [{"record_id": f"r{i:03d}", "source": "t", "source_key": str(i), "text": f"{t} {i}",
             "label": "a"} for i, t in enumerate(texts * 4)]
    cfg = recipe(bias={**GENDER, "block": True})
    result = split(frame(rows).lazy(), cfg)
    outcome = {o.name: o for o in evaluate(cfg, result.stats)}[BIAS_BALANCE]
    assert not outcome.passed and outcome.blocking and "gender/train: ratio" in outcome.description
    balanced = split(frame(rows[0:10] + rows[50:60] + rows[10:30]).lazy(), cfg)
    assert {o.name: o for o in evaluate(cfg, balanced.stats)}[BIAS_BALANCE].passed


def test_a_recipe_reference_must_be_a_reference_source(tmp_path) -> None:
    import shutil
    from pathlib import Path

    import yaml

    from ftdata_pipeline.config.loader import ConfigError, load_project

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "datasets").mkdir()
    shutil.copy(root / "configs" / "sources.yaml", tmp_path / "sources.yaml")
    bad = {"kind": "pretraining", "sources": ["kb_articles"], "exports": {"formats": ["trl_text"]},
           "reference": {"source": "kb_articles"}}
    (tmp_path / "datasets" / "kb.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match="reference.source: 'kb_articles' is not a source with role reference"):
        load_project(tmp_path)
    reads_reference = {**bad, "sources": ["production_queries"], "reference": None}
    (tmp_path / "datasets" / "kb.yaml").write_text(yaml.safe_dump(reads_reference))
    with pytest.raises(ConfigError, match="sources.0: 'production_queries' has role 'reference'"):
        load_project(tmp_path)
