"""Text normalization that knows code: markup, mojibake, NFC, controls, whitespace, boilerplate.

A text is first split into prose and code segments (``split_code``): fenced blocks (``` and
~~~), indented blocks (lines starting with four spaces or a tab) and inline code spans stay
byte for byte; only control characters are removed from them. Prose gets the full treatment:
markup stripping (real HTML element names only, so ``<T>``, ``<int:index>`` and
``<MyComponent />`` survive), entity decoding, mojibake repair, NFC, whitespace tidying (line separators,
invisible and exotic spaces, trailing spaces, runs of blank lines; never indentation or
spaces inside a line, which are structure in unfenced JSON, YAML and command output), and
the recipe's boilerplate patterns.
A field a recipe marks as code-bearing (``curate.code_fields``) is one code segment.

Everywhere, terminal escape sequences (ANSI), C0/C1 control characters other than tab,
newline, carriage return, vertical tab and form feed, and bidirectional override/isolate
characters (the "Trojan Source" ones) are removed; ``count_controls`` counts them for the
stage's stats.

Segmenting is a small line scanner in Python, run once per distinct text: fence matching
needs the opening fence's length, which the Rust regex engine (no backreferences) cannot
express. Everything per segment is vectorized Polars over the exploded segments.
"""

from __future__ import annotations

import re
from bisect import bisect_right

import polars as pl

from ftdata_pipeline.config.models import CurateConfig
from ftdata_pipeline.records import MESSAGE

# Markup. Rust regex has no backreferences, hence one pattern per content-bearing element.
_SCRIPT_STYLE = (r"(?is)<script\b[^>]*>.*?</script\s*>", r"(?is)<style\b[^>]*>.*?</style\s*>")
# A break's own line starts at the margin: spaces after it are HTML source layout.
_LINE_BREAK = r"(?i)(?:<br\s*/?>|</(?:li|tr)\s*>)[ \t]*"
_BLOCK_END = r"(?i)</(?:p|div|h[1-6]|blockquote|pre|ul|ol|table|section|article)\s*>[ \t]*"
# Only real HTML elements, written in lower or upper case (``<b>``, ``<BR>``): generics
# (``List<T>``), route converters (``<int:index>``), JSX components (``<MyComponent />``) and
# placeholders (``<PERSON>``) are text. "a < b and c > d" is never a tag either.
HTML_ELEMENTS = (
    "a abbr address area article aside audio b base bdi bdo big blockquote body br button "
    "canvas caption center cite code col colgroup data datalist dd del details dfn dialog div "
    "dl dt em embed fieldset figcaption figure font footer form h1 h2 h3 h4 h5 h6 head header "
    "hr html i iframe img input ins kbd label legend li link main map mark meta meter nav "
    "noscript object ol optgroup option output p param picture pre progress q rp rt ruby s "
    "samp section select small source span strike strong sub summary sup table tbody td "
    "template textarea tfoot th thead time title tr track tt u ul var video wbr"
).split()
_NAMES = "|".join(sorted(HTML_ELEMENTS, key=len, reverse=True))
_TAG = (
    r"<!--(?s:.*?)-->|<!(?i:doctype)[^<>]*>"
    rf"|</?(?:{_NAMES}|{'|'.join(n.upper() for n in HTML_ELEMENTS)})(?:[\s/][^<>]*)?>"
)
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

# Controls: escape sequences first (whole), then lone C0/C1 controls and bidi overrides.
CONTROL = (
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[@-Z\\-_]?"  # other escapes, or a lone ESC
    r"|[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f\x80-\x84\x86-\x9f]"  # C0/C1 (not \t \n \v \f \r, NEL)
    r"|[\u202a-\u202e\u2066-\u2069]"  # bidi embeddings, overrides, isolates
)

# Whitespace. The Unicode space separators (NBSP, thin, ideographic, ...), vertical tab and
# form feed become a plain space each; tabs stay (TSV, indentation). Zero-width space and BOM
# are invisible noise. ZWJ is kept: emoji need it.
_ODD_SPACE = "[\x0b\x0c\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]"
_INLINE_SPACE = "[\t \x0b\x0c\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+"
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


# ----------------------------------------------------------------------------------------
# segments
# ----------------------------------------------------------------------------------------

PROSE, CODE = False, True
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_TICKS = re.compile(r"`+")
_MAYBE_CODE = re.compile(r"`|~~~|^(?: {4}|\t)", re.M)


