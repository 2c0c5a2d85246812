"""Jobs, schedules and sensors: one job for everything, one per dataset, schedules from
recipes, and a sensor per file source that runs the datasets reading it when its file changes.
"""

from __future__ import annotations

import json
from pathlib import Path

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RetryPolicy,
    RunRequest,
    ScheduleDefinition,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)

from ftdata_pipeline.config.models import ProjectConfig
from ftdata_pipeline.orchestration.partitions import (
    PARTITIONED_TAG,
    PARTITIONS,
    day_schedule,
    partition_files,
    recipe_partitions,
    source_partitions,
)

ALL_JOB = "materialize_all"
CONFIG_ERROR_TAG = "ftdata/config_error"
# Transient failures (a database hiccup while reading a SQL source) deserve one more try;
# data errors fail the same way twice, so more retries only delay the error message.
RETRY_POLICY = RetryPolicy(max_retries=1, delay=5)
DATASET_TAG = "ftdata/dataset"


def dataset_job_name(dataset: str) -> str:
    return f"{dataset}_job"


def build_jobs(project: ProjectConfig) -> list:
    jobs = [
        define_asset_job(
            ALL_JOB,
            # every loadable asset: a broken recipe's error asset is not part of "everything"
            # and not the partitioned assets: they run per partition, in their dataset's job
            selection=AssetSelection.all() - AssetSelection.tag(CONFIG_ERROR_TAG, "true")
            - AssetSelection.tag(PARTITIONED_TAG, "true"),
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
                # run queues limit concurrency per dataset by this tag (configs/dagster-team.yaml)
                tags={DATASET_TAG: name},
            )
        )
    return jobs


def build_schedules(project: ProjectConfig, jobs) -> list[ScheduleDefinition]:
    by_name = {job.name: job for job in jobs}
    schedules = []
    for name, recipe in sorted(project.recipes.items()):
        if recipe.schedule is None:
            continue
        if recipe_partitions(recipe, project) is not None:
            # by day (validation refuses a schedule on a dataset partitioned by file)
            schedules.append(day_schedule(recipe, by_name[dataset_job_name(name)]))
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


def file_fingerprint(path: Path) -> str | None:
    """Size and modification time of a source file: cheap, and changes when a file lands."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _source_path(project: ProjectConfig, source: str) -> Path:
    path = Path(project.sources[source].path)
    return path if path.is_absolute() else Path(project.root) / path


def build_sensors(project: ProjectConfig, jobs) -> list[SensorDefinition]:
    """One sensor per file source that some recipe reads (stopped until enabled in the UI).

    A new or replaced file in the source's location requests one run of each dataset job that
    reads the source; the cursor remembers the file's fingerprint, so a file is picked up once.
    """
    by_name = {job.name: job for job in jobs}
    sensors = []
    for source in sorted(project.sources):
        if project.sources[source].kind != "file":
            continue
        datasets = sorted(
            name
            for name, recipe in project.recipes.items()
            if source in recipe.sources or source in [*recipe.label.annotation_sources, *recipe.label.teacher_sources]
        )
        partition = project.sources[source].partition
        if datasets and partition is not None:
            # a day-partitioned file is refreshed by partition (backfill), not on landing
            if PARTITIONS[partition.by].dynamic:
                sensors.append(_partition_sensor(
                    project, source, datasets, [by_name[dataset_job_name(d)] for d in datasets]
                ))
        elif datasets:
            sensors.append(
                _landing_sensor(
                    project, source, datasets, [by_name[dataset_job_name(d)] for d in datasets]
                )
            )
    return sensors


def _landing(source: str, jobs, description: str):
    """The decorator of a source's landing sensor: one per source, polled every minute, off
    until switched on in the UI, whether the source is read whole or by file partition."""
    return sensor(
        name=f"{source}_landing_sensor",
        jobs=jobs,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.STOPPED,
        description=description,
    )


def _landing_sensor(
    project: ProjectConfig, source: str, datasets: list[str], jobs
) -> SensorDefinition:
    path = _source_path(project, source)

    @_landing(source, jobs, f"Runs {', '.join(datasets)} when {path.name} changes")
    def _sensor(context: SensorEvaluationContext):
        fingerprint = file_fingerprint(path)
        if fingerprint is None:
            return SkipReason(f"no file at {path}")
        if fingerprint == context.cursor:
            return SkipReason(f"{path.name} unchanged")
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=f"{source}:{fingerprint}:{name}",
                    job_name=dataset_job_name(name),
                    tags={"ftdata/trigger": f"{source} changed"},
                )
                for name in datasets
            ],
            cursor=fingerprint,
        )

    return _sensor


def _partition_sensor(
    project: ProjectConfig, source: str, datasets: list[str], jobs
) -> SensorDefinition:
    """A source partitioned by file: each new file becomes a partition and runs its datasets
    for that partition; a replaced file (new size or time) reruns its partition.

    The cursor maps each seen file's partition key to its fingerprint.
    """
    cfg = project.sources[source]
    partitions_def = source_partitions(source, cfg)

    @_landing(source, jobs, f"Adds a partition of {source} per new file in {cfg.path} and "
              f"runs {', '.join(datasets)} for it")
    def _sensor(context: SensorEvaluationContext):
        files = partition_files(cfg, Path(project.root))
        seen = json.loads(context.cursor) if context.cursor else {}
        now = {key: file_fingerprint(path) for key, path in files.items()}
        changed = [key for key, fp in now.items() if fp is not None and seen.get(key) != fp]
        if not changed:
            return SkipReason(f"no new or changed file in {cfg.path}")
        known = set(context.instance.get_dynamic_partitions(partitions_def.name))
        new = [key for key in changed if key not in known]
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=f"{source}:{key}:{now[key]}:{name}",
                    job_name=dataset_job_name(name),
                    partition_key=key,
                    tags={"ftdata/trigger": f"{source} file {key}"},
                )
                for key in changed for name in datasets
            ],
            dynamic_partitions_requests=[partitions_def.build_add_request(new)] if new else [],
            cursor=json.dumps({**seen, **{k: now[k] for k in changed}}, sort_keys=True),
        )

    return _sensor
