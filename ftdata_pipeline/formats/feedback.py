"""Preference and feedback formats beyond the basic pair: TRL implicit prompt and unpaired (KTO)
lines, prompt-only lines, Vertex AI preference tuning and LLaMA-Factory ranking datasets."""

from __future__ import annotations

import json
from typing import Any

from ftdata_pipeline.formats.common import conversation, last_assistant_index

# Values a thumbs/ratings label may take on a chat record, and whether each is desirable.
DESIRABLE = {"desirable": True, "undesirable": False, "true": True, "false": False,
             "thumbs_up": True, "thumbs_down": False, "good": True, "bad": False}  # fmt: skip


def _system_head(record: dict[str, Any]) -> list[dict[str, str]]:
    system = record.get("system")
    return [{"role": "system", "content": system}] if system is not None else []


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


class PromptOnly:
    """TRL prompt-only lines for online RL (PPO, GRPO, online DPO): the conversation up to the
    last assistant turn, ``{"prompt": [...]}``."""

    NAME = "trl_prompt_only"
    KINDS = ("chat_sft",)
    STRICT = False

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        system, turns = conversation(record)
        last = last_assistant_index(turns, record)
        head = [{"role": "system", "content": system}] if system is not None else []
        return {"prompt": head + turns[:last]}


def _parts(text: str) -> list[dict[str, str]]:
    return [{"text": text}]


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
