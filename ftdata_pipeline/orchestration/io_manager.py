"""Parquet IO manager for Polars frames: eager frames out, lazy frames in.

dagster-polars 0.27 breaks with Polars 2.x (``scan_parquet(rechunk=)`` was removed), and we want
Polars 2, so this small IO manager does the one thing we need: write a ``pl.DataFrame`` to
Parquet atomically, and hand downstream assets a ``pl.LazyFrame`` over it. Assets whose metadata
says ``ftdata/zone: restricted`` (they hold raw PII) go under the owner-only restricted root.
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

    def _path(self, context: "InputContext | OutputContext", restricted: bool):
        return self.storage.asset_path(list(context.asset_key.path), restricted=restricted)

    def handle_output(self, context: OutputContext, obj: pl.DataFrame) -> None:
        if obj is None:
            return
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(
                f"asset {context.asset_key.to_user_string()} returned {type(obj).__name__}; "
                "this IO manager stores polars DataFrames"
            )
        restricted = _is_restricted(context)
        atomic_write_parquet(obj, self._path(context, restricted), private=restricted)

    def load_input(self, context: InputContext) -> pl.LazyFrame:
        upstream = context.upstream_output
        restricted = upstream is not None and _is_restricted(upstream)
        path = self._path(context, restricted)
        if not path.exists():
            raise FileNotFoundError(
                f"no stored data for asset {context.asset_key.to_user_string()} at {path}; "
                "materialize it first"
            )
        return pl.scan_parquet(path)
