"""Config models and loading: sources.yaml and one recipe per dataset."""

from ftdata_pipeline.config.loader import ConfigError, load_project
from ftdata_pipeline.config.models import ProjectConfig, RecipeConfig, SourceConfig

__all__ = ["ConfigError", "ProjectConfig", "RecipeConfig", "SourceConfig", "load_project"]
