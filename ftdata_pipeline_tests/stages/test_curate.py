"""Tests for the curated stage: shaping, normalization, filters, exact dedup, determinism."""

from __future__ import annotations

import polars as pl
import pytest

from ftdata_pipeline import records
from ftdata_pipeline.config.models import CurateConfig, RecipeConfig
from ftdata_pipeline.stages.curate import curate, normalize_text

FORMATS = {
    "chat_sft": "openai_chat",
    "classification": "classification_jsonl",
    "preference": "trl_preference",
    "pretraining": "trl_text",
}


def recipe(kind: str, curate_cfg: dict | None = None, **extra) -> RecipeConfig:
    data = {
        "name": "demo",
        "kind": kind,
        "sources": ["src"],
        "exports": {"formats": [FORMATS[kind]]},
        "curate": curate_cfg or {},
        **extra,
    }
    if kind == "classification":
        data["label"] = {
            "method": "rules",
            "rules": [{"label": "x", "pattern": "x"}],
            "label_set": ["x"],
        }
    if kind == "preference":
        data["label"] = {"method": "rankings"}
    return RecipeConfig.model_validate(data)


def frame(rows: list[dict]) -> pl.DataFrame:
    """Canonical records; source/source_key default from record_id."""
    rows = [{"source": "src", "source_key": r["record_id"], **r} for r in rows]
    return records.conform(pl.DataFrame(rows, infer_schema_length=None))


def msgs(*turns: tuple[str, str]) -> list[dict]:
    return [{"role": role, "content": content} for role, content in turns]


def rules_by_id(result) -> dict[str, str]:
    return dict(zip(result.rejected["record_id"], result.rejected["rule"], strict=True))


def assert_accounted(result) -> None:
    assert result.rows_in == result.kept.height + result.rejected.height
    assert set(result.kept["record_id"]).isdisjoint(result.rejected["record_id"])


# ------------------------------------------------------------------------------- normalization


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<p>Hello <b>world</b></p>", "Hello world"),
        ("a &amp; b &lt;c&gt; &quot;d&quot; it&#39;s", 'a & b <c> "d" it\'s'),
        ("&amp;lt;", "&lt;"),  # decoded once, not twice
        ("if a < b and c > d", "if a < b and c > d"),  # not a tag
        ("x<script>alert(1)</script>y<style>p{}</style>z", "xyz"),
        ("line<br>next<br/>last", "line\nnext\nlast"),
        ("a<!-- hidden -->b", "ab"),
        ("non\u00a0breaking&nbsp;space", "non breaking space"),
        ("thin\u2009and\u3000ideographic", "thin and ideographic"),
        ("Cafe\u0301", "Caf\u00e9"),  # NFC composes e + combining acute
        # outer whitespace goes; spaces and tabs inside a line are layout (tables, TSV): kept
        ("  many   spaces\tand\ttabs  ", "many   spaces\tand\ttabs"),
        ("p1 \n\n\n\n  p2\r\nline", "p1\n\n  p2\nline"),
        ("zero\u200bwidth", "zerowidth"),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    out = pl.select(normalize_text(pl.lit(raw), CurateConfig())).item()
    assert out == expected


def test_normalize_flags_off_leave_text_alone() -> None:
    cfg = CurateConfig(normalize_unicode=False, strip_markup=False, collapse_whitespace=False)
    raw = " <b>Cafe\u0301</b>  &amp; "
    assert pl.select(normalize_text(pl.lit(raw), cfg)).item() == raw


def test_normalization_applies_to_all_text_fields_and_message_contents() -> None:
    df = frame(
        [
            {
                "record_id": "a",
                "messages": msgs(("user", "<i>Hi</i>\u00a0there"), ("assistant", "Cafe\u0301 ok ")),
                "system": "  Be brief\u3000",
            },
            {"record_id": "b", "messages": msgs(("user", "clean"), ("assistant", "text"))},
        ]
    )
    result = curate(df.lazy(), recipe("chat_sft"))
    a = result.kept.filter(pl.col("record_id") == "a").to_dicts()[0]
    assert a["messages"] == msgs(("user", "Hi there"), ("assistant", "Caf\u00e9 ok"))
    assert a["system"] == "Be brief"
    assert result.stats["normalized_changed"] == 1


