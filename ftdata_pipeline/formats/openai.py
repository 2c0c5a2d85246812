"""OpenAI-style fine-tuning lines (also read by Azure OpenAI and Together): chat and preference."""

from __future__ import annotations

from typing import Any

from ftdata_pipeline.formats.common import chat_messages


class OpenAIChat:
    """``{"messages": [...]}``; a classification record becomes user=text, assistant=label."""

    NAME = "openai_chat"
    KINDS = ("chat_sft", "classification")
    STRICT = True

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        if record.get("messages") or record.get("prompt") is not None:
            return {"messages": chat_messages(record)}
        head = (
            [{"role": "system", "content": record["system"]}]
            if record.get("system") is not None
            else []
        )
        return {
            "messages": head
            + [
                {"role": "user", "content": record["text"]},
                {"role": "assistant", "content": record["label"]},
            ]
        }


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
