"""Governance gates: licence allow-list, retention cutoff and consent, as named filters.

The gates need the sources' configs (licence, retention_days); without them (a stage called
on a bare frame) the licence and retention gates are skipped and the stats say so.

The retention cutoff is measured from an explicit, deterministic as-of date: ``curate.as_of``
in the recipe, else the environment variable ``FTDATA_AS_OF`` (YYYY-MM-DD), else today's UTC
date. Only the last one makes a rerun depend on the calendar; pin one of the first two when a
byte-identical rebuild matters.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import polars as pl

from ftdata_pipeline.config.models import CurateConfig, GovernanceConfig, SourceConfig
from ftdata_pipeline.records import SOURCE
from ftdata_pipeline.stages.curation.filtering import Filter

AS_OF_ENV = "FTDATA_AS_OF"


def resolve_as_of(cfg: CurateConfig) -> tuple[date, str]:
    """The as-of date and where it came from: 'recipe', 'env' or 'today'."""
    if cfg.as_of is not None:
        return cfg.as_of, "recipe"
    raw = os.environ.get(AS_OF_ENV)
    if raw:
        try:
            return date.fromisoformat(raw.strip()), "env"
        except ValueError:
            raise ValueError(f"{AS_OF_ENV} must be a date YYYY-MM-DD") from None
    return datetime.now(UTC).date(), "today"


def refused_sources(
    governance: GovernanceConfig, sources: dict[str, SourceConfig] | None
) -> dict[str, str]:
    """Sources (name -> licence) whose licence is not in the recipe's allow-list."""
    allowed = governance.allowed_licences
    if allowed is None or not sources:
        return {}
    return {n: s.licence for n, s in sorted(sources.items()) if s.licence not in allowed}


def governance_filters(
    cfg: CurateConfig,
    governance: GovernanceConfig,
    sources: dict[str, SourceConfig] | None,
    as_of: date,
) -> list[Filter]:
    filters: list[Filter] = []
    if sources is not None and governance.allowed_licences is not None:
        allowed = list(governance.allowed_licences)
        licence = pl.col(SOURCE).replace_strict(
            {n: s.licence for n, s in sources.items()}, default=None, return_dtype=pl.String
        )
        # A record from a source without a config has no known licence: refused too.
        filters.append(
            Filter(
                "licence_not_allowed",
                licence.is_null() | ~licence.is_in(allowed),
                detail=pl.lit("licence: ") + licence.fill_null("unknown"),
            )
        )
    if sources is not None:
        days = {n: s.retention_days for n, s in sources.items() if s.retention_days is not None}
        if days:
            retention = pl.col(SOURCE).replace_strict(days, default=None, return_dtype=pl.Int64)
            start = datetime.combine(as_of, datetime.min.time(), tzinfo=UTC)
            age_days = (pl.lit(start) - pl.col("created_at")).dt.total_seconds() / 86400.0
            # Unknown created_at or no retention_days: nothing to enforce (null -> pass).
            filters.append(
                Filter(
                    "retention_expired",
                    age_days > retention.cast(pl.Float64),
                    score=age_days,
                    detail=pl.format(
                        "retention_days={} as_of={}", retention, pl.lit(as_of.isoformat())
                    ),
                )
            )
    consent = pl.col("consent")
    fails = consent.not_() if not cfg.require_consent else consent.fill_null(False).not_()
    filters.append(
        Filter(
            "no_consent",
            fails,
            detail=pl.when(consent.is_null()).then(pl.lit("consent unknown")).otherwise(
                pl.lit("consent false")
            ),
        )
    )
    return filters


def cutoff(as_of: date, days: int) -> datetime:
    """Oldest created_at a source with ``days`` of retention may keep (for docs and tests)."""
    return datetime.combine(as_of, datetime.min.time(), tzinfo=UTC) - timedelta(days=days)
