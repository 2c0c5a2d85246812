"""The Dagster side of governance: the catalog resource, owners, column lineage, data versions.

``CatalogResource`` is what asset wrappers call to record each materialization into the
catalog database (``governance.catalog``) and to apply erasure requests at the raw stage.
Everything it records is counts, ids, keys and hashes.
"""

# No `from __future__ import annotations`: Dagster inspects resource field annotations.
import re
from pathlib import Path
from typing import Any

import polars as pl
from dagster import (
    AssetKey,
    ConfigurableResource,
    DataVersion,
    MetadataValue,
    TableColumnDep,
    TableColumnLineage,
)

from ftdata_pipeline import __version__
from ftdata_pipeline.governance.catalog import Catalog
from ftdata_pipeline.governance.erasure import ErasureError, ErasureOutcome, apply_erasure
from ftdata_pipeline.governance.lineage import export_lineage
from ftdata_pipeline.governance.versions import frame_hash, source_input_version
from ftdata_pipeline.records import TEXT_FIELDS

_catalogs: dict[str, Catalog] = {}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def dagster_owner(owner: str) -> str:
    """Dagster accepts e-mail addresses or ``team:<name>``; anything else becomes a team."""
    owner = owner.strip()
    if _EMAIL.match(owner) or owner.startswith("team:"):
        return owner
    return "team:" + (re.sub(r"[^A-Za-z0-9_-]+", "_", owner).strip("_") or "unknown")


def data_version(df: pl.DataFrame) -> DataVersion:
    return DataVersion(frame_hash(df))


def column_lineage(
    columns: list[str],
    upstream: dict[AssetKey, list[str]],
    extra: dict[str, list[tuple[AssetKey, str]]] | None = None,
) -> TableColumnLineage:
    """Each output column depends on the same-named column of every upstream that has it,
    plus the ``extra`` dependencies of derived columns."""
    deps: dict[str, list[TableColumnDep]] = {}
    for col in columns:
        found = [TableColumnDep(asset_key=k, column_name=col) for k, cols in upstream.items()
                 if col in cols]
        found += [TableColumnDep(asset_key=k, column_name=c) for k, c in (extra or {}).get(col, [])]
        if found:
            deps[col] = found
    return TableColumnLineage(deps_by_column=deps)


def stage_column_lineage(
    stage: str, columns: list[str], upstream: dict[AssetKey, list[str]]
) -> TableColumnLineage:
    """Column lineage of a dataset stage, with the derived columns each stage computes."""
    extra: dict[str, list[tuple[AssetKey, str]]] = {}
    for key, cols in upstream.items():
        texts = [c for c in (*TEXT_FIELDS, "messages") if c in cols]
        if stage == "curated":
            # the content hash and duplicate cluster are computed from the content fields
            extra.setdefault("content_hash", []).extend((key, c) for c in texts)
            extra.setdefault("dup_cluster_id", []).extend((key, c) for c in texts)
        if stage == "labeled":
            if "response" in cols:  # rankings -> pairs
                extra.setdefault("chosen", []).append((key, "response"))
                extra.setdefault("rejected", []).append((key, "response"))
            if "annotator" in cols:  # majority vote over annotations
                extra.setdefault("label", []).append((key, "label"))
                extra.setdefault("label_agreement", []).append((key, "label"))
        if stage == "split":
            extra["split"] = [(key, c) for c in ("conversation_id", "dup_cluster_id",
                                                 "content_hash", "record_id") if c in cols]
    # annotations only feed the derived label columns, not same-named columns
    same_name = {k: c for k, c in upstream.items() if "annotator" not in c}
    return column_lineage(columns, same_name, extra)


class CatalogResource(ConfigurableResource):
    """Records materializations into the catalog database and applies erasure requests."""

    url: str

    def catalog(self) -> Catalog:
        # One engine per process and URL; the schema is upgraded to head on first use.
        if self.url not in _catalogs:
            _catalogs[self.url] = Catalog(self.url)
        return _catalogs[self.url]

    def raw_erasure(
        self, run_id: str, name: str, cfg: Any, root: str, df: pl.DataFrame, config_hash: str
    ) -> ErasureOutcome:
        """Store the source's governance facts; drop rows under erasure; fulfil requests."""
        catalog = self.catalog()
        catalog.upsert_source(name, cfg, config_hash)
        try:
            outcome = apply_erasure(name, cfg, Path(root), df, catalog.erasure_rules(name))
        except ErasureError as exc:
            # e.g. a subject request hashed with another key: not applied, not fulfilled
            catalog.log("erasure_refused", run_id=run_id, source=name,
                        details={"reason": str(exc)})
            raise
        catalog.fulfil_erasures(name, run_id, outcome.per_request)
        return outcome

    def record_raw(
        self, run_id: str, name: str, cfg: Any, root: str, outcome: ErasureOutcome,
        version: str,
    ) -> None:
        self.catalog().record_stage(
            run_id=run_id, asset_key=f"raw/{name}", stage="raw", source=name,
            rows_in=outcome.rows_read, rows_kept=outcome.kept.height,
            rows_out=outcome.kept.height, rows_erased=outcome.rows_erased,
            data_version=version,
            input_version=source_input_version(cfg, root, outcome.kept),
        )

    def record_stage(
        self, run_id: str, dataset: str, stage: str, result: Any, version: str
    ) -> None:
        self.catalog().record_stage(
            run_id=run_id, asset_key=f"{dataset}/{stage}", stage=stage, dataset=dataset,
            rows_in=result.rows_in, rows_kept=result.rows_kept, rows_out=result.rows_out,
            rows_rejected=result.rows_rejected, drops=result.drop_counts(),
            data_version=version,
        )

    def reconcile_export(self, dataset: str, out_dir: Path) -> Any:
        """Record an export a killed run published without recording it (None: in agreement)."""
        from ftdata_pipeline.governance.reconcile import reconcile_export

        return reconcile_export(self.catalog(), dataset, out_dir)

    def record_export(
        self, run_id: str, recipe: Any, cfg_hash: str, manifest: dict,
        split_df: pl.DataFrame | pl.LazyFrame,
    ) -> dict[str, Any]:
        version = self.catalog().record_export(
            run_id=run_id, dataset=recipe.name, config_hash=cfg_hash,
            code_version=__version__, manifest=manifest, lineage=export_lineage(split_df),
            sources=[*recipe.sources, *recipe.label.annotation_sources, *recipe.label.teacher_sources],
        )
        return {
            "catalog_version_id": version.id,
            "lineage_records": version.records,
            "dagster/column_lineage": column_lineage(
                ["id", "source", "source_key"], {},
                {
                    "id": [(AssetKey([recipe.name, "split"]), "record_id")],
                    "source": [(AssetKey([recipe.name, "split"]), "source")],
                    "source_key": [(AssetKey([recipe.name, "split"]), "source_key")],
                },
            ),
            "catalog": MetadataValue.text("ftdata lineage <record_id> | ftdata lineage --source"),
        }
