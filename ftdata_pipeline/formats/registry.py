"""The one list of export formats: every format class registers itself with ``@export_format``.

A format class defines:
  NAME: str            the name used in recipes (``exports.formats``)
  KINDS: tuple[str]    dataset kinds it can express
  STRICT: bool         True when the trainer rejects unknown keys: provenance then goes to a
                       line-aligned sidecar file instead of inline keys
  CHAT: bool           True for conversational formats: a classification record is exported
                       as an instruction (user) answered by its label (assistant)
  to_example(record) -> dict      one canonical record (a dict of its columns) -> one JSON line
  validate(example) -> list[str]  the trainer's rules this line breaks (empty when it is valid)
  extra_files(dataset, splits) -> {name: text}   (optional) files written beside the split
                       files (e.g. LLaMA-Factory's dataset_info.json), listed in the manifest

The config's list of format names, the writer and the validators all read this registry, so a
new format is one decorated class in one module.
"""

from __future__ import annotations

from typing import Any

REGISTRY: dict[str, type] = {}

_REQUIRED = ("NAME", "KINDS", "STRICT", "to_example", "validate")


def export_format(cls: type) -> type:
    """Class decorator: register an export format under its ``NAME``."""
    missing = [a for a in _REQUIRED if not hasattr(cls, a)]
    if missing:
        raise TypeError(f"export format {cls.__name__} lacks {', '.join(missing)}")
    if cls.NAME in REGISTRY and REGISTRY[cls.NAME] is not cls:
        raise TypeError(f"export format name {cls.NAME!r} registered twice")
    if not hasattr(cls, "CHAT"):
        cls.CHAT = False
    REGISTRY[cls.NAME] = cls
    return cls


def format_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get_format(name: str) -> Any:
    return REGISTRY[name]
