"""Exports right for their trainer: classification as chat, per-target validators, rejects,
and every written file loading with Hugging Face ``datasets``' JSON loader."""

from __future__ import annotations

import json

import polars as pl
import pytest

from ftdata_pipeline.config.models import ExportConfig, RecipeConfig
from ftdata_pipeline.formats import FORMAT_NAMES, FORMATS_BY_NAME
from ftdata_pipeline.formats.writer import (
    read_manifest,
    validate_export_files,
    verify_exports,
    write_exports,
)
from ftdata_pipeline.records import MESSAGE, conform

LABELS = ["billing", "shipping"]


def _classification_recipe(formats, instruction=None) -> RecipeConfig:
    return RecipeConfig.model_validate(
        {"name": "intents", "kind": "classification", "sources": ["tickets"],
         "label": {"method": "source", "label_set": LABELS},
         "exports": {"formats": formats, **({"instruction": instruction} if instruction else {})}}
    )


def _tickets(n: int = 12) -> pl.DataFrame:
    # Tickets carry a prompt/response (customer message, agent reply) besides text and label,
    # as the demo's support tickets do: the chat export must answer with the label anyway.
    return conform(pl.DataFrame({
        "record_id": [f"t{i:02d}" for i in range(n)],
        "source": ["tickets"] * n,
        "source_key": [str(i) for i in range(n)],
        "text": [f"Ticket {i}: my parcel or my invoice" for i in range(n)],
        "prompt": [f"Ticket {i}: my parcel or my invoice" for i in range(n)],
        "response": [f"Agent reply {i}" for i in range(n)],
        "label": [LABELS[i % 2] for i in range(n)],
        "split": ["train", "train", "validation", "test"] * (n // 4),
    }))


def _lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text("utf-8").splitlines()]


def test_the_config_list_of_formats_is_the_registry():
    assert set(FORMAT_NAMES) == set(FORMATS_BY_NAME)
    allowed = ExportConfig.model_fields["formats"].annotation.__args__[0].__args__
    assert set(allowed) == set(FORMATS_BY_NAME)


def test_classification_chat_export_carries_the_label_after_the_instruction(tmp_path):
    df = _tickets()
    chat_formats = ["openai_chat", "trl_messages", "bedrock_conversation", "sharegpt"]
    recipe = _classification_recipe(
        ["classification_jsonl", *chat_formats], instruction="Give the ticket's intent."
    )
    out = tmp_path / "intents"
    manifest = write_exports(df, recipe, out, config_hash="h")
    assert manifest["rejected"]["records"] == 0
    label_of = dict(zip(df["record_id"], df["label"], strict=True))
    text_of = dict(zip(df["record_id"], df["text"], strict=True))
    carried = 0
    for split in ("train", "validation", "test"):
        ids = [p["id"] for p in _lines(out / "openai_chat" / f"{split}.provenance.jsonl")]
        for rid, line in zip(ids, _lines(out / "openai_chat" / f"{split}.jsonl"), strict=True):
            assert line["messages"] == [
                {"role": "user", "content": f"Give the ticket's intent.\n\n{text_of[rid]}"},
                {"role": "assistant", "content": label_of[rid]},
            ]
            carried += 1
        for line in _lines(out / "sharegpt" / f"{split}.jsonl"):
            assert line["conversations"][-1] == {"from": "gpt", "value": label_of[line["id"]]}
    assert carried == df.height
    assert "Agent reply" not in "".join(p.read_text() for p in out.rglob("*.jsonl"))


def test_default_instruction_names_the_label_set(tmp_path):
    out = tmp_path / "intents"
    write_exports(_tickets(4), _classification_recipe(["trl_messages"]), out, config_hash="h")
    first = _lines(out / "trl_messages" / "train.jsonl")[0]["messages"][0]["content"]
    assert first.startswith("Classify the following text. Answer with exactly one label from: "
                            "billing, shipping.")


def _chat_frame(answers: list[str]) -> pl.DataFrame:
    n = len(answers)
    return conform(pl.DataFrame(
        {
            "record_id": [f"c{i}" for i in range(n)],
            "source": ["chats"] * n,
            "source_key": [str(i) for i in range(n)],
            "messages": [[{"role": "user", "content": "How do I add a user?"},
                          {"role": "assistant", "content": a}] for a in answers],
            "split": ["train"] * n,
        },
        schema_overrides={"messages": pl.List(MESSAGE)},
    ))


