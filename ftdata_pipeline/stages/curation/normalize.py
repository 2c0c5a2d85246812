"""Text normalization: markup stripping, mojibake repair, NFC, whitespace, boilerplate removal.

All of it is vectorized Polars string expressions; null stays null. Order matters: markup first
(entities may hide mojibake), mojibake before NFC (the repaired characters are then composed),
whitespace before boilerplate (line-anchored patterns need plain newlines), a final tidy after
boilerplate (removal leaves blank lines behind).
"""

from __future__ import annotations

import polars as pl

from ftdata_pipeline.config.models import CurateConfig

# Markup. Rust regex has no backreferences, hence one pattern per content-bearing element.
_SCRIPT_STYLE = (r"(?is)<script\b[^>]*>.*?</script\s*>", r"(?is)<style\b[^>]*>.*?</style\s*>")
_LINE_BREAK = r"(?i)<br\s*/?>|</(?:li|tr)\s*>"
_BLOCK_END = r"(?i)</(?:p|div|h[1-6]|blockquote|pre|ul|ol|table|section|article)\s*>"
# Only things that look like tags: "a < b and c > d" must survive.
_TAG = r"(?s)<!--.*?-->|</?[A-Za-z][^<>]*>|<![A-Za-z][^<>]*>"
# Decoded in one pass so "&amp;lt;" becomes the literal text "&lt;", not "<".
_ENTITIES = {
    "&amp;": "&",
    "&lt;": "<",
    "&gt;": ">",
    "&quot;": '"',
    "&#34;": '"',
    "&#39;": "'",
    "&apos;": "'",
    "&nbsp;": " ",
    "&#160;": " ",
}

# Whitespace. Tabs and the Unicode space separators (NBSP, thin, ideographic, ...) become one
# plain space; zero-width space and BOM are invisible noise. ZWJ is kept: emoji need it.
_INLINE_SPACE = "[\t\x0b\x0c \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+"
_ZERO_WIDTH = "[\u200b\ufeff]"
_LINE_SEPARATOR = "\r\n?|[\u2028\u2029\x85]"


def _mojibake_table() -> dict[str, str]:
    """Garbled form -> character, for UTF-8 text that was decoded as cp1252 or Latin-1.

    ftfy is not available, and a full "guess the encoding" repair is out of scope. The usual
    damage is narrow and mechanical: every non-ASCII Latin-1 letter and the common typographic
    punctuation turn into a fixed 2-3 character sequence starting with Ã, Â or â. Those
    sequences essentially never occur in genuine text, so replacing them (one Aho-Corasick
    pass, ``str.replace_many``) is safe and fully vectorized.
    """
    chars = [chr(c) for c in range(0xA0, 0x100)] + list("‘’‚“”„†‡•…‰‹›€™–—")
    table: dict[str, str] = {}
    for ch in chars:
        raw = ch.encode("utf-8")
        # cp1252 leaves 0x81, 0x8D, 0x8F, 0x90, 0x9D undefined; decoders then fall back to
        # Latin-1 for that byte ("â€\x9d" for "”"), so both pure and mixed forms are listed.
        forms = {raw.decode("latin-1"), "".join(_cp1252_or_latin1(b) for b in raw)}
        for garbled in forms:
            if garbled != ch:
                table.setdefault(garbled, ch)
    return table


def _cp1252_or_latin1(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return bytes([byte]).decode("latin-1")


MOJIBAKE = _mojibake_table()


def _tidy(expr: pl.Expr) -> pl.Expr:
    return (
        expr.str.replace_all(r" ?\n ?", "\n").str.replace_all(r"\n{3,}", "\n\n").str.strip_chars()
    )


def normalize_text(expr: pl.Expr, cfg: CurateConfig) -> pl.Expr:
    """Vectorized text normalization per the recipe's flags (null stays null)."""
    if cfg.strip_markup:
        for pattern in _SCRIPT_STYLE:
            expr = expr.str.replace_all(pattern, "")
        expr = (
            expr.str.replace_all(_LINE_BREAK, "\n")
            .str.replace_all(_BLOCK_END, "\n\n")
            .str.replace_all(_TAG, "")
            .str.replace_many(list(_ENTITIES), list(_ENTITIES.values()))
        )
    if cfg.repair_mojibake:
        # leftmost-longest: "â€™" must win over any shorter garbled prefix
        expr = expr.str.replace_many(list(MOJIBAKE), list(MOJIBAKE.values()), leftmost=True)
    if cfg.normalize_unicode:
        expr = expr.str.normalize("NFC")
    if cfg.collapse_whitespace:
        expr = _tidy(
            expr.str.replace_all(_LINE_SEPARATOR, "\n")
            .str.replace_all(_ZERO_WIDTH, "")
            .str.replace_all(_INLINE_SPACE, " ")
        )
    if cfg.boilerplate_patterns:
        for pattern in cfg.boilerplate_patterns:
            expr = expr.str.replace_all(pattern, "")
        if cfg.collapse_whitespace:
            expr = _tidy(expr)
    return expr


def normalize_messages(expr: pl.Expr, cfg: CurateConfig) -> pl.Expr:
    return expr.list.eval(
        pl.element().struct.with_fields(normalize_text(pl.field("content"), cfg))
    )
