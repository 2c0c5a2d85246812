"""Unit tests of each curation filter on small frames: exact outcomes, scores and details."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import polars as pl
import pytest

from ftdata_pipeline import records
from ftdata_pipeline.config.models import CurateConfig, RecipeConfig, SourceConfig
from ftdata_pipeline.orchestration.checks import LICENCES_ALLOWED, CheckPlan, _licence_result
from ftdata_pipeline.quality.suites import default_expectations
from ftdata_pipeline.stages.curate import curate, normalize_text
from ftdata_pipeline.stages.curation import decontaminate, quality, safety
from ftdata_pipeline.stages.curation.governance import AS_OF_ENV, resolve_as_of

# All optional filters off, so each test switches on exactly the one it checks.
OFF = {
    "quality": {"enabled": False},
    "language": {"enabled": False},
    "harmful": {"enabled": False},
    "near_dedup": {"enabled": False},
}
FORMATS = {"chat_sft": "openai_chat", "pretraining": "trl_text", "preference": "trl_preference"}
EN = (
    "The customer wrote to us because the invoice for this month shows the wrong amount and "
    "they would like to have it corrected before the end of the week"
)


def recipe(kind="pretraining", curate_cfg=None, governance=None) -> RecipeConfig:
    data = {
        "name": "t",
        "kind": kind,
        "sources": ["src"],
        "exports": {"formats": [FORMATS[kind]]},
        "curate": {**OFF, **(curate_cfg or {})},
        "governance": governance or {},
    }
    if kind == "preference":
        data["label"] = {"method": "rankings"}
    return RecipeConfig.model_validate(data)


def frame(rows: list[dict]) -> pl.LazyFrame:
    rows = [{"source": "src", "source_key": r["record_id"], **r} for r in rows]
    return records.conform(pl.DataFrame(rows, infer_schema_length=None)).lazy()


def rules(result) -> dict[str, str]:
    return dict(zip(result.rejected["record_id"], result.rejected["rule"], strict=True))


def accounted(result) -> None:
    assert result.rows_in == result.kept.height + result.rejected.height
    assert result.rejected["record_id"].n_unique() == result.rejected.height
    assert set(result.rejected["stage"].to_list()) <= {"curated"}


def source(licence="internal", retention_days=None) -> SourceConfig:
    return SourceConfig(
        kind="file", path="x.jsonl", format="jsonl", owner="o", licence=licence,
        classification="internal", contains_pii=False, retention_days=retention_days,
    )


# --------------------------------------------------------------------------- normalization


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CafÃ© â€œquotedâ€\x9d itâ€™s Ã¼ber", "Café “quoted” it’s über"),
        ("naÃ¯ve faÃ§ade â€” done", "naïve façade — done"),
        ("Hello there\n\nSent from my iPhone", "Hello there"),
        ("Thanks!\nGet Outlook for Android", "Thanks!"),
        ("Body text\n-- \nJane Doe\nAcme Inc", "Body text"),
        ("Automatic reply: out of office until Monday", ""),
        ("I sent from my desk the form", "I sent from my desk the form"),  # not on its own line
    ],
)
def test_mojibake_and_boilerplate(raw: str, expected: str) -> None:
    assert pl.select(normalize_text(pl.lit(raw), CurateConfig())).item() == expected


def test_boilerplate_list_is_configurable() -> None:
    cfg = CurateConfig(boilerplate_patterns=[r"(?im)^kind regards,?$"])
    text = "Fix it please\nKind regards\nSent from my iPhone"
    # the removed line leaves a paragraph break behind
    assert pl.select(normalize_text(pl.lit(text), cfg)).item() == "Fix it please\n\nSent from my iPhone"
    with pytest.raises(ValueError, match="invalid regular expression"):
        CurateConfig(boilerplate_patterns=["("])
    with pytest.raises(ValueError):
        CurateConfig(quality={"no_such_key": 1})


# ------------------------------------------------------------------------------ governance


def test_licence_gate_rejects_refused_source_and_check_fails() -> None:
    lf = frame(
        [
            {"record_id": "a", "source": "ok_src", "text": "fine text here"},
            {"record_id": "b", "source": "bad_src", "text": "other text here"},
        ]
    )
    sources = {"ok_src": source("internal"), "bad_src": source("CC-BY-NC-4.0")}
    r = curate(lf, recipe(governance={"allowed_licences": ["internal"]}), sources)
    assert rules(r) == {"b": "licence_not_allowed"}
    assert r.rejected["detail"].to_list() == ["licence: CC-BY-NC-4.0"]
    assert r.stats["governance"]["refused_sources"] == {"bad_src": "CC-BY-NC-4.0"}
    accounted(r)
    plan = CheckPlan(key=None, stage="curated", recipe=recipe(), kind="pretraining")  # type: ignore[arg-type]
    assert LICENCES_ALLOWED in [s.name for s in CheckPlan(
        key=records_key(), stage="curated", recipe=recipe(), kind="pretraining").specs()]
    failed = _licence_result(plan, r.stats["governance"])
    assert not failed.passed
    assert "bad_src" in failed.description and "CC-BY-NC-4.0" in failed.description
    ok = curate(lf, recipe(governance={"allowed_licences": ["internal", "CC-BY-NC-4.0"]}), sources)
    assert ok.rejected.is_empty() and _licence_result(plan, ok.stats["governance"]).passed


def records_key():
    from dagster import AssetKey

    return AssetKey(["t", "curated"])


def test_retention_uses_explicit_as_of() -> None:
    lf = frame(
        [
            {"record_id": "old", "text": "old text", "created_at": datetime(2025, 1, 1, tzinfo=UTC)},
            {"record_id": "new", "text": "new text", "created_at": datetime(2025, 12, 1, tzinfo=UTC)},
            {"record_id": "undated", "text": "no date"},
        ]
    )
    cfg = recipe(curate_cfg={"as_of": "2026-01-01"})
    r = curate(lf, cfg, {"src": source(retention_days=100)})
    assert rules(r) == {"old": "retention_expired"}
    row = r.rejected.row(0, named=True)
    assert row["score"] == 365.0 and row["detail"] == "retention_days=100 as_of=2026-01-01"
    assert r.stats["governance"]["as_of"] == "2026-01-01"
    # without source configs the gate cannot run: nothing dropped
    assert curate(lf, cfg).rejected.is_empty()


def test_as_of_resolution(monkeypatch) -> None:
    monkeypatch.setenv(AS_OF_ENV, "2024-05-06")
    assert resolve_as_of(CurateConfig()) == (date(2024, 5, 6), "env")
    assert resolve_as_of(CurateConfig(as_of="2020-01-02")) == (date(2020, 1, 2), "recipe")
    monkeypatch.setenv(AS_OF_ENV, "yesterday")
    with pytest.raises(ValueError, match=AS_OF_ENV):
        resolve_as_of(CurateConfig())
    monkeypatch.delenv(AS_OF_ENV)
    assert resolve_as_of(CurateConfig())[1] == "today"


@pytest.mark.parametrize(("require", "expected"), [(False, {"no": "no_consent"}), (True, {"no": "no_consent", "unknown": "no_consent"})])
def test_consent(require: bool, expected: dict) -> None:
    lf = frame(
        [
            {"record_id": "yes", "text": "a text", "consent": True},
            {"record_id": "no", "text": "b text", "consent": False},
            {"record_id": "unknown", "text": "c text", "consent": None},
        ]
    )
    r = curate(lf, recipe(curate_cfg={"require_consent": require}))
    assert rules(r) == expected
    accounted(r)


# --------------------------------------------------------------------------------- quality


def q(**over) -> dict:
    return {"quality": {"enabled": True, **over}}


@pytest.mark.parametrize("batch", [1, 2, 100_000])
def test_repetition_rules(monkeypatch, batch) -> None:
    # n-gram scores are computed per batch of rows: the batch size changes nothing
    monkeypatch.setattr(quality, "_BATCH", batch)
    lf = frame(
        [
            {"record_id": "lines", "text": "\n".join(["buy cheap pills now"] * 5 + [EN])},
            {"record_id": "gram", "text": " ".join(["click here now"] * 8) + " " + EN},
            {"record_id": "ok", "text": EN},
        ]
    )
    r = curate(lf, recipe(curate_cfg=q(repetition_min_words=10)))
    assert rules(r) == {"lines": "duplicate_lines", "gram": "top_2gram"}
    assert r.rejected.filter(pl.col("record_id") == "lines")["score"].item() == pytest.approx(4 / 6)
    kept = r.kept.row(0, named=True)
    assert kept["q_dup_line_frac"] == 0.0 and kept["q_top2gram_frac"] == 0.0
    # below the word floor the same texts pass
    assert curate(lf, recipe(curate_cfg=q(repetition_min_words=1000))).rejected.is_empty()


def test_symbol_alpha_and_stop_word_rules() -> None:
    lf = frame(
        [
            {"record_id": "sym", "text": "# one # two # three # four # five ... six"},
            {"record_id": "num", "text": "order 1234 5678 9012 3456 7890 1111 2222"},
            {"record_id": "nostop", "text": " ".join(["widget gadget sprocket"] * 7)},
            {"record_id": "ok", "text": EN},
        ]
    )
    r = curate(lf, recipe(curate_cfg=q(stop_words_min_words=20)))
    assert rules(r) == {"sym": "symbol_ratio", "num": "alpha_ratio", "nostop": "stop_words"}
    scores = dict(zip(r.rejected["record_id"], r.rejected["score"], strict=True))
    assert scores["sym"] == pytest.approx(5 / 11)  # the leading "# " is a Markdown heading marker
    assert scores["num"] == pytest.approx(1 / 8)
    assert scores["nostop"] == 0.0


def test_prompt_response_bounds_empty_and_refusal() -> None:
    def pair(i, prompt, response):
        return {"record_id": i, "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]}

    lf = frame(
        [
            pair("ok", "How do I reset my password?", "Open Settings and choose Reset password."),
            pair("short_prompt", "Help", "Open Settings and choose Reset password."),
            pair("refusal", "How do I reset my password?", "As an AI language model, I cannot do that."),
            pair("cannot", "Can you fix my invoice?", "I cannot help with that."),
            pair("long_resp", "How do I reset it?", " ".join(["word"] * 30)),
        ]
    )
    cfg = q(prompt={"min_words": 2}, response={"max_words": 20}, repetition_min_words=1000)
    r = curate(lf, recipe("chat_sft", cfg))
    assert rules(r) == {
        "short_prompt": "prompt_too_few_words",
        "refusal": "refusal_response",
        "cannot": "refusal_response",
        "long_resp": "response_too_many_words",
    }
    assert r.kept["q_prompt_words"].to_list() == [6]
    accounted(r)
    # preference data keeps refusals when asked to (they are the rejected side)
    pref = frame([{"record_id": "p", "prompt": "Fix it?", "response": "I cannot help with that.", "rank": 4}])
    kept = curate(pref, recipe("preference", q(drop_refusals=False)))
    assert kept.rejected.is_empty() and kept.kept["q_refusal"].to_list() == [True]


# -------------------------------------------------------------------- language and safety


def test_language_filter_and_short_texts_not_judged() -> None:
    lf = frame(
        [
            {"record_id": "en", "text": EN},
            {"record_id": "es", "text": "Hola, me han cobrado dos veces la suscripción este mes. ¿Pueden devolverme el cargo duplicado? Gracias"},
            {"record_id": "short", "text": "Merci beaucoup"},
        ]
    )
    r = curate(lf, recipe(curate_cfg={"language": {"allowed": ["en"], "min_confidence": 0.5}}))
    assert rules(r) == {"es": "language_not_allowed"}
    assert r.rejected["detail"].to_list() == ["lang=es"]
    assert r.rejected["score"].item() > 0.9
    kept = dict(zip(r.kept["record_id"], r.kept["q_lang"], strict=True))
    assert kept == {"en": "en", "short": None}


def test_harmful_word_list_drop_and_flag() -> None:
    lf = frame([{"record_id": "bad", "text": "you absolute Grommet"}, {"record_id": "ok", "text": "a nice day"}])
    drop = curate(lf, recipe(curate_cfg={"harmful": {"model": False, "words": ["grommet"], "action": "drop"}}))
    assert rules(drop) == {"bad": "harmful_content"} and drop.rejected["score"].item() == 1.0
    flag = curate(lf, recipe(curate_cfg={"harmful": {"model": False, "words": ["grommet"], "action": "flag"}}))
    assert flag.rejected.is_empty()
    assert dict(zip(flag.kept["record_id"], flag.kept["q_harmful_flag"], strict=True)) == {"bad": True, "ok": False}
    assert flag.stats["harmful_flagged"] == 1


def test_harmful_model_scores_do_not_depend_on_the_batch(monkeypatch) -> None:
    texts = ["you are a fucking idiot", "Thank you for the quick refund", "", "shut up", "ok"] * 3
    whole = safety.model_scores(texts)
    monkeypatch.setattr(safety, "_BATCH", 2)
    assert safety.model_scores(texts).tolist() == whole.tolist()
    assert whole.max() > 0.8 > whole.min()


def test_harmful_model_scores() -> None:
    lf = frame([{"record_id": "bad", "text": "you are a fucking idiot, shut up"}, {"record_id": "ok", "text": "Thank you for the quick refund"}])
    r = curate(lf, recipe(curate_cfg={"harmful": {"threshold": 0.8, "action": "drop"}}))
    assert rules(r) == {"bad": "harmful_content"}
    assert r.kept["q_harm"].item() < 0.5


# ------------------------------------------------------------------------ decontamination


@pytest.mark.parametrize("batch", [1, 2, 50_000])
def test_decontamination_long_and_short_eval_texts(tmp_path, monkeypatch, batch) -> None:
    # Records are matched in batches of rows: the result must not depend on the batch size,
    # and a gram never runs from one record into the next.
    monkeypatch.setattr(decontaminate, "_BATCH", batch)
    long_eval = "what is the fastest way to migrate all of my backups from the old region to the new one"
    evals = [
        {"id": "E1", "prompt": long_eval},
        {"id": "E2", "prompt": "How do I enable two-factor authentication?"},
        {"id": "E3", "prompt": "Hi there"},  # too short to match on its own
    ]
    (tmp_path / "eval.jsonl").write_text("\n".join(json.dumps(e) for e in evals))
    lf = frame(
        [
            # a 13-gram of E1 inside other text
            {"record_id": "ngram", "text": "Quick one: the fastest way to migrate all of my backups from the old region is what"},
            {"record_id": "whole", "text": "Hello. how do I ENABLE two factor authentication, any idea?"},
            {"record_id": "partial", "text": "how do I enable two-factor for my account"},
            {"record_id": "hi", "text": "Hi there, my order is late"},
            # E2 split over two neighbouring records: no match
            {"record_id": "b1", "text": "Tell me how do I enable two"},
            {"record_id": "b2", "text": "factor authentication later"},
        ]
    )
    cfg = {"decontamination": {"eval_sets": [{"path": "eval.jsonl", "fields": ["prompt"]}], "ngram": 13, "min_eval_words": 5}}
    r = curate(lf, recipe(curate_cfg=cfg), root=tmp_path)
    assert rules(r) == {"ngram": "contaminated", "whole": "contaminated"}
    assert dict(zip(r.rejected["record_id"], r.rejected["detail"], strict=True)) == {"ngram": "E1", "whole": "E2"}
    assert r.stats["decontamination"] == {"eval_items": 3}
    with pytest.raises(FileNotFoundError):
        curate(lf, recipe(curate_cfg={"decontamination": {"eval_sets": [{"path": "nope.jsonl"}]}}), root=tmp_path)


# ------------------------------------------------------------------------ checks and suite


def test_curated_suite_has_score_thresholds() -> None:
    cfg = recipe(curate_cfg={"language": {"allowed": ["en", "de"], "min_confidence": 0.7}, "harmful": {"threshold": 0.8, "action": "drop"}, "near_dedup": {"enabled": True}})
    exps = {(e.expectation, e.kwargs.get("column")): e.kwargs for e in default_expectations("curated", "pretraining", cfg)}
    assert exps[("ExpectColumnValuesToBeInSet", "q_lang_allowed")]["value_set"] == [True]
    assert exps[("ExpectColumnValuesToBeBetween", "q_harm")] == {"column": "q_harm", "min_value": 0, "max_value": 0.8, "strict_max": True}
    assert ("ExpectColumnValuesToBeUnique", "dup_cluster_id") in exps
    off = default_expectations("curated", "pretraining", recipe())
    assert not [e for e in off if str(e.kwargs.get("column", "")).startswith("q_")]
