"""Asset factory: one ``raw/<source>`` asset per source, and one asset group per recipe.

Each asset is a thin wrapper: load inputs, call the pure stage function, store rejects and
stats, record metadata, run the stage's checks. The work itself lives in ``stages/``.
"""

# No `from __future__ import annotations`: Dagster inspects the context type hint at runtime.
# The redaction stage (Presidio, spaCy) is imported inside the steps that redact: every step
# process and the run's coordinator import this module, and the others need none of it.
import base64
import hashlib
import json
from pathlib import Path

import polars as pl
from dagster import (
    AssetExecutionContext,
    CodeReferencesMetadataValue,
    LocalFileCodeReference,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)

from ftdata_pipeline import __version__
from ftdata_pipeline.config.models import ProjectConfig, RecipeConfig, SourceConfig
from ftdata_pipeline.formats.writer import read_manifest, stage_exports
from ftdata_pipeline.governance.card import render_card
from ftdata_pipeline.governance.card_split import rlhf_section
from ftdata_pipeline.governance.erasure import erasure_summary
from ftdata_pipeline.orchestration.checks import CheckPlan, run_checks
from ftdata_pipeline.orchestration.errors import step_errors
from ftdata_pipeline.orchestration.export_checks import export_check_results, export_check_specs
from ftdata_pipeline.orchestration.governance import (
    CatalogResource,
    dagster_owner,
    data_version,
    stage_column_lineage,
)
from ftdata_pipeline.orchestration.io_manager import ZONE_TAG
from ftdata_pipeline.orchestration.partition_erasure import raw_partition_erasure
from ftdata_pipeline.orchestration.partition_runs import (
    UNCHANGED,
    DedupIndex,
    run_partition,
    write_partition_stats,
)
from ftdata_pipeline.orchestration.partitions import (
    PARTITIONED_TAG,
    read_partition,
    recipe_partitions,
    source_partitions,
)
from ftdata_pipeline.orchestration.metadata import (
    config_hash,
    drop_metadata,
    frame_metadata,
    source_config_hash,
    stage_counts,
    stage_metadata,
)
from ftdata_pipeline.orchestration.split_inputs import cross_dataset_report, shared_sources
from ftdata_pipeline.orchestration.storage import PipelineStorage, partition_file_name
from ftdata_pipeline.records import REJECT_SCHEMA
from ftdata_pipeline.stages.base import StageResult
from ftdata_pipeline.stages.curate import curate
from ftdata_pipeline.stages.curation.index import PartitionDedup
from ftdata_pipeline.stages.label import label
from ftdata_pipeline.orchestration.raw_input import (
    previous_accepted_rows,
    source_read_metadata,
    write_quarantine,
)
from ftdata_pipeline.sources import source_kind
from ftdata_pipeline.sources.guard import input_guard, shrink_allowed
from ftdata_pipeline.stages.labeling.review import write_review_queue
from ftdata_pipeline.stages.raw import read_source
from ftdata_pipeline.stages.split import split
from ftdata_pipeline.stages.split.rlhf import step_report

SOURCES_GROUP = "sources"
# Stages whose dropped rows still hold raw PII: their rejects go to the restricted zone.
RESTRICTED_REJECT_STAGES = frozenset({"curated", "redacted"})
REJECT_STAGES = ("curated", "redacted", "labeled", "split")


def raw_key(source: str) -> AssetKey:
    return AssetKey(["raw", source])


def stage_key(dataset: str, stage: str) -> AssetKey:
    return AssetKey([dataset, stage])


def recipe_owners(recipe: RecipeConfig, project: ProjectConfig) -> list[str]:
    """The recipe's owner, else the owners of the sources it reads (Dagster's owner format)."""
    if recipe.owner:
        return [dagster_owner(recipe.owner)]
    used = [*recipe.sources, *recipe.label.annotation_sources, *recipe.label.teacher_sources]
    owners = [project.sources[s].owner for s in used if s in project.sources]
    return sorted({dagster_owner(o) for o in owners})


def recipe_code_reference(recipe_file: Path | None) -> dict:
    """``dagster/code_references`` pointing at the recipe YAML (the UI links to the file)."""
    if recipe_file is None:
        return {}
    return {
        "dagster/code_references": CodeReferencesMetadataValue(
            code_references=[
                LocalFileCodeReference(
                    file_path=str(Path(recipe_file).resolve()), line_number=1, label="recipe"
                )
            ]
        )
    }


