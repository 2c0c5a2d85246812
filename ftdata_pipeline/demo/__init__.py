"""Deterministic generator of the bundled demo data (company support data with planted PII)."""
