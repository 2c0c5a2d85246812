"""The ``ftdata`` command: validate configs, materialize datasets headlessly, summarize a run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ftdata_pipeline import cli_governance, cli_pii
from ftdata_pipeline.config.loader import ConfigError, load_project

STAGES = ("curated", "redacted", "labeled", "split")


def _cmd_validate(args: argparse.Namespace) -> int:
    project = load_project(args.config_dir)
    if not args.skip_data:
        from ftdata_pipeline.config.data_checks import check_against_data
        from ftdata_pipeline.config.loader import default_config_dir

        for note in check_against_data(project, args.config_dir or default_config_dir()):
            print(f"note: {note}")
    print(f"ok: {len(project.sources)} sources, {len(project.recipes)} datasets")
    for name, recipe in sorted(project.recipes.items()):
        print(f"  {name}: {recipe.kind} from {', '.join(recipe.sources)} -> "
              f"{', '.join(recipe.exports.formats)}")
    return 0


def _instance():
    from dagster import DagsterInstance

    if os.environ.get("DAGSTER_HOME"):
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        return DagsterInstance.get()
    return DagsterInstance.ephemeral()


def _cmd_materialize(args: argparse.Namespace) -> int:
    from ftdata_pipeline.definitions import build_definitions
    from ftdata_pipeline.orchestration.automation import ALL_JOB, dataset_job_name

    defs = build_definitions(args.config_dir)
    job_names = [ALL_JOB] if args.all or not args.dataset else [
        dataset_job_name(d) for d in args.dataset
    ]
    status = 0
    with _instance() as instance:
        for job_name in job_names:
            job = defs.resolve_job_def(job_name)
            print(f"materializing {job_name} ...", flush=True)
            result = job.execute_in_process(instance=instance, raise_on_error=False)
            failed_steps = [
                e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"
            ]
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
            for step in failed_steps:
                print(f"  step failed: {step}")
            if not result.success:
                status = 1
    return status


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