def _zone(restricted: bool) -> dict[str, str]:
    return {ZONE_TAG: "restricted" if restricted else "open"}


def _partitioned(partitions_def) -> dict:
    """@asset arguments of a partitioned asset (none for an unpartitioned one: unchanged)."""
    if partitions_def is None:
        return {}
    return {"partitions_def": partitions_def, "tags": {PARTITIONED_TAG: "true"}}


def build_source_asset(name: str, cfg: SourceConfig, root: str) -> AssetsDefinition:
    partitions_def = source_partitions(name, cfg)
    plan = CheckPlan(
        key=raw_key(name), stage="raw", recipe=None, kind="", annotations=cfg.role == "annotations",
        teacher_outputs=cfg.role == "teacher_outputs", partitions_def=partitions_def,
    )

    @asset(
        key=plan.key,
        group_name=SOURCES_GROUP,
        description=cfg.description or f"Raw rows of source {name!r}, mapped onto the record",
        metadata={
            **_zone(True),
            "owner": cfg.owner,
            "licence": cfg.licence,
            "classification": cfg.classification,
            "contains_pii": cfg.contains_pii,
            "retention_days": cfg.retention_days if cfg.retention_days is not None else "none",
            "location": source_kind(cfg).location(cfg),
        },
        code_version=f"{__version__}-{source_config_hash(cfg)[:12]}",
        check_specs=plan.specs(),
        kinds={"polars", "parquet", *source_kind(cfg).asset_kinds(cfg)},
        owners=[dagster_owner(cfg.owner)],
        required_resource_keys={"catalog", "storage"},
        **_partitioned(partitions_def),
    )
    def _raw(context: AssetExecutionContext):
        catalog: CatalogResource = context.resources.catalog
        partition = context.partition_key if partitions_def is not None else None
        read_cfg = cfg  # of a partitioned source: the config reading just this partition
        with step_errors(restricted=True):  # data errors fail once; I/O errors are retried
            if partition is None:
                loaded = read_source(name, cfg, Path(root))
            else:
                loaded, read_cfg = read_partition(name, cfg, Path(root), partition)
        # Bad lines set aside (on_bad_rows: quarantine) hold raw data: restricted zone only.
        write_quarantine(
            context.resources.storage,
            name if partition is None else f"{name}/{partition_file_name(partition)[:-8]}",
            loaded.quarantined,
        )
        guard = input_guard(
            name, loaded.frame.height,
            previous_accepted_rows(context.instance, plan.key, partition),
            cfg.max_drop_fraction, allow_shrink=shrink_allowed(name),
        )
        if not guard.passed:
            context.log.error(f"raw/{name}: {guard.reason}")
        # Erasure requests apply here, before anything downstream sees the rows:
        # rows read = rows kept + rows erased.
        if partition is None:
            erasure = catalog.raw_erasure(
                context.run_id, name, read_cfg, root, loaded.frame, source_config_hash(cfg),
            )
            held: dict[int, list[str]] = {}
        else:
            # fulfilled only when no other partition holds the rows; erased rows leave the
            # dedup index (orchestration/partition_erasure.py)
            erasure, held = raw_partition_erasure(
                catalog, context.resources.storage, context.run_id, name, cfg, read_cfg, root,
                loaded.frame, source_config_hash(cfg), partition,
            )
            for request_id, keys in sorted(held.items()):
                context.log.warning(
                    f"raw/{name}: erasure request #{request_id} also has rows in partition(s) "
                    f"{', '.join(keys)}: rematerialize them (the request stays pending)"
                )
        df = erasure.kept
        version = data_version(df)
        catalog.record_raw(context.run_id, name, read_cfg, root, erasure, version.value)
        if erasure.rows_erased:
            context.log.info(f"raw/{name}: {erasure.rows_erased} row(s) erased on request")
        # raw holds PII: counts and schema only, never a preview
        yield Output(
            df,
            metadata={**frame_metadata(df, preview=False), "role": cfg.role,
                      **erasure.metadata(), **source_read_metadata(loaded, guard),
                      **({"partition": partition,
                          "erasure_pending_in_partitions": MetadataValue.json(
                              {str(k): v for k, v in sorted(held.items())})}
                         if partition is not None else {})},
            data_version=version,
        )
        yield from run_checks(plan, df, input_guard=guard)

    return _raw


