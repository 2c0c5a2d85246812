"""The raw input's size guard: no rows, or far fewer than last time, is not a good input.

A 0-byte or half-uploaded landing file reads as few or no rows, and everything downstream
would then replace a good export with a smaller one. The guard compares the rows read now
with the previous accepted materialization of the same source: zero rows, or a drop beyond
the source's ``max_drop_fraction``, fails the blocking ``input_not_shrunk`` check, so nothing
downstream runs and the previous exports stay. An intended shrink is accepted for one run
with ``FTDATA_ALLOW_SHRINK=<source>[,<source>...]`` (or ``*``), and the override is recorded.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

ALLOW_SHRINK_ENV = "FTDATA_ALLOW_SHRINK"
GUARD_PASSED, GUARD_FAILED = "passed", "failed"


@dataclass(frozen=True)
class GuardResult:
    passed: bool
    rows: int
    previous_rows: int | None
    max_drop_fraction: float | None
    overridden: bool
    reason: str

    def metadata(self) -> dict:
        out = asdict(self)
        out["previous_rows"] = -1 if self.previous_rows is None else self.previous_rows
        out["max_drop_fraction"] = "none" if self.max_drop_fraction is None else self.max_drop_fraction
        return out


def shrink_allowed(name: str, environ: dict | None = None) -> bool:
    value = (environ if environ is not None else os.environ).get(ALLOW_SHRINK_ENV, "")
    names = {v.strip() for v in value.split(",") if v.strip()}
    return "*" in names or name in names


def input_guard(
    name: str,
    rows: int,
    previous_rows: int | None,
    max_drop_fraction: float | None,
    *,
    allow_shrink: bool = False,
) -> GuardResult:
    """Judge ``rows`` read now against ``previous_rows`` (None: no accepted earlier run)."""
    problem = None
    if rows == 0:
        problem = "the source has no rows (an empty or truncated file, or an empty query result)"
    elif previous_rows and max_drop_fraction is not None:
        floor = previous_rows * (1 - max_drop_fraction)
        if rows < floor:
            drop = 1 - rows / previous_rows
            problem = (
                f"{rows} rows, {drop:.0%} fewer than the previous accepted run's {previous_rows} "
                f"(max_drop_fraction {max_drop_fraction:g})"
            )
    if problem is None:
        reason = f"{rows} rows" + (
            f" (previous accepted run: {previous_rows})" if previous_rows is not None else ""
        )
        return GuardResult(True, rows, previous_rows, max_drop_fraction, False, reason)
    if allow_shrink:
        return GuardResult(True, rows, previous_rows, max_drop_fraction, True,
                           f"accepted by {ALLOW_SHRINK_ENV}: {problem}")
    return GuardResult(
        False, rows, previous_rows, max_drop_fraction, False,
        f"source {name!r}: {problem}; nothing downstream runs and the previous exports stay. "
        f"If the shrink is intended, rerun with {ALLOW_SHRINK_ENV}={name}",
    )
