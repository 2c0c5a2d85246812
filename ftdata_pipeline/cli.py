"""The ``ftdata`` command: validate configs, materialize datasets headlessly, summarize a run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ftdata_pipeline import cli_governance, cli_pii
from ftdata_pipeline.config.loader import (
    DEFAULT_CONFIG_DIR_ENV,
    ConfigError,
    default_config_dir,
    load_project,
    load_project_parts,
)

STAGES = ("curated", "redacted", "labeled", "split")


def _deployment_problems() -> list[str]:
    """The deployment's environment variables that a run reads (where steps run, where PII
    detection fans out): a value that would fail the run, named by its variable."""
    from ftdata_pipeline.orchestration.executors import ExecutorConfigError, executor_from_env
    from ftdata_pipeline.stages.pii.cluster import PiiClusterError, scheduler_from_env

    problems = []
    for check, error in ((executor_from_env, ExecutorConfigError),
                         (scheduler_from_env, PiiClusterError)):
        try:
            check()
        except error as exc:
            problems.append(str(exc))
    return problems


def _cmd_validate(args: argparse.Namespace) -> int:
    project = load_project(args.config_dir)
    deployment = _deployment_problems()
    if deployment:
        raise ConfigError("\n".join(deployment))
    from ftdata_pipeline.config.shared_splits import shared_split_problems

    split_errors, split_notes = shared_split_problems(project)
    if split_errors:
        raise ConfigError("\n".join(split_errors))
    for note in split_notes:
        print(f"note: {note}")
    if not args.skip_data:
        from ftdata_pipeline.config.data_checks import check_against_data
        from ftdata_pipeline.config.loader import default_config_dir

        for note in check_against_data(project, args.config_dir or default_config_dir()):
            print(f"note: {note}")
    print(f"ok: {len(project.sources)} sources, {len(project.recipes)} datasets")
    for name, recipe in sorted(project.recipes.items()):
        print(f"  {name}: {recipe.kind} from {', '.join(recipe.sources)} -> "
              f"{', '.join(recipe.exports.formats)}")
        if recipe.rlhf is not None:
            shares = ", ".join(f"{k} {v:g}" for k, v in recipe.rlhf.shares().items())
            print(f"    RLHF steps on disjoint prompts ({shares}): sft/ "
                  f"{', '.join(recipe.rlhf.sft_formats)}; reward/ the formats above; rl/ "
                  f"{', '.join(recipe.rlhf.rl_formats)}")
    return 0


def _instance():
    from dagster import DagsterInstance

    if os.environ.get("DAGSTER_HOME"):
        from ftdata_pipeline.orchestration.headless import secure_instance_dir

        secure_instance_dir(Path(os.environ["DAGSTER_HOME"]))
        return DagsterInstance.get()
    return DagsterInstance.ephemeral()


def _use_config_dir(args: argparse.Namespace) -> None:
    """Make ``--config-dir`` the one every loader sees, including ``ftdata_pipeline.definitions``
    imported to run a job (and any process a run starts)."""
    if args.config_dir:
        os.environ[DEFAULT_CONFIG_DIR_ENV] = str(Path(args.config_dir).resolve())


def _step_errors(result) -> list[tuple[str, str]]:
    """(step, message) of each failed step: the exception that failed it, not Dagster's wrapper.

    Stage errors are written to name files, records and config keys, never raw values."""
    out = []
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        data = event.step_failure_data
        if data is not None and data.user_failure_data is not None:
            described = data.user_failure_data.description or ""
            out.append((event.step_key, "\n      ".join(described.splitlines()[:12])))
            continue
        error = data.error if data else None
        while error is not None and error.cause is not None and error.cls_name and (
            error.cls_name.startswith(("Dagster", "RetryRequested"))
        ):
            error = error.cause
        message = f"{error.cls_name}: {error.message.strip()}" if error else "unknown error"
        out.append((event.step_key, "\n      ".join(message.splitlines()[:12])))
    return out


def _partition_runs(args, project, job_names: list[str], instance) -> list[tuple[str, str | None]]:
    """(job, partition key) per run: a partitioned dataset runs once per partition asked for."""
    from ftdata_pipeline.orchestration.automation import dataset_job_name
    from ftdata_pipeline.orchestration.partitions import PartitionRequestError, keys_to_run

    if not args.dataset:
        if args.partition or args.all_partitions:
            raise ConfigError("--partition and --all-partitions need --dataset")
        return [(name, None) for name in job_names]
    runs = []
    for dataset in args.dataset:
        try:
            keys = keys_to_run(project.recipes[dataset], project, args.partition,
                               args.all_partitions, instance)
        except PartitionRequestError as exc:
            raise ConfigError(str(exc)) from None
        runs += [(dataset_job_name(dataset), key) for key in keys]
    return runs


def _cmd_materialize(args: argparse.Namespace) -> int:
    from ftdata_pipeline.orchestration.automation import ALL_JOB, dataset_job_name
    from ftdata_pipeline.orchestration.headless import run_job

    _use_config_dir(args)
    loaded = load_project_parts(args.config_dir)
    if args.all or not args.dataset:
        loaded.raise_if_broken()  # "everything" includes the broken recipes
    known = set(loaded.files)
    unknown = sorted(set(args.dataset or ()) - known)
    if unknown:
        print(
            f"error: unknown dataset {', '.join(map(repr, unknown))}; datasets in "
            f"{args.config_dir or default_config_dir()}: {', '.join(sorted(known))}",
            file=sys.stderr,
        )
        return 2
    broken = [loaded.broken[d] for d in args.dataset or () if d in loaded.broken]
    if broken:
        raise ConfigError("\n".join(broken))
    if args.step_processes and not os.environ.get("DAGSTER_HOME"):
        print("error: --step-processes needs DAGSTER_HOME: the steps' processes report "
              "through a persistent Dagster instance (make targets set one)", file=sys.stderr)
        return 2
    job_names = [ALL_JOB] if args.all or not args.dataset else [
        dataset_job_name(d) for d in args.dataset
    ]
    status = 0
    with _instance() as instance:
        runs = _partition_runs(args, loaded.project, job_names, instance)
        for job_name, partition in runs:
            print(f"materializing {job_name}"
                  + (f" partition {partition}" if partition is not None else "") + " ...",
                  flush=True)
            tags = {"dagster/partition": partition} if partition is not None else None
            result = run_job(instance, job_name, on_event=_print_progress, tags=tags,
                             step_processes=args.step_processes)
            failed_checks = [
                f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:"
                f"{e.asset_check_evaluation_data.check_name}"
                for e in result.all_events
                if e.event_type_value == "ASSET_CHECK_EVALUATION"
                and not e.asset_check_evaluation_data.passed
            ]
            print(f"run {result.run_id}: {'succeeded' if result.success else 'FAILED'}")
            for check in failed_checks:
                print(f"  check failed: {check}")
            for step, message in _step_errors(result):
                print(f"  step failed: {step}\n      {message}")
            if not result.success:
                status = 1
    if os.environ.get("DAGSTER_HOME"):
        from ftdata_pipeline.orchestration.headless import secure_instance_dir

        secure_instance_dir(Path(os.environ["DAGSTER_HOME"]))  # files the runs created
    if status == 0:
        _print_next_steps(instance_home=os.environ.get("DAGSTER_HOME"))
    return status


def _print_progress(event) -> None:
    from ftdata_pipeline.orchestration.progress import progress_line

    line = progress_line(event)
    if line:
        print(f"  {line}", flush=True)


def _print_next_steps(instance_home: str | None) -> None:
    from ftdata_pipeline.orchestration.storage import PipelineStorage, default_home

    storage = PipelineStorage(home=default_home())
    print(f"exports: {storage.exports_dir('<dataset>')}")
    print(f"cards:   {storage.cards_dir('<dataset>') / 'README.md'}")
    if instance_home:
        print(f"UI:      make ui  (DAGSTER_HOME={instance_home}), then http://localhost:3000 "
              "-> Runs, or Catalog -> a dataset's lineage")
    else:
        print("UI:      set DAGSTER_HOME to keep runs for the UI (make demo does), then make ui")


def _cmd_summary(args: argparse.Namespace) -> int:
    from ftdata_pipeline.orchestration.storage import PipelineStorage, default_home

    project = load_project(args.config_dir)
    storage = PipelineStorage(home=default_home())
    for name in sorted(project.recipes):
        if args.dataset and name not in args.dataset:
            continue
        print(f"\n{name} ({project.recipes[name].kind})")
        print(f"  {'stage':<10} {'in':>7} {'kept':>7} {'dropped':>8} {'out':>7}  top reasons")
        for stage in STAGES:
            stats = storage.read_stats(name, stage)
            if not stats:
                print(f"  {stage:<10} {'-':>7}")
                continue
            drops = sorted(stats["drops"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
            reasons = ", ".join(f"{r}={n}" for r, n in drops)
            print(f"  {stage:<10} {stats['rows_in']:>7} {stats['rows_kept']:>7} "
                  f"{stats['rows_rejected']:>8} {stats['rows_out']:>7}  {reasons}")
        manifest = storage.exports_dir(name) / "manifest.json"
        if manifest.exists():
            print(f"  exports: {manifest.parent}  (manifest.json)")
            card = storage.cards_dir(name) / "README.md"
            if card.exists():
                print(f"  card:    {card}")
        else:
            print("  exports: not materialized yet")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftdata", description=__doc__)
    parser.add_argument("--config-dir", default=None, help="config directory (default: configs/)")
    sub = parser.add_subparsers(dest="command", required=True)

    val = sub.add_parser("validate", help="check sources.yaml and every recipe")
    val.add_argument("--skip-data", action="store_true",
                     help="check the configs only, without reading the first rows of each source")
    val.set_defaults(func=_cmd_validate)
    mat = sub.add_parser("materialize", help="materialize datasets headlessly")
    mat.add_argument("--all", action="store_true", help="every source and dataset (default)")
    mat.add_argument("--dataset", action="append", help="a dataset name (repeatable)")
    mat.add_argument("--partition", action="append",
                     help="partitioned datasets: a partition key (repeatable; run in key order)")
    mat.add_argument("--all-partitions", action="store_true",
                     help="partitioned datasets: every partition, in key order (a backfill)")
    mat.add_argument("--step-processes", action="store_true",
                     help="run each step in a process of its own, as runs launched from the UI "
                     "do (a process start per step; on large datasets a lower memory peak)")
    mat.set_defaults(func=_cmd_materialize)
    summ = sub.add_parser("summary", help="rows per stage, drop reasons and export paths")
    summ.add_argument("--dataset", action="append", help="a dataset name (repeatable)")
    summ.set_defaults(func=_cmd_summary)
    cli_governance.register(sub)
    cli_pii.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:  # every command reads the configs: one place reports them
        print(f"config error:\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
