"""Shared helpers for export formats: reading a canonical record's conversation uniformly."""

from __future__ import annotations

from typing import Any

ROLES = ("system", "user", "assistant")


def _turn(message: dict[str, Any]) -> dict[str, str]:
    # Only role and content leave the record: struct fields added later must not leak into
    # strict formats whose validators reject unknown keys.
    return {"role": message["role"], "content": message["content"]}


def conversation(record: dict[str, Any]) -> tuple[str | None, list[dict[str, str]]]:
    """Return (system prompt or None, user/assistant turns) of a chat record.

    The record's ``system`` field wins; otherwise system-role messages inside ``messages`` are
    joined. Records carrying ``prompt``/``response`` instead of ``messages`` become one exchange,
    so single-turn sources export the same way as chat logs.
    """
    messages = record.get("messages") or []
    if messages:
        turns = [_turn(m) for m in messages if m["role"] != "system"]
        inline_system = [m["content"] for m in messages if m["role"] == "system"]
    else:
        turns = []
        if record.get("prompt") is not None:
            turns.append({"role": "user", "content": record["prompt"]})
        if record.get("response") is not None:
            turns.append({"role": "assistant", "content": record["response"]})
        inline_system = []
    system = record.get("system")
    if system is None and inline_system:
        system = "\n\n".join(inline_system)
    return system, turns


def chat_messages(record: dict[str, Any]) -> list[dict[str, str]]:
    """The conversation as role/content messages, system message first when there is one."""
    system, turns = conversation(record)
    head = [{"role": "system", "content": system}] if system is not None else []
    return head + turns


def last_assistant_index(turns: list[dict[str, str]], record: dict[str, Any]) -> int:
    """Index of the last assistant turn; a record without one cannot be a training target."""
    for i in range(len(turns) - 1, -1, -1):
        if turns[i]["role"] == "assistant":
            return i
    raise ValueError(f"record {record.get('record_id')!r} has no assistant turn")


def merge_turns(turns: list[dict[str, str]]) -> list[dict[str, str]]:
    """Consecutive turns of one role joined by a blank line, for schemas that need alternation."""
    merged: list[dict[str, str]] = []
    for turn in turns:
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1] = {**merged[-1], "content": merged[-1]["content"] + "\n\n" + turn["content"]}
        else:
            merged.append(dict(turn))
    return merged


def default_instruction(label_set: list[str] | None) -> str:
    """The instruction a classification example carries in a chat format when the recipe
    gives none: the task and the allowed answers."""
    labels = ", ".join(label_set or [])
    return f"Classify the following text. Answer with exactly one label from: {labels}."


def classification_as_chat(record: dict[str, Any], instruction: str) -> dict[str, Any]:
    """A classification record as a chat exchange: the recipe's instruction and the text
    (user), answered by the label (assistant). Provenance and system prompt are kept; the
    record's other text fields (a ticket's agent reply) are not part of this example."""
    return {
        **{k: record.get(k) for k in ("record_id", "source", "source_key", "system")},
        "messages": [
            {"role": "user", "content": f"{instruction}\n\n{record['text']}"},
            {"role": "assistant", "content": record["label"]},
        ],
    }
