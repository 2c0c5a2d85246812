"""Hugging Face TRL dataset formats: messages, prompt/completion, preference and plain text."""

from __future__ import annotations

from typing import Any

from ftdata_pipeline.formats.common import chat_messages, conversation, last_assistant_index


class Messages:
    """Conversational language modeling: ``{"messages": [...]}`` (SFTTrainer)."""

    NAME = "trl_messages"
    KINDS = ("chat_sft",)
    STRICT = False

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        return {"messages": chat_messages(record)}


class PromptCompletion:
    """Conversational prompt-completion: the loss then covers only the final assistant turn."""

    NAME = "trl_prompt_completion"
    KINDS = ("chat_sft",)
    STRICT = False

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        system, turns = conversation(record)
        last = last_assistant_index(turns, record)
        head = [{"role": "system", "content": system}] if system is not None else []
        return {"prompt": head + turns[:last], "completion": [turns[last]]}


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


class Text:
    """Continued pre-training: ``{"text": ...}``."""

    NAME = "trl_text"
    KINDS = ("pretraining",)
    STRICT = False

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        return {"text": record["text"]}
