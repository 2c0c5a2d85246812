"""Alpaca / LLaMA-Factory instruction lines, with multi-turn history as [user, assistant] pairs."""

from __future__ import annotations

from typing import Any

from pydantic import StrictStr

from ftdata_pipeline.formats.common import conversation, last_assistant_index
from ftdata_pipeline.formats.registry import export_format
from ftdata_pipeline.formats.validation import Open, empty_texts, schema_problems


def _pairs(turns: list[dict[str, str]]) -> list[list[str]]:
    # Consecutive turns of one role are joined so every history entry stays a [user, assistant]
    # pair; an assistant turn with no user turn before it (a greeting) pairs with "".
    pairs: list[list[str]] = []
    pending: list[str] = []
    answer: list[str] = []
    for turn in turns:
        if turn["role"] == "user":
            if answer:
                pairs.append(["\n\n".join(pending), "\n\n".join(answer)])
                pending, answer = [], []
            pending.append(turn["content"])
        else:
            answer.append(turn["content"])
    if answer:
        pairs.append(["\n\n".join(pending), "\n\n".join(answer)])
    return pairs


class _Line(Open):
    instruction: StrictStr
    input: StrictStr
    output: StrictStr
    system: StrictStr | None = None
    history: list[tuple[StrictStr, StrictStr]] | None = None


@export_format
class Alpaca:
    """``{"instruction", "input", "output"}`` plus ``system`` and ``history`` when present."""

    NAME = "alpaca"
    KINDS = ("chat_sft", "classification")
    STRICT = False
    CHAT = True

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        system, turns = conversation(record)
        last = last_assistant_index(turns, record)
        users = [i for i in range(last) if turns[i]["role"] == "user"]
        if not users:
            raise ValueError(f"record {record.get('record_id')!r} has no user turn")
        instruction_at = users[-1]
        example: dict[str, Any] = {
            "instruction": turns[instruction_at]["content"],
            "input": "",
            "output": turns[last]["content"],
        }
        if system is not None:
            example["system"] = system
        history = _pairs(turns[:instruction_at])
        if history:
            example["history"] = history
        return example

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        return schema_problems(_Line, example) or empty_texts(
            [("instruction", example["instruction"]), ("output", example["output"])]
        )
