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


# ----------------------------------------------------------------------------------------
# measuring the filters on it
# ----------------------------------------------------------------------------------------

# Short texts that trip a bag-of-words harmful-content model and are not harmful.
BENIGN_TRIGGERS = (
    "who wrote The Idiot? Fyodor Dostoyevsky",
    "Moby Dick",
    "No, I am immortal",
    "Robots are stupid",
)


def records(texts: list[str], prefix: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "record_id": [f"{prefix}-{i:05d}" for i in range(len(texts))],
            "source": [prefix] * len(texts),
            "source_key": [f"{i:05d}" for i in range(len(texts))],
            "text": texts,
        }
    )


def measure_filters(texts: list[str], curate_cfg: dict | None = None, prefix: str = "doc") -> dict:
    """Run the curate stage (pretraining kind, recipe defaults + ``curate_cfg``) on ``texts``.

    Returns rows in/kept and, per rule, how many rows it dropped and their share. On this
    corpus every drop by a quality, language or harmful rule is a false positive; duplicate
    rules find real duplicates (packages sharing a README template).
    """
    from ftdata_pipeline.config.models import RecipeConfig
    from ftdata_pipeline.stages.curate import curate

    recipe = RecipeConfig(
        name="regression_corpus",
        kind="pretraining",
        sources=[prefix],
        exports={"formats": ["trl_text"]},
        curate=curate_cfg or {},
    )
    result = curate(records(texts, prefix).lazy(), recipe)
    rows_in = result.rows_in
    drops = result.rejected.group_by("rule").len().sort("rule").rows()
    return {
        "rows_in": rows_in,
        "rows_kept": result.kept.height,
        "drops": {rule: {"rows": n, "rate": round(n / rows_in, 4)} for rule, n in drops},
        "harmful_flagged": result.stats.get("harmful_flagged", 0),
        "control_chars_removed": result.stats.get("control_chars_removed", 0),
        "kept": result.kept,
    }


FILTER_RULES = (
    "duplicate_lines", "top_2gram", "top_3gram", "top_4gram", "symbol_ratio", "alpha_ratio",
    "language_not_allowed", "stop_words", "harmful_content",
)


def false_positive_rate(measured: dict) -> float:
    """Share of the rows dropped by a content filter (not length or duplicate rules)."""
    n = sum(measured["drops"].get(rule, {}).get("rows", 0) for rule in FILTER_RULES)
    return n / measured["rows_in"] if measured["rows_in"] else 0.0
