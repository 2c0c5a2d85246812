"""ftdata-pipeline: raw company data to curated, redacted, labeled, leak-free fine-tuning datasets."""

__version__ = "0.1.0"
