"""OpenAI-style fine-tuning lines (also read by Azure OpenAI and Together): chat and preference."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ftdata_pipeline.formats.common import chat_messages
from ftdata_pipeline.formats.registry import export_format
from ftdata_pipeline.formats.validation import (
    Closed,
    Message,
    empty_texts,
    message_roles,
    message_texts,
    schema_problems,
)


class _ChatLine(Closed):
    messages: list[Message] = Field(min_length=2)


class _Input(Closed):
    messages: list[Message] = Field(min_length=1)


class _PreferenceLine(Closed):
    input: _Input
    preferred_output: list[Message] = Field(min_length=1, max_length=1)
    non_preferred_output: list[Message] = Field(min_length=1, max_length=1)


def chat_rules(messages: Any, prefix: str = "messages") -> list[str]:
    """A system message only first, at least one user turn, the last turn the assistant's."""
    roles = message_roles(messages)
    problems = []
    if "system" in roles[1:]:
        problems.append("role order: 'system' only allowed first")
    if "user" not in roles:
        problems.append("role order: no user turn")
    if roles and roles[-1] != "assistant":
        problems.append(f"role order: last turn is {roles[-1]!r}, expected 'assistant'")
    return problems + empty_texts(message_texts(messages, prefix))


@export_format
class OpenAIChat:
    """``{"messages": [...]}``; a classification record is an instruction answered by its label."""

    NAME = "openai_chat"
    KINDS = ("chat_sft", "classification")
    STRICT = True
    CHAT = True

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        return {"messages": chat_messages(record)}

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        return schema_problems(_ChatLine, example) or chat_rules(example["messages"])


@export_format
class OpenAIPreference:
    """Direct preference optimization lines: input messages, preferred and non-preferred output."""

    NAME = "openai_preference"
    KINDS = ("preference",)
    STRICT = True

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        head = (
            [{"role": "system", "content": record["system"]}]
            if record.get("system") is not None
            else []
        )
        return {
            "input": {"messages": head + [{"role": "user", "content": record["prompt"]}]},
            "preferred_output": [{"role": "assistant", "content": record["chosen"]}],
            "non_preferred_output": [{"role": "assistant", "content": record["rejected"]}],
        }

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        problems = schema_problems(_PreferenceLine, example)
        if problems:
            return problems
        roles = message_roles(example["input"]["messages"])
        if roles[-1] != "user":
            problems.append(f"role order: input ends with {roles[-1]!r}, expected 'user'")
        if "system" in roles[1:]:
            problems.append("role order: 'system' only allowed first")
        for key in ("preferred_output", "non_preferred_output"):
            if example[key][0]["role"] != "assistant":
                problems.append(f"{key}.0.role: expected 'assistant'")
        problems += empty_texts(
            message_texts(example["input"]["messages"], "input.messages")
            + message_texts(example["preferred_output"], "preferred_output")
            + message_texts(example["non_preferred_output"], "non_preferred_output")
        )
        if example["preferred_output"][0]["content"] == example["non_preferred_output"][0]["content"]:
            problems.append("preferred_output: identical to non_preferred_output")
        return problems
