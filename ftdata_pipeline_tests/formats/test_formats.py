"""Every export format on sample canonical records, compared with the exact expected lines."""

from __future__ import annotations

import pytest

from ftdata_pipeline.formats import FORMATS_BY_NAME
from ftdata_pipeline.formats.common import chat_messages
from ftdata_pipeline.formats.writer import example_for

CHAT = {
    "record_id": "r1",
    "source": "chats",
    "source_key": "42",
    "system": "Be brief.",
    "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Reset my password"},
        {"role": "assistant", "content": "Use the link."},
    ],
}
SINGLE = {
    "record_id": "r2",
    "source": "faq",
    "source_key": "7",
    "system": None,
    "messages": [
        {"role": "user", "content": "Opening hours?"},
        {"role": "assistant", "content": "9 to 5."},
    ],
}
CLASSIFICATION = {"record_id": "r3", "text": "Card declined", "label": "billing", "system": None}
PREFERENCE = {"record_id": "r4", "prompt": "Q?", "chosen": "Good", "rejected": "Bad"}
PRETRAINING = {"record_id": "r5", "text": "A document."}

SYS = {"role": "system", "content": "Be brief."}
U1 = {"role": "user", "content": "Hi"}
A1 = {"role": "assistant", "content": "Hello!"}
U2 = {"role": "user", "content": "Reset my password"}
A2 = {"role": "assistant", "content": "Use the link."}

CASES = [
    ("openai_chat", CHAT, {"messages": [SYS, U1, A1, U2, A2]}),
    (
        "openai_chat",
        CLASSIFICATION,
        {
            "messages": [
                {"role": "user", "content": "Route this ticket.\n\nCard declined"},
                {"role": "assistant", "content": "billing"},
            ]
        },
    ),
    (
        "openai_preference",
        PREFERENCE,
        {
            "input": {"messages": [{"role": "user", "content": "Q?"}]},
            "preferred_output": [{"role": "assistant", "content": "Good"}],
            "non_preferred_output": [{"role": "assistant", "content": "Bad"}],
        },
    ),
    ("trl_messages", CHAT, {"messages": [SYS, U1, A1, U2, A2]}),
    ("trl_prompt_completion", CHAT, {"prompt": [SYS, U1, A1, U2], "completion": [A2]}),
    ("trl_preference", PREFERENCE, {"prompt": "Q?", "chosen": "Good", "rejected": "Bad"}),
    ("trl_text", PRETRAINING, {"text": "A document."}),
    (
        "alpaca",
        CHAT,
        {
            "instruction": "Reset my password",
            "input": "",
            "output": "Use the link.",
            "system": "Be brief.",
            "history": [["Hi", "Hello!"]],
        },
    ),
    ("alpaca", SINGLE, {"instruction": "Opening hours?", "input": "", "output": "9 to 5."}),
    (
        "sharegpt",
        CHAT,
        {
            "conversations": [
                {"from": "system", "value": "Be brief."},
                {"from": "human", "value": "Hi"},
                {"from": "gpt", "value": "Hello!"},
                {"from": "human", "value": "Reset my password"},
                {"from": "gpt", "value": "Use the link."},
            ]
        },
    ),
    ("bedrock_prompt_completion", SINGLE, {"prompt": "Opening hours?", "completion": "9 to 5."}),
    (
        "bedrock_prompt_completion",
        CHAT,
        {
            "prompt": "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: Reset my password",
            "completion": "Use the link.",
        },
    ),
    (
        "bedrock_conversation",
        CHAT,
        {
            "schemaVersion": "bedrock-conversation-2024",
            "system": [{"text": "Be brief."}],
            "messages": [
                {"role": "user", "content": [{"text": "Hi"}]},
                {"role": "assistant", "content": [{"text": "Hello!"}]},
                {"role": "user", "content": [{"text": "Reset my password"}]},
                {"role": "assistant", "content": [{"text": "Use the link."}]},
            ],
        },
    ),
    (
        "bedrock_conversation",
        SINGLE,
        {
            "schemaVersion": "bedrock-conversation-2024",
            "messages": [
                {"role": "user", "content": [{"text": "Opening hours?"}]},
                {"role": "assistant", "content": [{"text": "9 to 5."}]},
            ],
        },
    ),
    ("classification_jsonl", CLASSIFICATION, {"text": "Card declined", "label": "billing"}),
]


@pytest.mark.parametrize(("name", "record", "expected"), CASES)
def test_format_output(name, record, expected):
    kind = "classification" if "label" in record else "chat_sft"
    example = example_for(FORMATS_BY_NAME[name], record, kind, "Route this ticket.")
    assert example == expected
    # every expected line is one its trainer accepts
    assert FORMATS_BY_NAME[name].validate(expected) == []


def test_every_registered_format_is_covered():
    from ftdata_pipeline_tests.formats.test_feedback_formats import CASES as FEEDBACK_CASES

    assert {name for name, _, _ in [*CASES, *FEEDBACK_CASES]} == set(FORMATS_BY_NAME)


def test_strictness_and_kinds():
    strict = {n for n, f in FORMATS_BY_NAME.items() if f.STRICT}
    assert strict == {
        "openai_chat",
        "openai_preference",
        "bedrock_prompt_completion",
        "bedrock_conversation",
        "vertex_preference",
        "llamafactory_ranking",
    }
    assert FORMATS_BY_NAME["openai_chat"].KINDS == ("chat_sft", "classification")


def test_system_message_inside_messages_is_kept_first_and_extra_keys_dropped():
    record = {
        "system": None,
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "U", "extra": 1},
            {"role": "assistant", "content": "A"},
        ],
    }
    assert chat_messages(record) == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "A"},
    ]


def test_prompt_response_record_exports_as_one_exchange():
    record = {"messages": None, "system": None, "prompt": "P", "response": "R"}
    assert FORMATS_BY_NAME["trl_prompt_completion"].to_example(record) == {
        "prompt": [{"role": "user", "content": "P"}],
        "completion": [{"role": "assistant", "content": "R"}],
    }


def test_alpaca_history_pairs_greeting_and_joins_repeated_turns():
    record = {
        "system": None,
        "messages": [
            {"role": "assistant", "content": "Welcome"},
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
            {"role": "user", "content": "d"},
            {"role": "assistant", "content": "e"},
        ],
    }
    assert FORMATS_BY_NAME["alpaca"].to_example(record)["history"] == [
        ["", "Welcome"],
        ["a\n\nb", "c"],
    ]


def test_chat_without_assistant_turn_raises_naming_only_the_id():
    record = {"record_id": "r9", "system": None, "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(ValueError) as info:
        FORMATS_BY_NAME["trl_prompt_completion"].to_example(record)
    assert str(info.value) == "record 'r9' has no assistant turn"