def _stage_asset(
    recipe: RecipeConfig,
    cfg_hash: str,
    stage: str,
    ins: dict[str, AssetIn],
    *,
    restricted: bool,
    description: str,
    run_stage,
    owners: list[str] | None = None,
    definition_metadata: dict | None = None,
    partitions_def=None,
    spills: bool = False,
):
    """Build one stage asset of a dataset; ``run_stage(context, **inputs) -> StageResult``.

    ``spills``: ``run_stage`` also gets ``spill``, an empty directory for the output it writes
    as it goes (its ``kept`` is then a scan of it); removed once the output is stored and
    checked, however the step ends."""
    plan = CheckPlan(key=stage_key(recipe.name, stage), stage=stage, recipe=recipe, kind=recipe.kind,
                     partitions_def=partitions_def)

    @asset(
        key=plan.key,
        group_name=recipe.name,
        ins=ins,
        description=description,
        metadata={
            **_zone(restricted), "dataset_kind": recipe.kind, "stage": stage,
            **(definition_metadata or {}),
        },
        owners=owners or None,
        code_version=f"{__version__}-{cfg_hash[:12]}",
        check_specs=plan.specs(),
        kinds={"polars", "parquet"},
        required_resource_keys={"storage", "catalog"},
        **_partitioned(partitions_def),
    )
    def _stage(context: AssetExecutionContext, **inputs: pl.LazyFrame):
        storage: PipelineStorage = context.resources.storage
        if not spills:
            yield from _store(context, storage, inputs, {})
            return
        with storage.spill_dir(recipe.name, stage, restricted=restricted) as spill:
            yield from _store(context, storage, inputs, {"spill": spill})

    def _store(context, storage: PipelineStorage, inputs: dict, extra: dict):
        upstream_columns = {
            ins[n].key: v.collect_schema().names() for n, v in inputs.items() if v is not None
        }
        with step_errors(restricted=restricted or stage == "redacted"):
            result: StageResult = run_stage(context, **inputs, **extra)
        partition = context.partition_key if partitions_def is not None else None
        storage.write_rejects(
            recipe.name, stage, result.rejected, restricted=stage in RESTRICTED_REJECT_STAGES,
            partition=partition,
        )
        if partition is None:
            storage.write_stats(recipe.name, stage, stage_counts(stage, result))
        else:
            write_partition_stats(storage, recipe.name, stage, partition,
                                  stage_counts(stage, result))
        context.log.info(
            f"{recipe.name}/{stage}: {result.rows_in} in, {result.rows_kept} kept, "
            f"{result.rows_rejected} rejected {result.drop_counts()}"
            + ("" if partition is None else f" (partition {partition}"
               + (", unchanged: stored result" if result.stats.get(UNCHANGED) else "") + ")")
        )
        version = data_version(result.kept)
        context.resources.catalog.record_stage(
            context.run_id, recipe.name, stage, result, version.value
        )
        yield Output(
            result.kept,
            metadata={
                **stage_metadata(
                    result, cfg_hash=cfg_hash, preview=not restricted, kind=recipe.kind
                ),
                "dagster/column_lineage": stage_column_lineage(
                    stage, result.kept.collect_schema().names(), upstream_columns
                ),
                **({} if partition is None else {
                    "partition": partition, UNCHANGED: bool(result.stats.get(UNCHANGED)),
                }),
            },
            data_version=version,
        )
        residual = None
        if stage == "redacted":
            from ftdata_pipeline.stages.redact import residual_pii_counts

            residual = residual_pii_counts(result.kept)
        yield from run_checks(
            plan,
            result.kept,
            rows_in=result.rows_in,
            rows_rejected=result.rows_rejected,
            one_row_per_input=not (  # pairs from responses (ratings on chat data: records)
                stage == "labeled" and recipe.kind == "preference"
                and recipe.label.method in ("rankings", "ratings")
            ),
            residual_pii=residual,
            stats=result.stats,
        )

    return _stage


