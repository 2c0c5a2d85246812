"""Hugging Face TRL dataset formats: messages, prompt/completion, preference and plain text."""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictStr

from ftdata_pipeline.formats.common import chat_messages, conversation, last_assistant_index
from ftdata_pipeline.formats.openai import chat_rules
from ftdata_pipeline.formats.registry import export_format
from ftdata_pipeline.formats.validation import (
    Message,
    Open,
    empty_texts,
    message_roles,
    message_texts,
    schema_problems,
    text_pair_problems,
)


class _MessagesLine(Open):
    messages: list[Message] = Field(min_length=2)


class _PromptCompletionLine(Open):
    prompt: list[Message] = Field(min_length=1)
    completion: list[Message] = Field(min_length=1)


class _PreferenceLine(Open):
    prompt: StrictStr
    chosen: StrictStr
    rejected: StrictStr


class _TextLine(Open):
    text: StrictStr


@export_format
class Messages:
    """Conversational language modeling: ``{"messages": [...]}`` (SFTTrainer)."""

    NAME = "trl_messages"
    KINDS = ("chat_sft", "classification")
    STRICT = False
    CHAT = True

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        return {"messages": chat_messages(record)}

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        return schema_problems(_MessagesLine, example) or chat_rules(example["messages"])


@export_format
class PromptCompletion:
    """Conversational prompt-completion: the loss then covers only the final assistant turn."""

    NAME = "trl_prompt_completion"
    KINDS = ("chat_sft", "classification")
    STRICT = False
    CHAT = True

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        system, turns = conversation(record)
        last = last_assistant_index(turns, record)
        head = [{"role": "system", "content": system}] if system is not None else []
        return {"prompt": head + turns[:last], "completion": [turns[last]]}

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        problems = schema_problems(_PromptCompletionLine, example)
        if problems:
            return problems
        if any(r != "assistant" for r in message_roles(example["completion"])):
            problems.append("completion: only assistant turns allowed")
        if "user" not in message_roles(example["prompt"]):
            problems.append("prompt: no user turn")
        return problems + empty_texts(
            message_texts(example["prompt"], "prompt")
            + message_texts(example["completion"], "completion")
        )


@export_format
class Preference:
    """Standard explicit-prompt preference lines for DPO and reward modeling."""

    NAME = "trl_preference"
    KINDS = ("preference",)
    STRICT = False

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        return {
            "prompt": record["prompt"],
            "chosen": record["chosen"],
            "rejected": record["rejected"],
        }

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        return text_pair_problems(_PreferenceLine, example, "prompt")


@export_format
class Text:
    """Continued pre-training: ``{"text": ...}``."""

    NAME = "trl_text"
    KINDS = ("pretraining",)
    STRICT = False

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        return {"text": record["text"]}

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        return schema_problems(_TextLine, example) or empty_texts([("text", example["text"])])
