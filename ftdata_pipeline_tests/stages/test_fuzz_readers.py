"""Fuzzing the JSONL and CSV readers (hypothesis): any file content either reads into records
or fails with a SourceError that names the source and the file -- never another exception, and
never with the file's content in the message (it may hold PII)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftdata_pipeline.config.models import SourceConfig
from ftdata_pipeline.stages.raw import SourceError, load_source

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
SECRET = "zq-secret-7731"  # planted in every generated file; must never reach a message

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
              st.just(SECRET)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["id", "body", "x"]), inner,
                                            max_size=3)),
    max_leaves=6,
)
JSONL_LINE = st.one_of(
    st.fixed_dictionaries({"id": st.one_of(st.integers(0, 5), st.text(max_size=3)),
                           "body": st.one_of(st.text(max_size=10), st.just(SECRET))}),
    JSON_VALUES.map(json.dumps),
    st.text(max_size=20).map(lambda t: t + SECRET),
    st.binary(max_size=12).map(lambda b: b.decode("latin-1")),
)


def _cfg(path, fmt: str) -> SourceConfig:
    return SourceConfig(kind="file", path=str(path), format=fmt, key="id",
                        mapping={"text": "body"}, owner="o@example.com", licence="x",
                        classification="internal", contains_pii=True)


def _read_or_source_error(path, fmt: str) -> None:
    try:
        df = load_source("fuzzed", _cfg(path, fmt), path.parent)
    except SourceError as exc:
        message = str(exc)
        assert "'fuzzed'" in message
        assert SECRET not in message
    else:
        assert {"record_id", "source", "source_key", "text"} <= set(df.columns)
        assert df["source_key"].null_count() == 0


@SETTINGS
@given(lines=st.lists(JSONL_LINE, max_size=6), raw=st.binary(max_size=30),
       use_raw=st.booleans())
def test_jsonl_reader(tmp_path, lines, raw, use_raw):
    path = tmp_path / "f.jsonl"
    if use_raw:
        path.write_bytes(raw + SECRET.encode())
    else:
        path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines),
                        encoding="utf-8", errors="surrogatepass")
    _read_or_source_error(path, "jsonl")


CSV_FIELD = st.one_of(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8),
                      st.just(SECRET), st.just('"'), st.just(","), st.just("\n"))


@SETTINGS
@given(header=st.sampled_from(["id,body", "id,body,x", "body", "id"]),
       rows=st.lists(st.lists(CSV_FIELD, max_size=4).map(",".join), max_size=5),
       raw=st.binary(max_size=30), use_raw=st.booleans())
def test_csv_reader(tmp_path, header, rows, raw, use_raw):
    path = tmp_path / "f.csv"
    if use_raw:
        path.write_bytes(b"id,body\n" + raw + SECRET.encode())
    else:
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    _read_or_source_error(path, "csv")


def test_csv_without_header_does_not_echo_its_first_row(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(f"{SECRET},ann@example.com\n", encoding="utf-8")
    _read_or_source_error(path, "csv")
