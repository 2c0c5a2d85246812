"""Text classification lines: ``{"text", "label"}``."""

from __future__ import annotations

from typing import Any


class Classification:
    NAME = "classification_jsonl"
    KINDS = ("classification",)
    STRICT = False

    @staticmethod
    def to_example(record: dict[str, Any]) -> dict[str, Any]:
        return {"text": record["text"], "label": record["label"]}
