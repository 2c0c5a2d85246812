"""Amazon Bedrock model-customization lines: prompt/completion and the conversation schema."""

from __future__ import annotations

from typing import Any

from ftdata_pipeline.formats.common import conversation, last_assistant_index

_LABEL = {"system": "System", "user": "User", "assistant": "Assistant"}


class PromptCompletion:
    """``{"prompt", "completion"}`` strings.

    A single user turn is the prompt as is; anything longer (a system prompt, earlier turns) is
    rendered as a role-labelled transcript, since this format has no structure for turns.
    """

    NAME = "bedrock_prompt_completion"
    KINDS = ("chat_sft",)
    STRICT = True

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        system, turns = conversation(record)
        last = last_assistant_index(turns, record)
        context = turns[:last]
        if system is None and len(context) == 1 and context[0]["role"] == "user":
            prompt = context[0]["content"]
        else:
            head = [{"role": "system", "content": system}] if system is not None else []
            prompt = "\n\n".join(f"{_LABEL[m['role']]}: {m['content']}" for m in head + context)
        return {"prompt": prompt, "completion": turns[last]["content"]}


class Conversation:
    """``bedrock-conversation-2024``: system blocks and messages with text content blocks."""

    NAME = "bedrock_conversation"
    KINDS = ("chat_sft",)
    STRICT = True

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        system, turns = conversation(record)
        example: dict[str, Any] = {"schemaVersion": "bedrock-conversation-2024"}
        if system is not None:
            example["system"] = [{"text": system}]
        example["messages"] = [
            {"role": t["role"], "content": [{"text": t["content"]}]} for t in turns
        ]
        return example
