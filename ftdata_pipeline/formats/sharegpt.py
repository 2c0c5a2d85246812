"""ShareGPT conversation lines (``from`` human/gpt/system, ``value``) for LLaMA-Factory, axolotl."""

from __future__ import annotations

from typing import Any

from ftdata_pipeline.formats.common import chat_messages

_FROM = {"system": "system", "user": "human", "assistant": "gpt"}


class ShareGPT:
    NAME = "sharegpt"
    KINDS = ("chat_sft",)
    STRICT = False

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        return {
            "conversations": [
                {"from": _FROM[m["role"]], "value": m["content"]} for m in chat_messages(record)
            ]
        }
