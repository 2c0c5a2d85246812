"""What the split stage needs to know about the rest of the project.

Which of a recipe's sources other recipes read too (their records keep one split across
datasets), and how this dataset's split compares with the latest split of every other
dataset sharing a source (read from storage, not a Dagster dependency: datasets stay
independent asset groups, and whichever materializes second reports a disagreement).
"""

from __future__ import annotations

import polars as pl

from ftdata_pipeline.config.models import ProjectConfig, RecipeConfig
from ftdata_pipeline.orchestration.storage import PipelineStorage
from ftdata_pipeline.records import SOURCE, SOURCE_KEY
from ftdata_pipeline.stages.split import cross_dataset_conflicts


def shared_sources(recipe: RecipeConfig, project: ProjectConfig) -> frozenset[str]:
    """The recipe's sources that at least one other recipe also reads."""
    readers = project.readers()
    return frozenset(s for s in recipe.sources if len(readers.get(s, ())) > 1)


def cross_dataset_report(
    kept: pl.DataFrame | pl.LazyFrame, recipe: RecipeConfig, project: ProjectConfig,
    storage: PipelineStorage,
) -> dict:
    """``cross_dataset_conflicts`` against each other dataset's stored split, if any."""
    readers = project.readers()
    others: dict[str, pl.DataFrame] = {}
    for name in sorted({d for s in recipe.sources for d in readers.get(s, ())} - {recipe.name}):
        path = storage.asset_path([name, "split"], restricted=False)
        if path.exists():
            others[name] = pl.read_parquet(path, columns=[SOURCE, SOURCE_KEY, "split"])
    return cross_dataset_conflicts(kept, others)