def build_dataset_assets(
    recipe: RecipeConfig, project: ProjectConfig, recipe_file: Path | None = None
) -> list[AssetsDefinition]:
    name = recipe.name
    common = {
        "owners": recipe_owners(recipe, project),
        "definition_metadata": recipe_code_reference(recipe_file),
    }
    cfg_hash = config_hash(recipe, project.sources)
    raw_ins = {f"raw_{src}": AssetIn(raw_key(src)) for src in recipe.sources}
    # sources cut into partitions: curated and redacted run once per partition
    partitions_def = recipe_partitions(recipe, project)

    def run_curate(context, spill: Path | None = None, **raws: pl.LazyFrame) -> StageResult:
        frames = [raws[f"raw_{src}"] for src in recipe.sources]
        sources = {src: project.sources[src] for src in recipe.sources}
        return curate(
            pl.concat(frames, how="diagonal_relaxed"), recipe, sources, root=Path(project.root),
            spill=spill,
        )

    def run_redact(context, curated: pl.LazyFrame, spill: Path | None = None) -> StageResult:
        # sources declared free of PII are scanned, not redacted (a warning if PII is found)
        scan_only = frozenset(s for s in recipe.sources if not project.sources[s].contains_pii)
        def progress(done: int, total: int) -> None:
            context.log.info(f"{name}/redacted: {done:,} of {total:,} records redacted")

        from ftdata_pipeline.stages.pii.engine import worker_pools
        from ftdata_pipeline.stages.redact import get_redactor, redact

        # The step owns its PII worker pool: stopped when the step ends, however it ends.
        with worker_pools():
            return redact(curated, recipe.redact, get_redactor(recipe.redact), scan_only,
                          progress=progress, spill=spill)

    def run_curate_partition(context, **raws: pl.LazyFrame) -> StageResult:
        """One partition, deduplicated also against what the other partitions kept."""
        storage: PipelineStorage = context.resources.storage
        key = context.partition_key
        frame = pl.concat([raws[f"raw_{src}"] for src in recipe.sources],
                          how="diagonal_relaxed").collect()
        index = DedupIndex(storage, name)
        sources = {src: project.sources[src] for src in recipe.sources}

        def work() -> StageResult:
            dedup = PartitionDedup(key, prior=index.load())
            result = curate(frame.lazy(), recipe, sources, root=Path(project.root),
                            partition=dedup)
            index.replace(key, dedup.kept_entries)  # replaces this partition's own entries
            return result

        return run_partition(storage, dataset=name, stage="curated", partition=key,
                             inputs=frame, cfg_hash=cfg_hash, restricted=True, work=work,
                             reject_restricted=True)

    def run_redact_partition(context, curated: pl.LazyFrame) -> StageResult:
        frame = curated.collect()
        return run_partition(
            context.resources.storage, dataset=name, stage="redacted",
            partition=context.partition_key, inputs=frame, cfg_hash=cfg_hash, restricted=False,
            work=lambda: run_redact(context, frame.lazy()), reject_restricted=True,
        )

    parted = {"partitions_def": partitions_def} if partitions_def is not None else {}
    curate_step, redact_step = run_curate, run_redact
    if partitions_def is not None:
        curate_step, redact_step = run_curate_partition, run_redact_partition

    label_ins = {"redacted": AssetIn(stage_key(name, "redacted"))}
    label_ins |= {f"ann_{src}": AssetIn(raw_key(src)) for src in recipe.label.annotation_sources}
    label_ins |= {f"teacher_{src}": AssetIn(raw_key(src)) for src in recipe.label.teacher_sources}

    def run_label(context, redacted: pl.LazyFrame, **anns: pl.LazyFrame):
        frames = [anns[f"ann_{src}"] for src in recipe.label.annotation_sources]
        annotations = pl.concat(frames, how="diagonal_relaxed") if frames else None
        teacher = None
        if recipe.label.teacher_sources:
            # Teacher answers are free text that can quote the prompt's PII: redact them with
            # the recipe's settings before they meet the (redacted) prompts.
            from ftdata_pipeline.stages.pii.engine import worker_pools
            from ftdata_pipeline.stages.redact import get_redactor, redact

            raw_teacher = anns[f"teacher_{recipe.label.teacher_sources[0]}"]
            with worker_pools():  # the step owns the PII pool, as in the redacted asset
                redactor = get_redactor(recipe.redact)
                teacher = redact(raw_teacher, recipe.redact, redactor).kept.lazy()
        result = label(redacted, recipe, annotations, teacher)
        if recipe.label.method == "majority_vote":
            # Records the annotators disagree on, as Label Studio tasks (redacted text only).
            result.stats |= write_review_queue(
                result.rejected,
                context.resources.storage.root / "review" / name,
                list(recipe.label.label_set),
            )
        return result

    split_ins = {"labeled": AssetIn(stage_key(name, "labeled"))}
    if recipe.reference is not None:
        split_ins["reference"] = AssetIn(raw_key(recipe.reference.source))
    shared = shared_sources(recipe, project)
    if recipe.split.shared_sources == "pin":
        # a shared record's split follows its group over the whole source (see stages/split)
        split_ins.update({f"shared_{src}": AssetIn(raw_key(src)) for src in sorted(shared)})

    def run_split(context, labeled: pl.LazyFrame, reference: pl.LazyFrame | None = None,
                  spill: Path | None = None, **shared_raw: pl.LazyFrame):
        result = split(
            labeled, recipe, shared_sources=shared, root=project.root, reference=reference,
            shared_raw={k.removeprefix("shared_"): v for k, v in shared_raw.items()},
            spill=spill,
        )
        # One split per record across datasets: compare with the other datasets' latest split.
        result.stats["cross_dataset"] = cross_dataset_report(
            result.kept, recipe, project, context.resources.storage
        )
        return result

    assets = [
        _stage_asset(
            recipe, cfg_hash, "curated", raw_ins, restricted=True, run_stage=curate_step, **common,
            description="Normalized, filtered and exact-deduplicated records (still holds PII)",
            **parted, spills=partitions_def is None,  # a partition is curated in memory
        ),
        _stage_asset(
            recipe, cfg_hash, "redacted", {"curated": AssetIn(stage_key(name, "curated"))},
            restricted=False, run_stage=redact_step, **common,
            description="Records with PII replaced by typed placeholders (Presidio)",
            **parted, spills=partitions_def is None,  # a partition is redacted in memory
        ),
        _stage_asset(
            recipe, cfg_hash, "labeled", label_ins, restricted=False, run_stage=run_label, **common,
            description=f"Records labeled by {recipe.label.method!r}",
        ),
        _stage_asset(
            recipe, cfg_hash, "split", split_ins,
            restricted=False, run_stage=run_split, **common, spills=True,
            description="Group-aware train/validation/test split",
        ),
        _exports_asset(recipe, cfg_hash, **common),
        _card_asset(recipe, project, cfg_hash, **common),
        _rejected_asset(recipe, cfg_hash, **common),
    ]
    return assets


