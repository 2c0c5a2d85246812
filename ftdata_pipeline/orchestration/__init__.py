"""The thin Dagster layer: asset factory, checks, IO manager, resources and automation."""
