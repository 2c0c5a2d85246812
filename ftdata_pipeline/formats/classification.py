"""Text classification lines: ``{"text", "label"}``."""

from __future__ import annotations

from typing import Any

from pydantic import StrictStr

from ftdata_pipeline.formats.registry import export_format
from ftdata_pipeline.formats.validation import Open, empty_texts, schema_problems


class _Line(Open):
    text: StrictStr
    label: StrictStr


@export_format
class Classification:
    NAME = "classification_jsonl"
    KINDS = ("classification",)
    STRICT = False

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        return {"text": record["text"], "label": record["label"]}

    @staticmethod
    def validate(example: dict[str, Any]) -> list[str]:
        return schema_problems(_Line, example) or empty_texts(
            [("text", example["text"]), ("label", example["label"])]
        )