def _exports_asset(
    recipe: RecipeConfig, cfg_hash: str, owners=None, definition_metadata=None
) -> AssetsDefinition:
    @asset(
        key=stage_key(recipe.name, "exports"),
        group_name=recipe.name,
        ins={"split": AssetIn(stage_key(recipe.name, "split"))},
        description=f"Training files ({', '.join(recipe.exports.formats)}) and manifest.json"
        + (" per RLHF step (sft/, reward/, rl/)" if recipe.rlhf is not None else ""),
        metadata={
            **_zone(False), "formats": ", ".join(recipe.exports.formats),
            **(definition_metadata or {}),
        },
        owners=owners or None,
        code_version=f"{__version__}-{cfg_hash[:12]}",
        kinds={"json"},
        check_specs=export_check_specs(stage_key(recipe.name, "exports")),
        required_resource_keys={"storage", "catalog"},
    )
    def _exports(context: AssetExecutionContext, split: pl.LazyFrame) -> MaterializeResult:
        storage: PipelineStorage = context.resources.storage
        out_dir = storage.exports_dir(recipe.name)
        # Built aside and checked before it is published: a failing check keeps the previous
        # export at the published path. The split's records are read as they are written.
        with step_errors(restricted=False):
            staged = stage_exports(split, recipe, out_dir, config_hash=cfg_hash)
        if staged.recovered:
            context.log.warning(f"{recipe.name}: cleaned after a killed run: {staged.recovered}")
        # an export a killed run published but never recorded is recorded now
        context.resources.catalog.reconcile_export(recipe.name, out_dir)
        checks = export_check_results(staged, recipe.name, recipe.exports.max_drop_fraction)
        manifest = staged.manifest
        # Records no trainer rule allowed are kept in full, with format and reason.
        storage.write_rejects(recipe.name, "exports", staged.rejected, restricted=False)
        if not all(c.passed for c in checks):
            staged.discard()
            context.log.error(f"{recipe.name}: export checks failed; previous export kept")
            return MaterializeResult(
                check_results=checks,
                metadata={"published": False, "path": MetadataValue.path(str(out_dir)),
                          "config_hash": cfg_hash},
            )
        staged.publish()
        context.log.info(f"{recipe.name}: wrote {len(manifest['files'])} files to {out_dir}")
        # dataset version, export files and one lineage row per exported record
        governance = context.resources.catalog.record_export(
            context.run_id, recipe, cfg_hash, manifest, staged.kept
        )
        return MaterializeResult(
            data_version=DataVersion(
                hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
            ),
            check_results=checks,
            metadata={
                **governance,
                "published": True,
                "path": MetadataValue.path(str(out_dir)),
                "manifest": MetadataValue.json(manifest),
                "files": len(manifest["files"]),
                "records_per_split": MetadataValue.json(manifest["splits"]),
                "records_rejected": manifest["rejected"]["records"],
                **_split_numbers(manifest["splits"]),
                **_rlhf_metadata(recipe, split, manifest),
                "config_hash": cfg_hash,
            }
        )

    return _exports


