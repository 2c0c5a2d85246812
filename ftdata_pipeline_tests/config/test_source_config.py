"""sources.yaml is a union discriminated on ``kind``: each kind has exactly its own keys."""

from __future__ import annotations

import pytest
import yaml

from ftdata_pipeline.config.loader import ConfigError, load_sources
from ftdata_pipeline.config.models import FileSourceConfig, SourceConfig, SqlSourceConfig
from ftdata_pipeline.sources import KINDS, source_kind

GOV = {"owner": "o@example.com", "licence": "internal", "classification": "internal",
       "contains_pii": False}


def test_constructing_the_base_builds_the_kind():
    f = SourceConfig(kind="file", path="a.jsonl", format="jsonl", **GOV)
    s = SourceConfig.model_validate({"kind": "sql", "url": "sqlite://", "query": "select 1", **GOV})
    assert type(f) is FileSourceConfig and type(s) is SqlSourceConfig
    assert isinstance(f, SourceConfig) and isinstance(s, SourceConfig)
    assert source_kind(f).asset_kinds(f) == {"jsonl"} and source_kind(s).location(s) == "sqlite://"
    assert set(KINDS) == {"file", "sql"}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"kind": "file", "format": "csv"}, "sources.s.path: Field required"),
        ({"kind": "file", "path": "a.csv", "format": "csv", "query": "x"},
         "sources.s.query: unknown key"),
        ({"kind": "sql", "query": "select 1", "path": "a.csv"}, "sources.s.path: unknown key"),
        ({"kind": "sql", "url": "sqlite://", "query": "q", "on_bad_rows": "quarantine"},
         "sources.s.on_bad_rows: unknown key"),
        ({"kind": "ftp"}, "sources.s: Input tag 'ftp' found using 'kind' does not match"),
    ],
)
def test_kind_specific_keys_are_checked_by_kind(tmp_path, entry, expected):
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": {"s": {**entry, **GOV}}}))
    with pytest.raises(ConfigError) as info:
        load_sources(path)
    assert f"{path}: {expected}" in str(info.value)
