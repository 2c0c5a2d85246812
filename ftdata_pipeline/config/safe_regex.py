"""User regular expressions, compiled and run by one linear-time engine: Polars' (Rust ``regex``).

Recipes carry regexes (boilerplate patterns, refusal patterns, label rules, custom PII
recognizers). A backtracking
engine (Python's ``re``) can spin for hours on one crafted pattern and a record, and a killed
step does not stop it, so user patterns never run there: Polars' engine matches in time linear
in the input, and has no look-around and no backreferences. A pattern it cannot compile is a
config error naming the key and the engine's reason, found by ``ftdata validate``; there is no
fallback to another engine.
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl

ENGINE = "Polars (Rust regex, linear time)"


@lru_cache(maxsize=4096)
def regex_problem(pattern: str) -> str | None:
    """Why the engine cannot run ``pattern`` (its own words), or None when it can."""
    if not isinstance(pattern, str):
        return "not a string"
    try:
        pl.select(pl.lit("").str.contains(pattern))
    except pl.exceptions.PolarsError as exc:
        # Keep the engine's "error: ..." line (look-around, backreferences, syntax, size) and
        # drop the echo of the expression.
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        reasons = [ln[len("error:"):].strip() for ln in lines if ln.startswith("error:")]
        return reasons[0] if reasons else (lines[0] if lines else type(exc).__name__)
    return None


def check_regex(pattern: str) -> str:
    """Pydantic-style validator: return the pattern, or raise ValueError with the reason."""
    problem = regex_problem(pattern)
    if problem is not None:
        raise ValueError(
            f"invalid regular expression {pattern!r}: {problem} (patterns run in the {ENGINE} "
            "engine: no look-around, no backreferences)"
        )
    return pattern


def check_regexes(patterns: list[str]) -> list[str]:
    """Validate a list of patterns; the error names the 0-based index of the first bad one."""
    for i, pattern in enumerate(patterns):
        try:
            check_regex(pattern)
        except ValueError as exc:
            raise ValueError(f"item {i}: {exc}") from None
    return patterns


def contains(expr: pl.Expr, pattern: str) -> pl.Expr:
    """``re.search`` semantics for a validated pattern (null text: no match)."""
    return expr.str.contains(pattern).fill_null(False)


# Sentinels that mark match boundaries in ``spans``: private-use code points, with a search for
# a pair absent from the batch (a text could carry any character).
_SENTINEL_BASE = 0xF0000


def _sentinels(texts: list[str]) -> tuple[str, str]:
    code = _SENTINEL_BASE
    while True:
        a, b = chr(code), chr(code + 1)
        if not any(a in t or b in t for t in texts):
            return a, b
        code += 2


def spans(pattern: str, texts: list[str]) -> list[list[tuple[int, int]]]:
    """(start, end) character offsets of the non-empty, non-overlapping, leftmost-first matches
    of a validated pattern in each text, as ``re.finditer`` would give them.

    Polars returns matched strings, not offsets, so each match is wrapped in two sentinel
    characters by the engine's own ``replace_all`` (one call for the batch) and the offsets are
    read back from the marked text: the matching itself stays in the linear-time engine, with
    its Unicode classes."""
    if not texts:
        return []
    a, b = _sentinels(texts)
    marked = pl.Series(texts, dtype=pl.String).str.replace_all(pattern, f"{a}${{0}}{b}")
    return [_read_marks(m, a, b) for m in marked.to_list()]


def _read_marks(marked: str, a: str, b: str) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    shift = 0  # sentinels inserted before the current position
    i = marked.find(a)
    while i != -1:
        j = marked.find(b, i + 1)
        start, end = i - shift, j - shift - 1
        shift += 2
        if end > start:
            found.append((start, end))
        i = marked.find(a, j + 1)
    return found
