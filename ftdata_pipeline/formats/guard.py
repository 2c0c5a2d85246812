"""The size guard on exports: a new export may not silently replace a good one with much less.

An empty or truncated input (a 0-byte landing file, a half-uploaded one) would otherwise give a
successful run that publishes an empty export over a good one. The guard compares the staged
export's record count with the published one's, before the swap:

- 0 records fails (also on a first export);
- a drop of more than ``exports.max_drop_fraction`` of the previous count fails (default 0.5;
  null disables this part);
- an intended shrink is accepted for one run with ``FTDATA_ALLOW_SHRINK=<dataset>[,...]`` (or
  ``*``), the variable the raw-input guard also reads, so one override covers both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ALLOW_SHRINK_ENV = "FTDATA_ALLOW_SHRINK"


def shrink_allowed(name: str) -> bool:
    allowed = {n.strip() for n in os.environ.get(ALLOW_SHRINK_ENV, "").split(",") if n.strip()}
    return "*" in allowed or name in allowed


@dataclass(frozen=True)
class ShrinkVerdict:
    passed: bool
    previous: int | None
    new: int
    drop_fraction: float | None
    max_drop_fraction: float | None
    overridden: bool
    reason: str


def check_shrink(
    dataset: str, previous: int | None, new: int, max_drop_fraction: float | None
) -> ShrinkVerdict:
    """Compare the staged export's record count with the published export's (None: none)."""
    drop = None if not previous else max(0.0, (previous - new) / previous)
    problem = ""
    if new == 0:
        problem = "the new export has 0 records"
    elif drop is not None and max_drop_fraction is not None and drop > max_drop_fraction:
        problem = (f"records would drop from {previous} to {new} ({drop:.0%}), more than "
                   f"exports.max_drop_fraction {max_drop_fraction:.0%}")
    overridden = bool(problem) and shrink_allowed(dataset)
    if not problem:
        reason = f"{new} records" + (f" (previously {previous})" if previous is not None else "")
    elif overridden:
        reason = f"{problem}; accepted by {ALLOW_SHRINK_ENV}"
    else:
        reason = (f"{problem}; the previous export is kept. If intended, rerun with "
                  f"{ALLOW_SHRINK_ENV}={dataset}")
    return ShrinkVerdict(not problem or overridden, previous, new, drop, max_drop_fraction,
                         overridden, reason)