# ------------------------------------------------------------------------------------ shaping


def test_chat_sft_builds_messages_from_prompt_and_response_and_sets_system() -> None:
    df = frame(
        [
            {"record_id": "pr", "prompt": "What is 2+2?", "response": "Four."},
            {
                "record_id": "ms",
                "messages": msgs(("user", "Hello there"), ("assistant", "Hi, how can I help?")),
                "system": "Own system prompt",
            },
            {"record_id": "p_only", "prompt": "No answer here"},
        ]
    )
    result = curate(df.lazy(), recipe("chat_sft", system_prompt="You are helpful."))
    kept = {r["record_id"]: r for r in result.kept.to_dicts()}
    assert kept["pr"]["messages"] == msgs(("user", "What is 2+2?"), ("assistant", "Four."))
    assert kept["pr"]["system"] == "You are helpful."
    # A system prompt mapped from the source wins over the recipe default.
    assert kept["ms"]["system"] == "Own system prompt"
    assert rules_by_id(result) == {"p_only": "missing_content"}


# ------------------------------------------------------------------------------------ filters


def test_chat_sft_filters_reject_with_first_failing_rule() -> None:
    ok = msgs(("user", "Tell me a joke please"), ("assistant", "Why did the chicken cross?"))
    df = frame(
        [
            {"record_id": "ok", "messages": ok},
            {"record_id": "none", "messages": None},
            {"record_id": "empty_list", "messages": []},
            {"record_id": "blank", "messages": msgs(("user", "<p> </p>"), ("assistant", "&nbsp;"))},
            {"record_id": "short", "messages": msgs(("user", "hi"), ("assistant", "yo"))},
            {"record_id": "long", "messages": msgs(("user", "x" * 60), ("assistant", "y" * 50))},
            {"record_id": "one_turn", "messages": msgs(("assistant", "A lone long answer"))},
            {"record_id": "user_last", "messages": msgs(("assistant", "Hello there friend"), ("user", "Thanks a lot"))},
            {"record_id": "blank_turn", "messages": msgs(("user", "A question here?"), ("assistant", "  "))},
        ]
    )
    cfg = {"min_chars": 10, "max_chars": 100, "min_words": 2, "min_turns": 2}
    result = curate(df.lazy(), recipe("chat_sft", cfg))
    assert result.kept["record_id"].to_list() == ["ok"]
    assert rules_by_id(result) == {
        "blank": "empty",
        "blank_turn": "empty_turn",
        "empty_list": "missing_content",
        "long": "too_long",
        "none": "missing_content",
        "one_turn": "too_few_turns",
        "short": "too_short",
        "user_last": "last_turn_not_assistant",
    }
    scores = dict(zip(result.rejected["record_id"], result.rejected["score"], strict=True))
    assert scores["short"] == 4.0 and scores["long"] == 110.0 and scores["one_turn"] == 1.0
    assert scores["blank_turn"] == 1.0
    assert result.rejected.filter(pl.col("record_id") == "user_last")["detail"].item() == (
        "last role: user"
    )
    assert set(result.rejected["stage"]) == {"curated"}
    steps = result.stats["steps"]
    assert list(steps) == [
        "shape",
        "normalize",
        "no_consent",  # governance gates run first (licence/retention need source configs)
        "missing_content",
        "empty",
        "too_short",
        "too_long",
        "too_few_words",
        "too_few_turns",
        "last_turn_not_assistant",
        "empty_turn",
        "exact_duplicate",
        # quality heuristics, language, stop words, harmful content, near duplicates
        "empty_response",
        "refusal_response",
        "duplicate_lines",
        "top_2gram",
        "top_3gram",
        "top_4gram",
        "symbol_ratio",
        "alpha_ratio",
        "language_not_allowed",
        "stop_words",
        "harmful_content",
        "near_duplicate",
    ]
    assert steps["missing_content"] == {"in": 9, "dropped": 2}
    assert steps["empty"] == {"in": 7, "dropped": 1}
    assert steps["too_few_words"] == {"in": 4, "dropped": 0}
    assert steps["exact_duplicate"] == {"in": 1, "dropped": 0}
    assert sum(s["dropped"] for s in steps.values()) == result.rows_rejected
    assert_accounted(result)


