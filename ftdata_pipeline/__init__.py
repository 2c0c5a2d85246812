"""ftdata-pipeline: raw company data to curated, redacted, labeled, leak-free fine-tuning datasets."""

from ftdata_pipeline.allocator import return_freed_memory

return_freed_memory()  # before any module of the package imports Polars (see ``allocator``)

__version__ = "0.1.0"
