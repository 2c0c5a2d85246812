"""Asset factory: one ``raw/<source>`` asset per source, and one asset group per recipe.

Each asset is a thin wrapper: load inputs, call the pure stage function, store rejects and
stats, record metadata, run the stage's checks. The work itself lives in ``stages/``.
"""

# No `from __future__ import annotations`: Dagster inspects the context type hint at runtime.
import base64
import hashlib
import json
from pathlib import Path

import polars as pl
from dagster import (
    AssetExecutionContext,
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
from ftdata_pipeline.formats.writer import read_manifest, write_exports
from ftdata_pipeline.governance.card import render_card
from ftdata_pipeline.orchestration.checks import CheckPlan, run_checks
from ftdata_pipeline.orchestration.governance import (
    CatalogResource,
    dagster_owner,
    data_version,
    stage_column_lineage,
)
from ftdata_pipeline.orchestration.io_manager import ZONE_TAG
from ftdata_pipeline.orchestration.metadata import (
    config_hash,
    frame_metadata,
    source_config_hash,
    stage_counts,
    stage_metadata,
)
from ftdata_pipeline.orchestration.storage import PipelineStorage
from ftdata_pipeline.records import REJECT_SCHEMA
from ftdata_pipeline.stages.base import StageResult
from ftdata_pipeline.stages.curate import curate
from ftdata_pipeline.stages.label import label
from ftdata_pipeline.stages.labeling.review import write_review_queue
from ftdata_pipeline.stages.raw import load_source
from ftdata_pipeline.stages.redact import get_redactor, redact, residual_pii_counts
from ftdata_pipeline.stages.split import split

SOURCES_GROUP = "sources"
# Stages whose dropped rows still hold raw PII: their rejects go to the restricted zone.
RESTRICTED_REJECT_STAGES = frozenset({"curated", "redacted"})
REJECT_STAGES = ("curated", "redacted", "labeled", "split")


def raw_key(source: str) -> AssetKey:
    return AssetKey(["raw", source])


def stage_key(dataset: str, stage: str) -> AssetKey:
    return AssetKey([dataset, stage])


def _zone(restricted: bool) -> dict[str, str]:
    return {ZONE_TAG: "restricted" if restricted else "open"}


def build_source_asset(name: str, cfg: SourceConfig, root: str) -> AssetsDefinition:
    plan = CheckPlan(
        key=raw_key(name), stage="raw", recipe=None, kind="", annotations=cfg.role == "annotations",
        teacher_outputs=cfg.role == "teacher_outputs",
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
            "location": cfg.path or (f"${cfg.url_env}" if cfg.url_env else cfg.url) or "",
        },
        code_version=f"{__version__}-{source_config_hash(cfg)[:12]}",
        check_specs=plan.specs(),
        kinds={"polars", "parquet", "sql" if cfg.kind == "sql" else cfg.format or "file"},
        owners=[dagster_owner(cfg.owner)],
        required_resource_keys={"catalog"},
    )
    def _raw(context: AssetExecutionContext):
        catalog: CatalogResource = context.resources.catalog
        # Erasure requests apply here, before anything downstream sees the rows:
        # rows read = rows kept + rows erased.
        erasure = catalog.raw_erasure(
            context.run_id, name, cfg, root, load_source(name, cfg, Path(root)),
            source_config_hash(cfg),
        )
        df = erasure.kept
        version = data_version(df)
        catalog.record_raw(context.run_id, name, cfg, root, erasure, version.value)
        if erasure.rows_erased:
            context.log.info(f"raw/{name}: {erasure.rows_erased} row(s) erased on request")
        # raw holds PII: counts and schema only, never a preview
        yield Output(
            df,
            metadata={**frame_metadata(df, preview=False), "role": cfg.role,
                      **erasure.metadata()},
            data_version=version,
        )
        yield from run_checks(plan, df)

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
):
    """Build one stage asset of a dataset; ``run_stage(context, **inputs) -> StageResult``."""
    plan = CheckPlan(key=stage_key(recipe.name, stage), stage=stage, recipe=recipe, kind=recipe.kind)

    @asset(
        key=plan.key,
        group_name=recipe.name,
        ins=ins,
        description=description,
        metadata={**_zone(restricted), "dataset_kind": recipe.kind, "stage": stage},
        code_version=f"{__version__}-{cfg_hash[:12]}",
        check_specs=plan.specs(),
        kinds={"polars", "parquet"},
        required_resource_keys={"storage", "catalog"},
    )
    def _stage(context: AssetExecutionContext, **inputs: pl.LazyFrame):
        storage: PipelineStorage = context.resources.storage
        upstream_columns = {
            ins[n].key: v.collect_schema().names() for n, v in inputs.items() if v is not None
        }
        result: StageResult = run_stage(context, **inputs)
        storage.write_rejects(
            recipe.name, stage, result.rejected, restricted=stage in RESTRICTED_REJECT_STAGES
        )
        storage.write_stats(recipe.name, stage, stage_counts(stage, result))
        context.log.info(
            f"{recipe.name}/{stage}: {result.rows_in} in, {result.rows_kept} kept, "
            f"{result.rows_rejected} rejected {result.drop_counts()}"
        )
        version = data_version(result.kept)
        context.resources.catalog.record_stage(
            context.run_id, recipe.name, stage, result, version.value
        )
        yield Output(
            result.kept,
            metadata={
                **stage_metadata(result, cfg_hash=cfg_hash, preview=not restricted),
                "dagster/column_lineage": stage_column_lineage(
                    stage, result.kept.columns, upstream_columns
                ),
            },
            data_version=version,
        )
        residual = residual_pii_counts(result.kept) if stage == "redacted" else None
        yield from run_checks(
            plan,
            result.kept,
            rows_in=result.rows_in,
            rows_rejected=result.rows_rejected,
            one_row_per_input=not (
                stage == "labeled" and recipe.label.method in ("rankings", "ratings")
            ),
            residual_pii=residual,
            stats=result.stats,
        )

    return _stage


