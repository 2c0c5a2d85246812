"""Parquet IO manager for Polars frames: frames out, lazy frames in.

dagster-polars 0.27 breaks with Polars 2.x (``scan_parquet(rechunk=)`` was removed), and we want
Polars 2, so this small IO manager does the one thing we need: write a ``pl.DataFrame`` to
Parquet atomically, and hand downstream assets a ``pl.LazyFrame`` over it. An asset may also
return a ``pl.LazyFrame`` (a scan of what it spilled to disk as it went): it is streamed into
the file, never collected. Assets whose metadata
says ``ftdata/zone: restricted`` (they hold raw PII) go under the owner-only restricted root.
A partitioned asset stores each partition in its own file (``<asset path>/<partition>.parquet``,
written atomically); a downstream step reads the partitions it depends on (all of them for an
unpartitioned one) as one frame, in partition key order.
"""

# No `from __future__ import annotations`: Dagster resolves ResourceDependency at runtime.
import polars as pl
from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency

from ftdata_pipeline.orchestration.storage import PipelineStorage, atomic_write_parquet

ZONE_TAG = "ftdata/zone"


def _is_restricted(context: OutputContext) -> bool:
    """The zone is declared in the asset's definition metadata by the asset factory."""
    return (context.definition_metadata or {}).get(ZONE_TAG) == "restricted"


class PolarsParquetIOManager(ConfigurableIOManager):
    storage: ResourceDependency[PipelineStorage]

    def _path(self, context: "InputContext | OutputContext", restricted: bool, partition=None):
        return self.storage.asset_path(
            list(context.asset_key.path), restricted=restricted, partition=partition
        )

    def handle_output(self, context: OutputContext, obj: pl.DataFrame | pl.LazyFrame) -> None:
        if obj is None:
            return
        if not isinstance(obj, (pl.DataFrame, pl.LazyFrame)):
            raise TypeError(
                f"asset {context.asset_key.to_user_string()} returned {type(obj).__name__}; "
                "this IO manager stores polars DataFrames and LazyFrames"
            )
        restricted = _is_restricted(context)
        partition = context.asset_partition_key if context.has_asset_partitions else None
        atomic_write_parquet(obj, self._path(context, restricted, partition), private=restricted)

    def load_input(self, context: InputContext) -> pl.LazyFrame:
        upstream = context.upstream_output
        restricted = upstream is not None and _is_restricted(upstream)
        if context.has_asset_partitions:
            return self._load_partitions(context, restricted)
        path = self._path(context, restricted)
        if not path.exists():
            raise FileNotFoundError(
                f"no stored data for asset {context.asset_key.to_user_string()} at {path}; "
                "materialize it first"
            )
        return pl.scan_parquet(path)

    def _load_partitions(self, context: InputContext, restricted: bool) -> pl.LazyFrame:
        keys = sorted(context.asset_partition_keys)
        paths = {k: self._path(context, restricted, k) for k in keys}
        missing = [k for k, p in paths.items() if not p.exists()]
        found = [p for k, p in paths.items() if p.exists()]
        name = context.asset_key.to_user_string()
        if not found:
            raise FileNotFoundError(
                f"no stored partition of asset {name} ({len(keys)} asked for); "
                "materialize its partitions first"
            )
        if missing:
            # a partition registered (a file landed) but not materialized yet: read without it
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            context.log.warning(
                f"{name}: {len(missing)} partition(s) not materialized yet, read without "
                f"them: {shown}"
            )
        return pl.scan_parquet(found)