def _rlhf_metadata(recipe: RecipeConfig, split: pl.LazyFrame, manifest: dict) -> dict:
    """Recipes with RLHF steps: per step, prompts, shares, pairs and examples per split."""
    if recipe.rlhf is None:
        return {}
    report = step_report(split.collect(), recipe.rlhf)
    return {"rlhf_steps": MetadataValue.md("\n".join(rlhf_section(report, manifest["rlhf"])))}


def _card_asset(
    recipe: RecipeConfig, project: ProjectConfig, cfg_hash: str, owners=None,
    definition_metadata=None,
) -> AssetsDefinition:
    @asset(
        key=stage_key(recipe.name, "card"),
        group_name=recipe.name,
        deps=[stage_key(recipe.name, "exports")],
        description="Dataset card: purpose, sources and licences, PII handling, counts, splits",
        metadata={**_zone(False), **(definition_metadata or {})},
        owners=owners or None,
        code_version=f"{__version__}-{cfg_hash[:12]}",
        kinds={"markdown"},
        required_resource_keys={"storage", "catalog"},
    )
    def _card(context: AssetExecutionContext) -> MaterializeResult:
        storage: PipelineStorage = context.resources.storage
        catalog = context.resources.catalog.catalog()
        counts = [storage.read_stats(recipe.name, s) for s in REJECT_STAGES]
        counts = [c for c in counts if c]
        by_stage = {c["stage"]: c for c in counts}
        split_stats = by_stage.get("split", {}).get("stats", {})
        card_sources = [*recipe.sources, *recipe.label.annotation_sources,
                        *recipe.label.teacher_sources]
        paths = render_card(
            recipe,
            {s: project.sources[s] for s in card_sources},
            counts,
            _card_label_stats(by_stage.get("labeled", {}).get("stats", {})),
            {"counts": split_stats.get("records", {}), "label_counts": split_stats.get("labels"),
             "report": split_stats},
            by_stage.get("redacted", {}).get("stats", {}),
            read_manifest(storage.exports_dir(recipe.name)),
            storage.cards_dir(recipe.name),
            version={
                "code_version": __version__,
                "inputs": {
                    s: getattr(catalog.latest_raw(s), "data_version", None) for s in card_sources
                },
            },
            erasure=erasure_summary(catalog, card_sources),
        )
        meta = {
            # the card itself, as the UI renders Markdown, with its plots inline
            "card_markdown": MetadataValue.md(
                _card_with_inline_plots(paths["markdown"], paths.get("plots", []))
            ),
            "card": MetadataValue.path(str(paths["markdown"])),
            "card_json": MetadataValue.path(str(paths["json"])),
        }
        for plot in paths.get("plots", []):
            meta[f"plot_{plot.stem}"] = MetadataValue.path(str(plot))
        meta["plots"] = MetadataValue.md(_embed_plots(paths.get("plots", [])))
        return MaterializeResult(metadata=meta)

    return _card