def build_dataset_assets(
    recipe: RecipeConfig, project: ProjectConfig
) -> list[AssetsDefinition]:
    name = recipe.name
    cfg_hash = config_hash(recipe, project.sources)
    raw_ins = {f"raw_{src}": AssetIn(raw_key(src)) for src in recipe.sources}

    def run_curate(context, **raws: pl.LazyFrame) -> StageResult:
        frames = [raws[f"raw_{src}"] for src in recipe.sources]
        sources = {src: project.sources[src] for src in recipe.sources}
        return curate(
            pl.concat(frames, how="diagonal_relaxed"), recipe, sources, root=Path(project.root)
        )

    def run_redact(context, curated: pl.LazyFrame) -> StageResult:
        return redact(curated, recipe.redact, get_redactor(recipe.redact))

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
            raw_teacher = anns[f"teacher_{recipe.label.teacher_sources[0]}"]
            teacher = redact(raw_teacher, recipe.redact, get_redactor(recipe.redact)).kept.lazy()
        result = label(redacted, recipe, annotations, teacher)
        if recipe.label.method == "majority_vote":
            # Records the annotators disagree on, as Label Studio tasks (redacted text only).
            result.stats |= write_review_queue(
                result.rejected,
                context.resources.storage.root / "review" / name,
                list(recipe.label.label_set),
            )
        return result

    def run_split(context, labeled: pl.LazyFrame) -> StageResult:
        return split(labeled, recipe)

    assets = [
        _stage_asset(
            recipe, cfg_hash, "curated", raw_ins, restricted=True, run_stage=run_curate,
            description="Normalized, filtered and exact-deduplicated records (still holds PII)",
        ),
        _stage_asset(
            recipe, cfg_hash, "redacted", {"curated": AssetIn(stage_key(name, "curated"))},
            restricted=False, run_stage=run_redact,
            description="Records with PII replaced by typed placeholders (Presidio)",
        ),
        _stage_asset(
            recipe, cfg_hash, "labeled", label_ins, restricted=False, run_stage=run_label,
            description=f"Records labeled by {recipe.label.method!r}",
        ),
        _stage_asset(
            recipe, cfg_hash, "split", {"labeled": AssetIn(stage_key(name, "labeled"))},
            restricted=False, run_stage=run_split,
            description="Group-aware train/validation/test split",
        ),
        _exports_asset(recipe, cfg_hash),
        _card_asset(recipe, project, cfg_hash),
        _rejected_asset(recipe, cfg_hash),
    ]
    return assets


