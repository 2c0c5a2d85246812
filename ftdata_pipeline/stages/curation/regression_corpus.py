"""A regression corpus of real text the project did not write, available offline.

The long descriptions of the installed packages (``importlib.metadata``; the README each
project published to PyPI) are real Markdown written by many authors: prose, lists, tables,
HTML badges, and code blocks in Python, shell, YAML... Nothing in it is junk, harmful or
non-English on purpose, so every record a filter drops from it is a false positive to look at,
and every Python block that compiles before curation must still compile after. The corpus is
built from the locked environment, so it is the same on every machine with the same lock.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import warnings

import polars as pl

MIN_CHARS = 200
_FENCED_PY = re.compile(r"^ {0,3}```[ \t]*(?:python|py|python3)[ \t]*\n(.*?)^ {0,3}```[ \t]*$",
                        re.M | re.S)


def package_descriptions(min_chars: int = MIN_CHARS) -> list[tuple[str, str]]:
    """(package name, Markdown long description), sorted by name, one per distribution."""
    out: dict[str, str] = {}
    for dist in md.distributions():
        meta = dist.metadata
        name = (meta["Name"] or "").lower()
        if not name or name in out:
            continue
        content_type = (meta.get("Description-Content-Type") or "").lower()
        body = meta.get_payload() or meta.get("Description") or ""
        if "markdown" in content_type and len(body) >= min_chars:
            out[name] = body
    return sorted(out.items())


def corpus_frame(min_chars: int = MIN_CHARS) -> pl.DataFrame:
    """Canonical-record-shaped rows (source ``pypi_descriptions``, key = package name)."""
    rows = package_descriptions(min_chars)
    return pl.DataFrame(
        {
            "record_id": [f"pkg-{name}" for name, _ in rows],
            "source": ["pypi_descriptions"] * len(rows),
            "source_key": [name for name, _ in rows],
            "text": [text for _, text in rows],
        }
    )


def paragraphs(texts: list[str], min_words: int = 1) -> list[str]:
    """Prose paragraphs (no code, tables, headings, badges, HTML) of the descriptions."""
    out = []
    for text in texts:
        no_code = re.sub(r"(?ms)^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", "", text)
        for para in re.split(r"\n\s*\n", no_code):
            para = para.strip()
            if (not para or para[0] in "#|<![-*>0123456789`" or "](" in para
                    or para.startswith("    ") or len(para.split()) < min_words):
                continue
            out.append(" ".join(para.split()))
    return out


def python_blocks(text: str) -> list[str]:
    """Contents of the fenced ```python blocks of a Markdown text."""
    return [m.group(1) for m in _FENCED_PY.finditer(text)]


def compiles(code: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences in examples: still valid
        try:
            ast.parse(code)
        except (SyntaxError, ValueError):
            return False
    return True
