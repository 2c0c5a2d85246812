"""Dagster code location: builds every asset, check, job, schedule and resource from configs/.

A new recipe file in configs/datasets/ is a new asset group; no Python is needed.
"""

from __future__ import annotations

from dagster import Definitions

from ftdata_pipeline.config.loader import load_project
from ftdata_pipeline.governance.catalog import default_catalog_url
from ftdata_pipeline.orchestration.assets import build_all_assets
from ftdata_pipeline.orchestration.automation import build_jobs, build_schedules, build_sensors
from ftdata_pipeline.orchestration.executors import executor_from_env
from ftdata_pipeline.orchestration.governance import CatalogResource
from ftdata_pipeline.orchestration.io_manager import PolarsParquetIOManager
from ftdata_pipeline.orchestration.storage import PipelineStorage, default_home


def build_definitions(
    config_dir=None, home: str | None = None, catalog_url: str | None = None
) -> Definitions:
    """``catalog_url``: default FTDATA_CATALOG_URL, else SQLite in ``home``."""
    project = load_project(config_dir)
    storage = PipelineStorage(home=home or default_home())
    catalog = CatalogResource(url=catalog_url or default_catalog_url(storage.home))
    jobs = build_jobs(project)
    return Definitions(
        assets=build_all_assets(project),
        jobs=jobs,
        schedules=build_schedules(project, jobs),
        sensors=build_sensors(project, jobs),
        resources={
            "storage": storage,
            "io_manager": PolarsParquetIOManager(storage=storage),
            "catalog": catalog,
        },
        # FTDATA_EXECUTOR: Dagster's default, or a Dask cluster for teams (executors.py)
        executor=executor_from_env(),
    )


defs = build_definitions()