def _card_label_stats(stats: dict) -> dict:
    """The labeled stage's stats in the card's shape: a distribution and scalar agreements."""
    agreement = dict(stats.get("agreement") or {})
    for pair in agreement.pop("cohen_kappa", None) or []:
        agreement[f"cohen_kappa {' ~ '.join(pair['annotators'])}"] = pair["kappa"]
    agreement.pop("alpha", None)
    agreement.pop("alpha_level", None)
    for level, alpha in (agreement.pop("krippendorff_alpha", None) or {}).items():
        agreement[f"krippendorff_alpha {level}"] = alpha
    for name, per in (agreement.pop("per_label", None) or {}).items():
        agreement[f"krippendorff_alpha label {name}"] = per.get("krippendorff_alpha")
    return {"distribution": stats.get("labels") or {}, "agreement": agreement,
            "teachers": stats.get("teachers") or {}}  # fmt: skip


def _split_numbers(splits: dict) -> dict:
    """Records per split as numbers (the Plots tab charts them across materializations)."""
    out = {}
    for split_name, value in sorted(splits.items()):
        count = value.get("records") if isinstance(value, dict) else value
        if isinstance(count, int):
            out[f"records/{split_name}"] = count
    return out


def _card_with_inline_plots(markdown: Path, plots: list[Path]) -> str:
    """The card's Markdown with each plot image as a data URI instead of a relative file."""
    text = markdown.read_text(encoding="utf-8")
    for plot in plots:
        data = base64.b64encode(plot.read_bytes()).decode("ascii")
        text = text.replace(f"]({plot.name})", f"](data:image/png;base64,{data})")
    return text


def _embed_plots(plots: list[Path]) -> str:
    """PNG plots inline in Markdown metadata, so the UI shows them without file access."""
    parts = []
    for plot in plots:
        data = base64.b64encode(plot.read_bytes()).decode("ascii")
        parts.append(f"![{plot.stem}](data:image/png;base64,{data})")
    return "\n\n".join(parts) or "no plots"


def _rejected_asset(
    recipe: RecipeConfig, cfg_hash: str, owners=None, definition_metadata=None
) -> AssetsDefinition:
    @asset(
        key=stage_key(recipe.name, "rejected"),
        group_name=recipe.name,
        deps=[stage_key(recipe.name, s) for s in REJECT_STAGES],
        description="Every record a stage dropped: ids, stage, rule, score (full rows kept aside)",
        metadata={**_zone(False), **(definition_metadata or {})},
        owners=owners or None,
        code_version=f"{__version__}-{cfg_hash[:12]}",
        kinds={"polars", "parquet"},
        required_resource_keys={"storage"},
    )
    def _rejected(context: AssetExecutionContext):
        storage: PipelineStorage = context.resources.storage
        frames = [
            storage.read_reject_index(
                recipe.name, s, restricted=s in RESTRICTED_REJECT_STAGES
            )
            for s in REJECT_STAGES
        ]
        # records the exports left out (a trainer rule); from the latest exports run
        frames.append(storage.read_reject_index(recipe.name, "exports", restricted=False))
        index = pl.concat(frames, how="vertical").cast(REJECT_SCHEMA).sort(
            ["stage", "rule", "record_id"]
        )
        by_rule = index.group_by(["stage", "rule"]).len().sort(["stage", "rule"])
        yield Output(
            index,
            metadata={
                **frame_metadata(index, preview=True),
                **drop_metadata({f"{s}/{r}": n for s, r, n in by_rule.iter_rows()}),
                "config_hash": cfg_hash,
            },
        )

    return _rejected


def build_all_assets(
    project: ProjectConfig, recipe_files: dict[str, Path] | None = None
) -> list[AssetsDefinition]:
    assets = [
        build_source_asset(name, cfg, project.root) for name, cfg in sorted(project.sources.items())
    ]
    for recipe in sorted(project.recipes.values(), key=lambda r: r.name):
        assets.extend(
            build_dataset_assets(recipe, project, (recipe_files or {}).get(recipe.name))
        )
    return assets
