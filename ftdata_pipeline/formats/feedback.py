"""Preference and feedback formats beyond the basic pair: TRL implicit prompt and unpaired (KTO)
lines, prompt-only lines, Vertex AI preference tuning and LLaMA-Factory ranking datasets."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, StrictBool, StrictStr

from ftdata_pipeline.formats.common import conversation, last_assistant_index
from ftdata_pipeline.formats.openai import chat_rules
from ftdata_pipeline.formats.registry import export_format
from ftdata_pipeline.formats.validation import (
    Closed,
    Message,
    Open,
    empty_texts,
    message_roles,
    message_texts,
    schema_problems,
    text_pair_problems,
)

# Values a thumbs/ratings label may take on a chat record, and whether each is desirable.
DESIRABLE = {"desirable": True, "undesirable": False, "true": True, "false": False,
             "thumbs_up": True, "thumbs_down": False, "good": True, "bad": False}  # fmt: skip


class _ImplicitPreferenceLine(Open):
    chosen: list[Message] = Field(min_length=2)
    rejected: list[Message] = Field(min_length=2)


class _KTOLine(Open):
    prompt: list[Message] = Field(min_length=1)
    completion: list[Message] = Field(min_length=1, max_length=1)
    label: StrictBool


class _PromptOnlyLine(Open):
    prompt: list[Message] = Field(min_length=1)


class _Part(Closed):
    text: StrictStr


class _Content(Closed):
    role: StrictStr
    parts: list[_Part] = Field(min_length=1)


class _SystemInstruction(Closed):
    parts: list[_Part] = Field(min_length=1)


class _Completion(Closed):
    score: float
    completion: _Content


class _VertexLine(Closed):
    system_instruction: _SystemInstruction | None = None
    contents: list[_Content] = Field(min_length=1)
    completions: list[_Completion] = Field(min_length=2, max_length=2)


class _RankingLine(Closed):
    instruction: StrictStr
    input: StrictStr
    chosen: StrictStr
    rejected: StrictStr
    system: StrictStr | None = None


def _prompt_rules(prompt: Any, prefix: str = "prompt") -> list[str]:
    """A prompt (conversation before the answer): system only first, ends on a user turn."""
    roles = message_roles(prompt)
    problems = []
    if "system" in roles[1:]:
        problems.append("role order: 'system' only allowed first")
    if roles and roles[-1] != "user":
        problems.append(f"role order: {prefix} ends with {roles[-1]!r}, expected 'user'")
    return problems + empty_texts(message_texts(prompt, prefix))


def _system_head(record: dict[str, Any]) -> list[dict[str, str]]:
    system = record.get("system")
    return [{"role": "system", "content": system}] if system is not None else []


@export_format
class PreferenceImplicitPrompt:
    """TRL conversational preference with the prompt inside both sides (implicit prompt):
    ``{"chosen": [user, assistant], "rejected": [user, assistant]}``."""

    NAME = "trl_preference_implicit"
    KINDS = ("preference",)
    STRICT = False

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        head = _system_head(record) + [{"role": "user", "content": record["prompt"]}]
        return {
            "chosen": head + [{"role": "assistant", "content": record["chosen"]}],
            "rejected": head + [{"role": "assistant", "content": record["rejected"]}],
        }

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        problems = schema_problems(_ImplicitPreferenceLine, example)
        if problems:
            return problems
        problems = chat_rules(example["chosen"], "chosen")
        problems += chat_rules(example["rejected"], "rejected")
        if example["chosen"][:-1] != example["rejected"][:-1]:
            problems.append("chosen: prompt turns differ from rejected's")
        if example["chosen"][-1] == example["rejected"][-1]:
            problems.append("chosen: identical to rejected")
        return problems


@export_format
class UnpairedPreference:
    """TRL unpaired preference (KTOTrainer): ``{"prompt", "completion", "label"}`` from a chat
    record whose label says the response is desirable (thumbs up, good rating) or not."""

    NAME = "trl_kto"
    KINDS = ("chat_sft",)
    STRICT = False

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        label = (record.get("label") or "").strip().lower()
        if label not in DESIRABLE:
            raise ValueError(
                f"record {record.get('record_id')!r}: label {record.get('label')!r} is not one of "
                f"{sorted(DESIRABLE)}; KTO needs a desirable/undesirable label"
            )
        system, turns = conversation(record)
        last = last_assistant_index(turns, record)
        head = [{"role": "system", "content": system}] if system is not None else []
        return {"prompt": head + turns[:last], "completion": [turns[last]],
                "label": DESIRABLE[label]}  # fmt: skip

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        problems = schema_problems(_KTOLine, example)
        if problems:
            return problems
        if message_roles(example["completion"]) != ["assistant"]:
            problems.append("completion: only one assistant turn allowed")
        return problems + _prompt_rules(example["prompt"]) + empty_texts(
            message_texts(example["completion"], "completion")
        )


@export_format
class PromptOnly:
    """TRL prompt-only lines for online RL (PPO, GRPO, online DPO): the conversation up to the
    last assistant turn, ``{"prompt": [...]}``."""

    NAME = "trl_prompt_only"
    KINDS = ("chat_sft",)
    STRICT = False
    PROMPT_ONLY = True  # the RLHF steps' RL step takes prompt-only formats

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        system, turns = conversation(record)
        last = last_assistant_index(turns, record)
        head = [{"role": "system", "content": system}] if system is not None else []
        return {"prompt": head + turns[:last]}

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        return schema_problems(_PromptOnlyLine, example) or _prompt_rules(example["prompt"])


def _parts(text: str) -> list[dict[str, str]]:
    return [{"text": text}]


@export_format
class VertexPreference:
    """Vertex AI preference tuning (Gemini): ``contents`` ending on the user turn and a pair of
    ``completions``, score 1 for the preferred model turn and 0 for the other."""

    NAME = "vertex_preference"
    KINDS = ("preference",)
    STRICT = True

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        example: dict[str, Any] = {}
        if record.get("system") is not None:
            example["system_instruction"] = {"parts": _parts(record["system"])}
        example["contents"] = [{"role": "user", "parts": _parts(record["prompt"])}]
        example["completions"] = [
            {"score": 1, "completion": {"role": "model", "parts": _parts(record["chosen"])}},
            {"score": 0, "completion": {"role": "model", "parts": _parts(record["rejected"])}},
        ]
        return example

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        problems = schema_problems(_VertexLine, example)
        if problems:
            return problems
        roles = [c["role"] for c in example["contents"]]
        if roles[0] != "user" or roles[-1] != "user":
            problems.append("contents: must start and end with a 'user' turn")
        if any(r not in ("user", "model") for r in roles):
            problems.append("contents: roles are 'user' and 'model'")
        completions = example["completions"]
        if any(c["completion"]["role"] != "model" for c in completions):
            problems.append("completions: completion role must be 'model'")
        if completions[0]["score"] == completions[1]["score"]:
            problems.append("completions: scores must differ")
        texts = [(f"contents.{i}.parts.{j}.text", p["text"])
                 for i, c in enumerate(example["contents"]) for j, p in enumerate(c["parts"])]
        texts += [(f"completions.{i}.completion.parts.{j}.text", p["text"])
                  for i, c in enumerate(completions) for j, p in enumerate(c["completion"]["parts"])]
        problems += empty_texts(texts)
        if completions[0]["completion"]["parts"] == completions[1]["completion"]["parts"]:
            problems.append("completions: the two completions are identical")
        return problems


@export_format
class LlamaFactoryRanking:
    """LLaMA-Factory preference (ranking) dataset in Alpaca layout, with its
    ``dataset_info.json`` entry (``"ranking": true``) beside the split files."""

    NAME = "llamafactory_ranking"
    KINDS = ("preference",)
    STRICT = True

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        example = {
            "instruction": record["prompt"],
            "input": "",
            "chosen": record["chosen"],
            "rejected": record["rejected"],
        }
        if record.get("system") is not None:
            example["system"] = record["system"]
        return example

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        return text_pair_problems(_RankingLine, example, "instruction")

    @staticmethod
    def extra_files(dataset: str, splits: list[str]) -> dict[str, str]:
        """``dataset_info.json``: one entry per split file, named ``<dataset>_<split>``."""
        columns = {"prompt": "instruction", "query": "input", "chosen": "chosen",
                   "rejected": "rejected", "system": "system"}  # fmt: skip
        info = {
            f"{dataset}_{split}": {"file_name": f"{split}.jsonl", "ranking": True,
                                   "columns": columns}  # fmt: skip
            for split in splits
        }
        return {"dataset_info.json": json.dumps(info, sort_keys=True) + "\n"}  # one JSON line
