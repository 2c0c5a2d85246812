"""Which formats' kind a dataset kind exports as: distilled examples are SFT examples."""

from __future__ import annotations

EXPORTS_AS = {"distillation": "chat_sft"}


def export_kind(kind: str) -> str:
    return EXPORTS_AS.get(kind, kind)
