"""Governance: dataset cards, lineage and audit records."""
