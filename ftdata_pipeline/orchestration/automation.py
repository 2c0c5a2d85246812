"""Jobs and schedules: one job for everything, one per dataset, schedules from recipes."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    RetryPolicy,
    ScheduleDefinition,
    define_asset_job,
)

from ftdata_pipeline.config.models import ProjectConfig

ALL_JOB = "materialize_all"
# Transient failures (a database hiccup while reading a SQL source) deserve one more try;
# data errors fail the same way twice, so more retries only delay the error message.
RETRY_POLICY = RetryPolicy(max_retries=1, delay=5)


def dataset_job_name(dataset: str) -> str:
    return f"{dataset}_job"


def build_jobs(project: ProjectConfig) -> list:
    jobs = [
        define_asset_job(
            ALL_JOB,
            selection=AssetSelection.all(),
            description="Every source and every dataset, end to end",
            op_retry_policy=RETRY_POLICY,
        )
    ]
    for name in sorted(project.recipes):
        jobs.append(
            define_asset_job(
                dataset_job_name(name),
                # the dataset's group plus the raw sources it reads
                selection=AssetSelection.groups(name).upstream(),
                description=f"Materialize dataset {name!r} from its sources",
                op_retry_policy=RETRY_POLICY,
            )
        )
    return jobs


def build_schedules(project: ProjectConfig, jobs) -> list[ScheduleDefinition]:
    by_name = {job.name: job for job in jobs}
    schedules = []
    for name, recipe in sorted(project.recipes.items()):
        if recipe.schedule is None:
            continue
        schedules.append(
            ScheduleDefinition(
                name=f"{name}_schedule",
                job=by_name[dataset_job_name(name)],
                cron_schedule=recipe.schedule.cron,
                execution_timezone=recipe.schedule.timezone,
                description=f"Refresh dataset {name!r} ({recipe.schedule.cron})",
            )
        )
    return schedules