def test_nova_reserved_word_is_rejected_with_its_reason_and_never_written(tmp_path):
    recipe = RecipeConfig.model_validate(
        {"name": "chat", "kind": "chat_sft", "sources": ["chats"],
         "exports": {"formats": ["bedrock_conversation", "trl_messages"]}}
    )
    df = _chat_frame(["Call addUser: with the e-mail.", "Open Settings, then Users.",
                      "Type [EOS] at the end."])
    out = tmp_path / "chat"
    manifest = write_exports(df, recipe, out, config_hash="h")
    assert manifest["splits"] == {"train": 1}
    assert manifest["rejected"] == {"records": 2, "by_format": {"bedrock_conversation": 2}}
    written = "".join(p.read_text() for p in out.rglob("*.jsonl"))
    assert "addUser:" not in written and "[EOS]" not in written
    # left out of every format, so line numbers still agree across a split's files
    assert len(_lines(out / "trl_messages" / "train.jsonl")) == 1
    assert validate_export_files(out)["invalid"] == 0


def test_rejected_records_come_back_with_reason_from_the_staging_api(tmp_path):
    from ftdata_pipeline.formats.writer import stage_exports

    recipe = RecipeConfig.model_validate(
        {"name": "chat", "kind": "chat_sft", "sources": ["chats"],
         "exports": {"formats": ["bedrock_conversation"]}}
    )
    staged = stage_exports(_chat_frame(["Call addUser: now.", "Fine."]), recipe,
                           tmp_path / "chat", config_hash="h")
    try:
        assert staged.kept["record_id"].to_list() == ["c1"]
        rej = staged.rejected.select("record_id", "stage", "rule", "detail").to_dicts()
        assert rej == [{
            "record_id": "c0", "stage": "exports", "rule": "format_invalid",
            "detail": "bedrock_conversation: messages.1.content.0.text: reserved word 'User:'",
        }]
        assert "messages" in staged.rejected.columns  # the full row is kept, nothing lost
        assert not (tmp_path / "chat").exists()  # nothing published before publish()
    finally:
        staged.discard()


U = {"role": "user", "content": "q"}
A = {"role": "assistant", "content": "a"}
S = {"role": "system", "content": "s"}


def _bedrock(*roles_texts, system=None):
    line = {"schemaVersion": "bedrock-conversation-2024",
            "messages": [{"role": r, "content": [{"text": t}]} for r, t in roles_texts]}
    if system is not None:
        line["system"] = [{"text": system}]
    return line