def test_assistant_last_can_be_switched_off() -> None:
    df = frame([{"record_id": "u", "messages": msgs(("assistant", "Hello"), ("user", "Bye now"))}])
    result = curate(df.lazy(), recipe("chat_sft", {"require_assistant_last": False}))
    assert result.kept["record_id"].to_list() == ["u"]


def test_text_kinds_filter_on_text_and_words() -> None:
    df = frame(
        [
            {"record_id": "ok", "text": "three good words"},
            {"record_id": "null", "text": None},
            {"record_id": "empty", "text": " <br> "},
            {"record_id": "few_words", "text": "onelongword"},
        ]
    )
    for kind in ("pretraining", "classification"):
        result = curate(df.lazy(), recipe(kind, {"min_words": 2}))
        assert result.kept["record_id"].to_list() == ["ok"]
        assert rules_by_id(result) == {
            "empty": "empty",
            "few_words": "too_few_words",
            "null": "missing_content",
        }
        assert result.rejected.filter(pl.col("record_id") == "few_words")["score"].item() == 1.0


def test_preference_needs_prompt_and_response_and_groups_by_prompt() -> None:
    df = frame(
        [
            {"record_id": "r1", "prompt": "Name a fruit", "response": "Apple", "rank": 1},
            {"record_id": "r2", "prompt": "name  a FRUIT", "response": "Carrot", "rank": 2},
            {"record_id": "r3", "prompt": "Q", "response": "A", "rank": 1, "conversation_id": "p9"},
            {"record_id": "no_resp", "prompt": "Name a fruit", "response": None},
            {"record_id": "blank_prompt", "prompt": " ", "response": "Pear"},
        ]
    )
    result = curate(df.lazy(), recipe("preference"))
    assert result.kept["record_id"].to_list() == ["r1", "r2", "r3"]
    assert rules_by_id(result) == {"blank_prompt": "empty", "no_resp": "missing_content"}
    conv = dict(zip(result.kept["record_id"], result.kept["conversation_id"], strict=True))
    # Same prompt up to case/spacing -> same prompt id; a source-given id is kept.
    assert conv["r1"] == conv["r2"] and len(conv["r1"]) == 16
    assert conv["r3"] == "p9"


# -------------------------------------------------------------------------------------- dedup


def test_exact_dedup_keeps_first_by_source_and_key() -> None:
    df = frame(
        [
            {"record_id": "z_first", "source": "a_src", "source_key": "1", "text": "Same  TEXT here"},
            {"record_id": "a_second", "source": "a_src", "source_key": "2", "text": "same text <b>here</b>"},
            {"record_id": "b_third", "source": "b_src", "source_key": "0", "text": "same text here"},
            {"record_id": "other", "source": "b_src", "source_key": "1", "text": "different text"},
        ]
    )
    result = curate(df.lazy(), recipe("pretraining"))
    assert result.kept["record_id"].to_list() == ["other", "z_first"]  # sorted by record_id
    dups = result.rejected.select("record_id", "rule", "detail", "dup_cluster_id").to_dicts()
    assert dups == [
        {"record_id": "a_second", "rule": "exact_duplicate", "detail": "z_first", "dup_cluster_id": "z_first"},
        {"record_id": "b_third", "rule": "exact_duplicate", "detail": "z_first", "dup_cluster_id": "z_first"},
    ]
    kept = {r["record_id"]: r for r in result.kept.to_dicts()}
    assert kept["z_first"]["dup_cluster_id"] == "z_first"
    assert kept["other"]["dup_cluster_id"] == "other"
    assert len(kept["z_first"]["content_hash"]) == 64
    assert kept["z_first"]["content_hash"] == result.rejected["content_hash"][0]
    assert kept["z_first"]["content_hash"] != kept["other"]["content_hash"]
    assert_accounted(result)


