"""User regular expressions, compiled and run by one linear-time engine: Polars' (Rust ``regex``).

Recipes carry regexes (boilerplate patterns, refusal patterns, label rules). A backtracking
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