def _inline_spans(text: str) -> list[tuple[bool, str]]:
    """Split prose at inline code spans: a run of N backticks up to the next run of N."""
    runs = [(m.start(), m.end()) for m in _TICKS.finditer(text)]
    if len(runs) < 2:
        return [(PROSE, text)]
    by_len: dict[int, list[int]] = {}
    for i, (a, b) in enumerate(runs):
        by_len.setdefault(b - a, []).append(i)
    out, pos, i = [], 0, 0
    while i < len(runs):
        a, b = runs[i]
        same = by_len[b - a]
        k = bisect_right(same, i)
        if k == len(same):
            i += 1
            continue
        j = same[k]
        if a > pos:
            out.append((PROSE, text[pos:a]))
        out.append((CODE, text[a:runs[j][1]]))
        pos, i = runs[j][1], j + 1
    if pos < len(text):
        out.append((PROSE, text[pos:]))
    return out


def split_code(text: str) -> list[tuple[bool, str]]:
    """(is_code, segment) pieces whose concatenation is ``text``."""
    if not _MAYBE_CODE.search(text):  # most chat turns: no backtick, tilde fence or indent
        return [(PROSE, text)]
    blocks: list[tuple[bool, list[str]]] = []

    def emit(kind: bool, piece: str) -> None:
        if blocks and blocks[-1][0] == kind:
            blocks[-1][1].append(piece)
        else:
            blocks.append((kind, [piece]))

    fence: str | None = None
    indented = False
    for line in text.splitlines(keepends=True):
        if fence is not None:
            emit(CODE, line)
            m = _FENCE.match(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line[m.end():].strip():
                fence = None
            continue
        m = _FENCE.match(line)
        if m and not (m.group(1)[0] == "`" and "`" in line[m.end():]):
            fence, indented = m.group(1), False
            emit(CODE, line)
            continue
        blank = not line.strip()
        if (line.startswith(("    ", "\t")) and not blank) or (indented and blank):
            indented = True
            emit(CODE, line)
            continue
        indented = False
        emit(PROSE, line)
    out: list[tuple[bool, str]] = []
    for kind, pieces in blocks:
        piece = "".join(pieces)
        out.extend([(kind, piece)] if kind == CODE else _inline_spans(piece))
    return out


# ----------------------------------------------------------------------------------------
# per-segment rules
# ----------------------------------------------------------------------------------------


def _prose_whitespace(t: pl.Expr) -> pl.Expr:
    # Only what no reader can mean: odd line separators, invisible characters, exotic spaces
    # (each becomes one plain space, so alignment keeps its width), spaces ending a line and
    # runs of blank lines. Indentation and runs of spaces inside a line stay: in the unfenced
    # JSON, YAML, nested lists and pasted command output of real tickets they are structure.
    t = (
        t.str.replace_all(_LINE_SEPARATOR, "\n")
        .str.replace_all(_ZERO_WIDTH, "")
        .str.replace_all(_ODD_SPACE, " ")
    )
    return _tidy(t)


def _tidy(t: pl.Expr) -> pl.Expr:
    return t.str.replace_all(rf"{_INLINE_SPACE}\n", "\n").str.replace_all(r"\n{3,}", "\n\n")


def _prose(t: pl.Expr, cfg: CurateConfig) -> pl.Expr:
    if cfg.strip_markup:
        for pattern in _SCRIPT_STYLE:
            t = t.str.replace_all(pattern, "")
        t = (
            t.str.replace_all(_LINE_BREAK, "\n")
            .str.replace_all(_BLOCK_END, "\n\n")
            .str.replace_all(_TAG, "")
            .str.replace_many(list(_ENTITIES), list(_ENTITIES.values()))
        )
    if cfg.repair_mojibake:
        # leftmost-longest: "â€™" must win over any shorter garbled prefix
        t = t.str.replace_many(list(MOJIBAKE), list(MOJIBAKE.values()), leftmost=True)
    t = t.str.replace_all(CONTROL, "")
    if cfg.normalize_unicode:
        t = t.str.normalize("NFC")
    if cfg.collapse_whitespace:
        t = _prose_whitespace(t)
    if cfg.boilerplate_patterns:
        for pattern in cfg.boilerplate_patterns:
            t = t.str.replace_all(pattern, "")
        if cfg.collapse_whitespace:
            t = _tidy(t)
    return t


def normalize_series(s: pl.Series, cfg: CurateConfig, code: bool = False) -> pl.Series:
    """Normalize a String series (see module docstring); null stays null, order is kept."""
    distinct = s.drop_nulls().unique(maintain_order=True).to_list()
    idx, seg_code, seg_text = [], [], []
    for i, text in enumerate(distinct):
        pieces = [(CODE, text)] if code else split_code(text)
        for kind, piece in pieces:
            idx.append(i)
            seg_code.append(kind)
            seg_text.append(piece)
    segs = pl.DataFrame(
        {"i": idx, "code": seg_code, "t": seg_text},
        schema={"i": pl.Int64, "code": pl.Boolean, "t": pl.String},
    )
    t, is_code = pl.col("t"), pl.col("code")
    segs = segs.with_columns(
        # Code keeps its bytes but for control characters and zero-width spaces / stray BOMs:
        # invisible, never part of working code, and a line of only them is no code line.
        pl.when(is_code).then(t.str.replace_all(CONTROL, "").str.replace_all(_ZERO_WIDTH, ""))
        .otherwise(_prose(t, cfg))
    )
    if cfg.collapse_whitespace and not code:
        # Ends of the whole text: outer blank lines and spaces of prose go; code keeps its
        # bytes but not blank lines after a closing fence.
        first = pl.int_range(pl.len()).over("i") == 0
        last = pl.int_range(pl.len()).over("i") == pl.len().over("i") - 1
        segs = segs.with_columns(
            pl.when(first & ~is_code).then(t.str.strip_chars_start()).otherwise(t)
        ).with_columns(
            pl.when(last & ~is_code).then(t.str.strip_chars_end())
            .when(last).then(t.str.strip_chars_end("\n"))
            .otherwise(t)
        )
    table = segs.group_by("i", maintain_order=True).agg(t.str.join(""))
    if cfg.collapse_whitespace and not code:
        # Whitespace after the text's last visible character goes too, also when the text
        # ends in code (spaces ending an indented block, a newline after a closing fence):
        # no reader of the text can see it.
        table = table.with_columns(t.str.strip_chars_end())
    table = pl.DataFrame({"i": range(len(distinct)), "orig": distinct},
                         schema={"i": pl.Int64, "orig": pl.String}).join(
        table, on="i", how="left", maintain_order="left"
    ).with_columns(t.fill_null(""))
    out = pl.DataFrame({"orig": s}).join(
        table.select("orig", "t"), on="orig", how="left", maintain_order="left"
    )["t"]
    return out.alias(s.name)


def normalize_text(expr: pl.Expr, cfg: CurateConfig, code: bool = False) -> pl.Expr:
    """Vectorized text normalization per the recipe's flags (null stays null)."""
    # elementwise: each text on its own, so the streaming engine may hand it a part of the
    # column at a time (the whole column's segments at once cost ~3x the frame's size)
    return expr.map_batches(lambda s: normalize_series(s, cfg, code), return_dtype=pl.String,
                            is_elementwise=True)


def _normalize_messages(s: pl.Series, cfg: CurateConfig, code: bool) -> pl.Series:
    df = pl.DataFrame({"m": s.cast(pl.List(MESSAGE))}).with_row_index("_i")
    turns = df.filter(pl.col("m").list.len() > 0).explode("m").unnest("m")
    turns = turns.with_columns(normalize_series(turns["content"], cfg, code).alias("content"))
    packed = turns.group_by("_i", maintain_order=True).agg(pl.struct(pl.exclude("_i")).alias("n"))
    out = df.join(packed, on="_i", how="left", maintain_order="left").select(
        pl.when(pl.col("m").list.len() > 0).then(pl.col("n")).otherwise(pl.col("m"))
    )
    return out.to_series().cast(pl.List(MESSAGE)).alias(s.name)


def normalize_messages(expr: pl.Expr, cfg: CurateConfig, code: bool = False) -> pl.Expr:
    """Normalize every turn's content; roles, nulls and empty lists are unchanged."""
    return expr.map_batches(
        lambda s: _normalize_messages(s, cfg, code), return_dtype=pl.List(MESSAGE),
        is_elementwise=True,
    )


def count_controls(expr: pl.Expr) -> pl.Expr:
    """Control characters / escape sequences / bidi overrides that normalization removes."""
    return expr.str.count_matches(CONTROL).fill_null(0)
