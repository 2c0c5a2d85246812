"""Dagster code location: builds every asset, check, job, schedule and resource from configs/.

A new recipe file in configs/datasets/ is a new asset group; no Python is needed.
"""

from __future__ import annotations

from dagster import Definitions

from ftdata_pipeline.config.loader import default_config_dir, load_project_parts
from ftdata_pipeline.governance.catalog import default_catalog_url
from ftdata_pipeline.orchestration.assets import build_all_assets
from ftdata_pipeline.orchestration.automation import build_jobs, build_schedules, build_sensors
from ftdata_pipeline.orchestration.config_errors import build_config_error_assets
from ftdata_pipeline.orchestration.executors import executor_from_env
from ftdata_pipeline.orchestration.governance import CatalogResource
from ftdata_pipeline.orchestration.io_manager import PolarsParquetIOManager
from ftdata_pipeline.orchestration.storage import PipelineStorage, default_home
from ftdata_pipeline.stages.pii.cluster import scheduler_from_env as pii_scheduler_from_env


def build_definitions(
    config_dir=None, home: str | None = None, catalog_url: str | None = None
) -> Definitions:
    """``catalog_url``: default FTDATA_CATALOG_URL, else SQLite in ``home``."""
    # A broken recipe is set aside (shown as its error) so the others still load.
    loaded = load_project_parts(config_dir)
    project = loaded.project
    storage = PipelineStorage(home=home or default_home())
    catalog = CatalogResource(url=catalog_url or default_catalog_url(storage.home))
    jobs = build_jobs(project)
    # FTDATA_PII_DASK_SCHEDULER is read by each redacted step; a malformed value fails the
    # load here already, naming the variable, as a bad FTDATA_EXECUTOR does.
    pii_scheduler_from_env()
    return Definitions(
        assets=[
            *build_all_assets(project, loaded.files),
            *build_config_error_assets(loaded.broken, loaded.files),
        ],
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


def current_settings() -> tuple[str, str]:
    """(config dir, data home) that ``defs`` is built from: the environment at import."""
    return str(default_config_dir()), str(default_home())


BUILT_FROM = current_settings()
defs = build_definitions()
