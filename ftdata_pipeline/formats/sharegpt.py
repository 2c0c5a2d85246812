"""ShareGPT conversation lines (``from`` human/gpt/system, ``value``) for LLaMA-Factory, axolotl."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictStr

from ftdata_pipeline.formats.common import chat_messages
from ftdata_pipeline.formats.registry import export_format
from ftdata_pipeline.formats.validation import Closed, Open, empty_texts, role_order, schema_problems

_FROM = {"system": "system", "user": "human", "assistant": "gpt"}


class _Turn(Closed):
    from_: Literal["human", "gpt", "system"] = Field(alias="from")
    value: StrictStr


class _Line(Open):
    conversations: list[_Turn] = Field(min_length=2)


@export_format
class ShareGPT:
    NAME = "sharegpt"
    KINDS = ("chat_sft", "classification")
    STRICT = False
    CHAT = True

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        return {
            "conversations": [
                {"from": _FROM[m["role"]], "value": m["content"]} for m in chat_messages(record)
            ]
        }

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        problems = schema_problems(_Line, example)
        if problems:
            return problems
        turns = example["conversations"]
        # LLaMA-Factory reads human at odd and gpt at even positions after an optional system.
        return role_order(
            [t["from"] for t in turns], first="human", last="gpt",
            alternate=("human", "gpt"), system="system",
        ) + empty_texts([(f"conversations.{i}.value", t["value"]) for i, t in enumerate(turns)])