def _exports_asset(recipe: RecipeConfig, cfg_hash: str) -> AssetsDefinition:
    @asset(
        key=stage_key(recipe.name, "exports"),
        group_name=recipe.name,
        ins={"split": AssetIn(stage_key(recipe.name, "split"))},
        description=f"Training files ({', '.join(recipe.exports.formats)}) and manifest.json",
        metadata={**_zone(False), "formats": ", ".join(recipe.exports.formats)},
        code_version=f"{__version__}-{cfg_hash[:12]}",
        kinds={"json"},
        required_resource_keys={"storage", "catalog"},
    )
    def _exports(context: AssetExecutionContext, split: pl.LazyFrame) -> MaterializeResult:
        storage: PipelineStorage = context.resources.storage
        out_dir = storage.exports_dir(recipe.name)
        split_df = split.collect()
        manifest = write_exports(split_df, recipe, out_dir, config_hash=cfg_hash)
        context.log.info(f"{recipe.name}: wrote {len(manifest['files'])} files to {out_dir}")
        # dataset version, export files and one lineage row per exported record
        governance = context.resources.catalog.record_export(
            context.run_id, recipe, cfg_hash, manifest, split_df
        )
        return MaterializeResult(
            data_version=DataVersion(
                hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
            ),
            metadata={
                **governance,
                "path": MetadataValue.path(str(out_dir)),
                "manifest": MetadataValue.json(manifest),
                "files": len(manifest["files"]),
                "records_per_split": MetadataValue.json(manifest["splits"]),
                "config_hash": cfg_hash,
            }
        )

    return _exports


def _card_asset(recipe: RecipeConfig, project: ProjectConfig, cfg_hash: str) -> AssetsDefinition:
    @asset(
        key=stage_key(recipe.name, "card"),
        group_name=recipe.name,
        deps=[stage_key(recipe.name, "exports")],
        description="Dataset card: purpose, sources and licences, PII handling, counts, splits",
        metadata={**_zone(False)},
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
            {"counts": split_stats.get("records", {}), "label_counts": split_stats.get("labels")},
            by_stage.get("redacted", {}).get("stats", {}),
            read_manifest(storage.exports_dir(recipe.name)),
            storage.cards_dir(recipe.name),
            version={
                "code_version": __version__,
                "inputs": {
                    s: getattr(catalog.latest_raw(s), "data_version", None) for s in card_sources
                },
            },
        )
        meta = {
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


def _embed_plots(plots: list[Path]) -> str:
    """PNG plots inline in Markdown metadata, so the UI shows them without file access."""
    parts = []
    for plot in plots:
        data = base64.b64encode(plot.read_bytes()).decode("ascii")
        parts.append(f"![{plot.stem}](data:image/png;base64,{data})")
    return "\n\n".join(parts) or "no plots"


def _rejected_asset(recipe: RecipeConfig, cfg_hash: str) -> AssetsDefinition:
    @asset(
        key=stage_key(recipe.name, "rejected"),
        group_name=recipe.name,
        deps=[stage_key(recipe.name, s) for s in REJECT_STAGES],
        description="Every record a stage dropped: ids, stage, rule, score (full rows kept aside)",
        metadata={**_zone(False)},
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
        index = pl.concat(frames, how="vertical").cast(REJECT_SCHEMA).sort(
            ["stage", "rule", "record_id"]
        )
        by_rule = index.group_by(["stage", "rule"]).len().sort(["stage", "rule"])
        yield Output(
            index,
            metadata={
                **frame_metadata(index, preview=True),
                "rejected_per_rule": MetadataValue.json(
                    {f"{s}/{r}": n for s, r, n in by_rule.iter_rows()}
                ),
                "config_hash": cfg_hash,
            },
        )

    return _rejected


def build_all_assets(project: ProjectConfig) -> list[AssetsDefinition]:
    assets = [
        build_source_asset(name, cfg, project.root) for name, cfg in sorted(project.sources.items())
    ]
    for recipe in sorted(project.recipes.values(), key=lambda r: r.name):
        assets.extend(build_dataset_assets(recipe, project))
    return assets
