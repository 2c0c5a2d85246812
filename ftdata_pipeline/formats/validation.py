"""Trainer rules for export lines, shared by the format classes' ``validate`` methods.

Structural rules (required keys, types, no unknown keys for strict trainers) are pydantic
models, so the field-by-field checking is a library's; what no schema expresses (role order,
reserved words, non-empty content) is a small named function. Every function returns reasons,
never raises, and a reason names keys and positions, never content.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError

# Amazon Nova fine-tuning fails on these strings anywhere in a message (also inside words:
# "addUser:" holds "User:"), so a line containing one is rejected, never written.
NOVA_RESERVED = ("User:", "Bot:", "Assistant:", "System:", "<image>", "<video>", "[EOS]")


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    # Trainers that ignore extra keys (provenance travels inline there).
    model_config = ConfigDict(extra="allow")


def schema_problems(model: type[BaseModel], example: dict[str, Any]) -> list[str]:
    """Reasons ``example`` does not fit ``model``: location and message, never the input."""
    try:
        model.model_validate(example)
    except ValidationError as exc:
        return [
            f"{'.'.join(str(p) for p in err['loc']) or '<line>'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        ]
    return []


def empty_texts(pairs: list[tuple[str, Any]]) -> list[str]:
    """(where, text) pairs whose text is empty or whitespace only."""
    return [f"{where}: empty text" for where, text in pairs if isinstance(text, str)
            and not text.strip()]


def text_pair_problems(
    model: type[BaseModel], example: dict[str, Any], prompt_key: str
) -> list[str]:
    """A preference line of plain texts: fits ``model``, no empty prompt/chosen/rejected, and
    the two answers differ."""
    problems = schema_problems(model, example)
    if problems:
        return problems
    problems = empty_texts([(k, example[k]) for k in (prompt_key, "chosen", "rejected")])
    if example["chosen"] == example["rejected"]:
        problems.append("chosen: identical to rejected")
    return problems


def role_order(
    roles: list[str], *, first: str, last: str, alternate: tuple[str, str], system: str | None
) -> list[str]:
    """An optional leading system role, then ``alternate`` roles in turn from ``first``,
    ending with ``last``."""
    problems = []
    body = roles
    if system is not None and body and body[0] == system:
        body = body[1:]
    if system is not None and system in body:
        problems.append(f"role order: {system!r} only allowed first")
        body = [r for r in body if r != system]
    if not body:
        return problems + ["role order: no turns"]
    if body[0] != first:
        problems.append(f"role order: first turn is {body[0]!r}, expected {first!r}")
    if body[-1] != last:
        problems.append(f"role order: last turn is {body[-1]!r}, expected {last!r}")
    for i in range(1, len(body)):
        if body[i] == body[i - 1]:
            problems.append(f"role order: two {body[i]!r} turns in a row at turn {i}")
            break
    unknown = sorted(set(body) - set(alternate))
    if unknown:
        problems.append(f"role order: unexpected roles {unknown}")
    return problems


def reserved_words(pairs: list[tuple[str, Any]], words: tuple[str, ...] = NOVA_RESERVED) -> list[str]:
    """(where, text) pairs holding a reserved word: names the word and where, not the text."""
    found = []
    for where, text in pairs:
        if not isinstance(text, str):
            continue
        hits = [w for w in words if w in text]
        if hits:
            found.append(f"{where}: reserved word {', '.join(repr(h) for h in hits)}")
    return found


# ---------------------------------------------------------------- shared message schemas
Role = Literal["system", "user", "assistant"]


class Message(Closed):
    role: Role
    content: StrictStr


class OpenMessage(Open):
    role: StrictStr
    content: StrictStr


def message_texts(messages: Any, prefix: str) -> list[tuple[str, Any]]:
    if not isinstance(messages, list):
        return []
    return [(f"{prefix}.{i}.content", m.get("content")) for i, m in enumerate(messages)
            if isinstance(m, dict)]


def message_roles(messages: Any) -> list[str]:
    if not isinstance(messages, list):
        return []
    return [m.get("role") for m in messages if isinstance(m, dict)]