def test_chat_dedup_uses_roles_and_preference_dedup_uses_prompt_and_response() -> None:
    chat = frame(
        [
            {"record_id": "c1", "messages": msgs(("user", "hi there"), ("assistant", "hello you"))},
            {"record_id": "c2", "messages": msgs(("user", "Hi there"), ("assistant", "Hello you"))},
            {"record_id": "c3", "messages": msgs(("assistant", "hi there"), ("assistant", "hello you"))},
        ]
    )
    result = curate(chat.lazy(), recipe("chat_sft"))
    assert result.kept["record_id"].to_list() == ["c1", "c3"]
    assert rules_by_id(result) == {"c2": "exact_duplicate"}

    pref = frame(
        [
            {"record_id": "p1", "prompt": "Question one", "response": "Same answer"},
            {"record_id": "p2", "prompt": "Question two", "response": "Same answer"},
            {"record_id": "p3", "prompt": "question one", "response": "same answer"},
        ]
    )
    result = curate(pref.lazy(), recipe("preference"))
    assert result.kept["record_id"].to_list() == ["p1", "p2"]
    assert rules_by_id(result) == {"p3": "exact_duplicate"}


def test_dedup_none_keeps_duplicates_in_one_cluster() -> None:
    df = frame(
        [
            {"record_id": "b", "source_key": "2", "text": "dup text"},
            {"record_id": "a", "source_key": "1", "text": "Dup text"},
            {"record_id": "c", "source_key": "3", "text": "unique text"},
        ]
    )
    result = curate(df.lazy(), recipe("pretraining", {"dedup": "none"}))
    assert result.rejected.is_empty()
    clusters = dict(zip(result.kept["record_id"], result.kept["dup_cluster_id"], strict=True))
    assert clusters == {"a": "a", "b": "a", "c": "c"}
    assert "exact_duplicate" not in result.stats["steps"]


# ----------------------------------------------------------------------- contract, determinism


def test_output_schema_extras_and_rejected_rows_keep_their_columns() -> None:
    df = frame(
        [
            {"record_id": "k", "text": "keep me", "lang": "en"},
            {"record_id": "r", "text": None, "lang": "fr"},
        ]
    )
    result = curate(df.lazy(), recipe("pretraining"))
    # canonical columns, then the source's extras, then the kept quality scores
    n = len(records.RECORD_SCHEMA)
    assert result.kept.columns[: n + 1] == [*records.RECORD_SCHEMA, "lang"]
    assert all(c.startswith("q_") for c in result.kept.columns[n + 1 :])
    assert dict(result.kept.select(records.RECORD_SCHEMA.keys()).schema) == records.RECORD_SCHEMA
    assert result.rejected.columns == [*records.RECORD_SCHEMA, "lang", "stage", "rule", "score", "detail"]
    assert result.rejected.row(0, named=True)["lang"] == "fr"


def test_empty_input() -> None:
    result = curate(records.empty_records().lazy(), recipe("chat_sft"))
    assert result.rows_in == 0 and result.kept.is_empty() and result.rejected.is_empty()
    assert "rule" in result.rejected.columns


def test_deterministic_and_independent_of_input_order() -> None:
    rows = []
    for i in range(60):
        text = f"document number {i % 25} with <b>markup</b>" if i % 7 else "x"
        rows.append({"record_id": f"id{i:03d}", "source": f"s{i % 3}", "source_key": str(i), "text": text})
    df = frame(rows)
    cfg = recipe("pretraining", {"min_chars": 3})
    first = curate(df.lazy(), cfg)
    again = curate(df.lazy(), cfg)
    shuffled = curate(df.sample(fraction=1.0, shuffle=True, seed=7).lazy(), cfg)
    for other in (again, shuffled):
        assert first.kept.equals(other.kept)
        assert first.rejected.equals(other.rejected)
        assert first.stats == other.stats
    assert first.drop_counts() == {"exact_duplicate": 26, "too_short": 9}
    assert_accounted(first)


def test_every_dataset_kind_names_its_content_fields() -> None:
    # A kind without an entry fails the curated stage with a KeyError at run time.
    from ftdata_pipeline.records import KINDS
    from ftdata_pipeline.stages.curate import _CONTENT_FIELDS

    assert set(_CONTENT_FIELDS) == set(KINDS)
