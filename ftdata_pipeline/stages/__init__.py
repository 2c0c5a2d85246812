"""Pure pipeline stages over Polars frames: ``(frame, stage config) -> StageResult``.

Nothing in this package imports Dagster; the orchestration layer wires stages into assets.
"""

from ftdata_pipeline.stages.base import StageResult, reject

__all__ = ["StageResult", "reject"]
