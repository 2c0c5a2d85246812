"""Amazon Bedrock model-customization lines: prompt/completion and the conversation schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictStr

from ftdata_pipeline.formats.common import conversation, last_assistant_index, merge_turns
from ftdata_pipeline.formats.registry import export_format
from ftdata_pipeline.formats.validation import (
    Closed,
    empty_texts,
    reserved_words,
    role_order,
    schema_problems,
)

_LABEL = {"system": "System", "user": "User", "assistant": "Assistant"}


class _PromptCompletionLine(Closed):
    prompt: StrictStr
    completion: StrictStr


class _Text(Closed):
    text: StrictStr


class _Message(Closed):
    role: Literal["user", "assistant"]
    content: list[_Text] = Field(min_length=1)


class _ConversationLine(Closed):
    schemaVersion: Literal["bedrock-conversation-2024"]  # noqa: N815 - the schema's key
    system: list[_Text] | None = None
    messages: list[_Message] = Field(min_length=2)


@export_format
class PromptCompletion:
    """``{"prompt", "completion"}`` strings.

    A single user turn is the prompt as is; anything longer (a system prompt, earlier turns) is
    rendered as a role-labelled transcript, since this format has no structure for turns.
    """

    NAME = "bedrock_prompt_completion"
    KINDS = ("chat_sft", "classification")
    STRICT = True
    CHAT = True

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

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        return schema_problems(_PromptCompletionLine, example) or empty_texts(
            [("prompt", example["prompt"]), ("completion", example["completion"])]
        )


@export_format
class Conversation:
    """``bedrock-conversation-2024``: system blocks and messages with text content blocks.

    Consecutive turns of one role are joined, since the schema needs user and assistant turns
    in alternation. Validated against Amazon Nova's rules: user first, assistant last, turns
    alternating, and none of Nova's reserved words in any text.
    """

    NAME = "bedrock_conversation"
    KINDS = ("chat_sft", "classification")
    STRICT = True
    CHAT = True

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        system, turns = conversation(record)
        example: dict[str, Any] = {"schemaVersion": "bedrock-conversation-2024"}
        if system is not None:
            example["system"] = [{"text": system}]
        example["messages"] = [
            {"role": t["role"], "content": [{"text": t["content"]}]} for t in merge_turns(turns)
        ]
        return example

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        problems = schema_problems(_ConversationLine, example)
        if problems:
            return problems
        messages = example["messages"]
        texts = [(f"system.{i}.text", b["text"]) for i, b in enumerate(example.get("system") or [])]
        texts += [
            (f"messages.{i}.content.{j}.text", b["text"])
            for i, m in enumerate(messages)
            for j, b in enumerate(m["content"])
        ]
        return (
            role_order([m["role"] for m in messages], first="user", last="assistant",
                       alternate=("user", "assistant"), system=None)
            + reserved_words(texts)
            + empty_texts(texts)
        )