VIOLATIONS = [
    ("openai_chat", {"messages": [U, A], "weight": 1}, "weight: Extra inputs are not permitted"),
    ("openai_chat", {"messages": [U, S, A]}, "'system' only allowed first"),
    ("openai_chat", {"messages": [A, U]}, "last turn is 'user'"),
    ("openai_chat", {"messages": [U, {"role": "assistant", "content": " "}]},
     "messages.1.content: empty text"),
    ("openai_chat", {"messages": [U, {"role": "bot", "content": "a"}]}, "messages.1.role"),
    ("openai_preference", {"input": {"messages": [U]}, "preferred_output": [A],
                           "non_preferred_output": [A]}, "identical to non_preferred_output"),
    ("openai_preference", {"input": {"messages": [U]}, "preferred_output": [A, A],
                           "non_preferred_output": [A]}, "preferred_output"),
    ("bedrock_prompt_completion", {"prompt": "p", "completion": ""}, "completion: empty text"),
    ("bedrock_prompt_completion", {"prompt": "p", "completion": "c", "id": "x"},
     "id: Extra inputs are not permitted"),
    ("bedrock_conversation", _bedrock(("assistant", "hi"), ("user", "q"), ("assistant", "a")),
     "first turn is 'assistant'"),
    ("bedrock_conversation", _bedrock(("user", "q"), ("user", "q2"), ("assistant", "a")),
     "two 'user' turns in a row"),
    ("bedrock_conversation", _bedrock(("user", "q"), ("assistant", "a"), system="System: be nice"),
     "system.0.text: reserved word 'System:'"),
    ("bedrock_conversation", _bedrock(("user", "see <image>"), ("assistant", "Bot: ok")),
     "reserved word '<image>'"),
    ("bedrock_conversation", {**_bedrock(("user", "q"), ("assistant", "a")), "schemaVersion": "x"},
     "schemaVersion"),
    ("trl_messages", {"messages": [U]}, "messages"),
    ("trl_prompt_completion", {"prompt": [U], "completion": [U]}, "only assistant turns"),
    ("trl_preference", {"prompt": "p", "chosen": "c", "rejected": "c"}, "identical to rejected"),
    ("trl_text", {"text": ""}, "text: empty text"),
    ("trl_text", {"text": 3}, "text: Input should be a valid string"),
    ("alpaca", {"instruction": "", "input": "", "output": "o"}, "instruction: empty text"),
    ("alpaca", {"instruction": "i", "input": "", "output": "o", "history": [["a"]]}, "history"),
    ("sharegpt", {"conversations": [{"from": "gpt", "value": "a"}, {"from": "human", "value": "q"}]},
     "first turn is 'gpt'"),
    ("sharegpt", {"conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "a"}]},
     "conversations.1.from"),
    ("classification_jsonl", {"text": "t"}, "label: Field required"),
    ("trl_preference_implicit", {"chosen": [U, A], "rejected": [U, A]}, "identical to rejected"),
    ("trl_preference_implicit", {"chosen": [U, A], "rejected": [S, U, A | {"content": "b"}]},
     "prompt turns differ"),
    ("trl_kto", {"prompt": [U], "completion": [A], "label": "yes"}, "label: Input should be"),
    ("trl_kto", {"prompt": [U, A], "completion": [A], "label": True}, "prompt ends with"),
    ("trl_prompt_only", {"prompt": [U, {"role": "user", "content": ""}]}, "prompt.1.content: empty"),
    ("vertex_preference", {"contents": [{"role": "user", "parts": [{"text": "q"}]}],
                           "completions": [
                               {"score": 1, "completion": {"role": "model", "parts": [{"text": "a"}]}},
                               {"score": 1, "completion": {"role": "model", "parts": [{"text": "b"}]}},
                           ]}, "scores must differ"),
    ("vertex_preference", {"contents": [{"role": "model", "parts": [{"text": "q"}]}],
                           "completions": []}, "completions"),
    ("llamafactory_ranking", {"instruction": "i", "input": "", "chosen": "c", "rejected": "r",
                              "id": "x"}, "id: Extra inputs are not permitted"),
    ("llamafactory_ranking", {"instruction": " ", "input": "", "chosen": "c", "rejected": "r"},
     "instruction: empty text"),
]


@pytest.mark.parametrize(("fmt", "line", "reason"), VIOLATIONS)
def test_validator_names_the_violation(fmt, line, reason):
    problems = FORMATS_BY_NAME[fmt].validate(line)
    assert any(reason in p for p in problems), problems


def test_every_format_has_a_violation_case():
    assert {f for f, _, _ in VIOLATIONS} == set(FORMATS_BY_NAME)


def test_format_valid_check_finds_a_tampered_line(tmp_path):
    recipe = RecipeConfig.model_validate(
        {"name": "chat", "kind": "chat_sft", "sources": ["chats"],
         "exports": {"formats": ["bedrock_conversation"]}}
    )
    out = tmp_path / "chat"
    write_exports(_chat_frame(["Fine.", "Good."]), recipe, out, config_hash="h")
    path = out / "bedrock_conversation" / "train.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace("Good.", "Assistant: Good.")
    path.write_text("\n".join(lines) + "\n")
    result = validate_export_files(out)
    assert result["invalid"] == 1
    assert result["problems"] == [
        "bedrock_conversation/train.jsonl:2: messages.1.content.0.text: reserved word 'Assistant:'"
    ]
    assert verify_exports(out) == ["bedrock_conversation/train.jsonl: sha256 mismatch"]


def test_every_export_file_loads_with_hugging_face_datasets(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cases = {
        "chat_sft": (_chat_frame(["Sure.", "Yes.", "No."]).with_columns(
                         pl.Series("label", ["desirable", "undesirable", "desirable"])),
                     ["openai_chat", "trl_messages", "trl_prompt_completion", "alpaca",
                      "sharegpt", "bedrock_prompt_completion", "bedrock_conversation",
                      "trl_kto", "trl_prompt_only"]),
        "classification": (_tickets(), ["classification_jsonl", "openai_chat"]),
        "preference": (conform(pl.DataFrame({
            "record_id": ["p1", "p2"], "source": ["r", "r"], "source_key": ["1", "2"],
            "prompt": ["Q1", "Q2"], "chosen": ["good", "fine"], "rejected": ["bad", "poor"],
            "split": ["train", "test"]})), ["openai_preference", "trl_preference",
                                            "trl_preference_implicit", "vertex_preference",
                                            "llamafactory_ranking"]),
        "pretraining": (conform(pl.DataFrame({
            "record_id": ["d1"], "source": ["docs"], "source_key": ["1"],
            "text": ["A document."], "split": ["train"]})), ["trl_text"]),
    }
    covered = set()
    for kind, (df, formats) in cases.items():
        extra = {"label": {"method": "source", "label_set": LABELS}} if kind == "classification" \
            else {"label": {"method": "source"}} if kind == "preference" else {}
        recipe = RecipeConfig.model_validate(
            {"name": kind, "kind": kind, "sources": ["s"], "exports": {"formats": formats},
             **extra})
        out = tmp_path / kind
        manifest = write_exports(df, recipe, out, config_hash="h")
        for entry in read_manifest(out)["files"]:
            if entry["split"] == "all":  # a format's extra file (dataset_info.json), no examples
                continue
            loaded = datasets.load_dataset(
                "json", data_files=str(out / entry["path"]), split="train",
                cache_dir=str(tmp_path / "hf_cache"),
            )
            assert loaded.num_rows == entry["records"], entry["path"]
            covered.add(entry["format"])
        assert manifest["rejected"]["records"] == 0
    assert covered == set(FORMATS_BY_NAME)
