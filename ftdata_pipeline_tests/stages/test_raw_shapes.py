"""Source shapes: chat columns in three layouts, nested paths, text booleans, BOMs, bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from ftdata_pipeline.config.models import SourceConfig
from ftdata_pipeline.records import RECORD_SCHEMA
from ftdata_pipeline.stages.raw import SourceError, load_source, read_source

GOV = {"owner": "team@example.com", "licence": "internal", "classification": "internal",
       "contains_pii": True}
SECRET = "Jane Secretperson"


def source(**kw) -> SourceConfig:
    return SourceConfig(**GOV, **kw)


def write(path: Path, rows: list[dict], fmt: str) -> Path:
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        pl.DataFrame(rows).write_parquet(path)
    return path


def roles_and_texts(df: pl.DataFrame) -> list[list[tuple[str, str]]]:
    return [
        None if m is None else [(t["role"], t["content"]) for t in m]
        for m in df["messages"].to_list()
    ]


STRINGS = [
    {"id": "c1", "turns": ["How do I reset?", "Click Forgot password.", "Thanks", "You're welcome"]},
    {"id": "c2", "turns": ["Be terse.", "Hi", "Hello"]},  # odd length: leading system prompt
    {"id": "c3", "turns": []},
]
OPENAI = [
    {"id": "o1", "meta": {"lang": "en", "customer": {"email": "a@example.com"}},
     "messages": [{"role": "system", "content": "Be kind."},
                  {"role": "customer", "content": "Where is my order?"},
                  {"role": "agent", "content": "On its way."}]},
    {"id": "o2", "meta": {"lang": "de", "customer": {"email": "b@example.com"}},
     "messages": [{"role": "customer", "content": "Hallo"}, {"role": "agent", "content": "Hi"}]},
]
SHAREGPT = [
    {"id": "s1", "conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]},
    {"id": "s2", "conversations": [{"from": "system", "value": "Math tutor"},
                                   {"from": "human", "value": "1+1?"}, {"from": "gpt", "value": "2"}]},
]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_list_of_strings_with_role_pattern(tmp_path, fmt):
    write(tmp_path / f"c.{fmt}", STRINGS, fmt)
    cfg = source(kind="file", path=f"c.{fmt}", format=fmt, key="id",
                 messages={"column": "turns", "shape": "strings", "leading_system": "auto"},
                 mapping={"prompt": "{turns[0]}"})
    df = load_source("chats", cfg, tmp_path)
    assert df.schema == pl.Schema(RECORD_SCHEMA)
    assert roles_and_texts(df) == [
        [("user", "How do I reset?"), ("assistant", "Click Forgot password."),
         ("user", "Thanks"), ("assistant", "You're welcome")],
        [("system", "Be terse."), ("user", "Hi"), ("assistant", "Hello")],
        None,  # an empty conversation has no messages (curate rejects it as missing_content)
    ]
    assert df["prompt"].to_list() == ["How do I reset?", "Be terse.", None]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_openai_role_content_objects_with_role_map_and_nested_paths(tmp_path, fmt):
    write(tmp_path / f"o.{fmt}", OPENAI, fmt)
    cfg = source(kind="file", path=f"o.{fmt}", format=fmt, key="id",
                 messages={"column": "messages", "shape": "role_content",
                           "role_map": {"customer": "user", "agent": "assistant"}},
                 mapping={"label": "meta.lang", "text": "{meta.customer.email} {messages[1].content}"})
    df = load_source("chats", cfg, tmp_path)
    assert roles_and_texts(df) == [
        [("system", "Be kind."), ("user", "Where is my order?"), ("assistant", "On its way.")],
        [("user", "Hallo"), ("assistant", "Hi")],
    ]
    assert df["label"].to_list() == ["en", "de"]
    assert df["text"].to_list() == ["a@example.com Where is my order?", "b@example.com Hi"]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_sharegpt_conversations(tmp_path, fmt):
    write(tmp_path / f"s.{fmt}", SHAREGPT, fmt)
    cfg = source(kind="file", path=f"s.{fmt}", format=fmt, key="id",
                 messages={"column": "conversations", "shape": "sharegpt"})
    df = load_source("chats", cfg, tmp_path)
    assert roles_and_texts(df) == [
        [("user", "2+2?"), ("assistant", "4")],
        [("system", "Math tutor"), ("user", "1+1?"), ("assistant", "2")],
    ]


def test_chat_shape_errors_name_the_key(tmp_path):
    write(tmp_path / "o.jsonl", OPENAI, "jsonl")
    base = dict(kind="file", path="o.jsonl", format="jsonl", key="id")
    with pytest.raises(SourceError, match=r"messages.role_map has no entry.*'agent', 'customer'"):
        load_source("c", source(**base, messages={"column": "messages", "shape": "role_content"}),
                    tmp_path)
    with pytest.raises(SourceError, match=r"role value\(s\) \(5 distinct values, not shown") as info:
        load_source("c", source(**base, messages={"column": "messages", "shape": "role_content",
                                                  "role_key": "content"}), tmp_path)
    assert "Where is my order" not in str(info.value)  # a role key on the text: not quoted
    with pytest.raises(SourceError, match=r"messages.role_key: the turns have no key 'from'"):
        load_source("c", source(**base, messages={"column": "messages", "shape": "sharegpt"}),
                    tmp_path)
    with pytest.raises(SourceError, match=r"messages.column 'msgs': missing column 'msgs'"):
        load_source("c", source(**base, messages={"column": "msgs", "shape": "strings"}), tmp_path)
    with pytest.raises(SourceError, match=r"shape 'strings' needs texts"):
        load_source("c", source(**base, messages={"column": "messages", "shape": "strings"}),
                    tmp_path)
    with pytest.raises(SourceError, match=r"mapping.text: 'meta' has no key 'topic'"):
        load_source("c", source(**base, mapping={"text": "meta.topic"}), tmp_path)
    with pytest.raises(SourceError, match=r"mapping.text: 'id' is a String value, not a list"):
        load_source("c", source(**base, mapping={"text": "{id[0]}"}), tmp_path)
    with pytest.raises(SourceError, match=r"mapping.text: 'meta' is an object; a template needs"):
        load_source("c", source(**base, mapping={"text": "{meta}"}), tmp_path)


def test_csv_booleans_and_timestamps_from_text(tmp_path):
    (tmp_path / "c.csv").write_text(
        "id,text,consent,ts\n1,a,true,2026-01-02\n2,b,No,2026-01-02 10:00\n3,c,,\n4,d,YES,\n",
        encoding="utf-8",
    )
    cfg = source(kind="file", path="c.csv", format="csv", key="id",
                 mapping={"text": "text", "consent": "consent", "created_at": "ts"})
    df = load_source("c", cfg, tmp_path)
    assert df["consent"].to_list() == [True, False, None, True]
    assert df["created_at"].dt.hour().to_list() == [0, 10, None, None]
    (tmp_path / "c.csv").write_text("id,text,consent,ts\n1,a,maybe,\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"mapping.consent: value is not a boolean.*rows 0"):
        load_source("c", cfg, tmp_path)


def test_bom_at_start_of_jsonl_and_csv(tmp_path):
    (tmp_path / "t.jsonl").write_bytes(b"\xef\xbb\xbf" + b'{"id": "1", "text": "hi"}\n')
    cfg = source(kind="file", path="t.jsonl", format="jsonl", key="id", mapping={"text": "text"})
    assert load_source("t", cfg, tmp_path)["text"].to_list() == ["hi"]
    (tmp_path / "t.csv").write_bytes(b"\xef\xbb\xbfid,text\n1,hi\n")
    cfg = source(kind="file", path="t.csv", format="csv", key="id", mapping={"text": "text"})
    assert load_source("t", cfg, tmp_path)["text"].to_list() == ["hi"]


def test_template_with_missing_column_in_some_rows_is_counted(tmp_path):
    write(tmp_path / "t.jsonl", [{"id": "1", "s": "Refund", "b": "twice"},
                                 {"id": "2", "s": "Login", "b": None},
                                 {"id": "3", "s": None, "b": None}], "jsonl")
    cfg = source(kind="file", path="t.jsonl", format="jsonl", key="id",
                 mapping={"text": "{s}: {b}"})
    loaded = read_source("t", cfg, tmp_path)
    assert loaded.counts["template_rows_missing_a_column"] == {"text": 1}


# --- bad rows: fail or quarantine ----------------------------------------------------------


def bad_jsonl(path: Path) -> None:
    path.write_bytes(
        b'{"id": "1", "text": "ok"}\n'
        + b'{"id": "2", "text": "' + SECRET.encode() + b'\n'  # malformed (truncated)
        + b'{"id": "3", "text": "caf\xe9"}\n'  # Latin-1 byte: not UTF-8
        + b'["not", "an", "object"]\n'
        + b'{"id": "5", "text": "fine"}\n'
    )


def test_bad_jsonl_lines_fail_by_default_naming_line_not_content(tmp_path):
    bad_jsonl(tmp_path / "t.jsonl")
    cfg = source(kind="file", path="t.jsonl", format="jsonl", key="id", mapping={"text": "text"})
    with pytest.raises(SourceError, match=r"at line 2: malformed JSON.*3 bad rows, at lines 2, 3, 4") as info:
        load_source("t", cfg, tmp_path)
    assert "Secretperson" not in str(info.value)


def test_bad_jsonl_lines_quarantined_with_line_and_reason(tmp_path):
    bad_jsonl(tmp_path / "t.jsonl")
    cfg = source(kind="file", path="t.jsonl", format="jsonl", key="id", mapping={"text": "text"},
                 on_bad_rows="quarantine")
    loaded = read_source("t", cfg, tmp_path)
    assert loaded.frame["source_key"].to_list() == ["1", "5"]
    q = loaded.quarantined
    assert q["line"].to_list() == [2, 3, 4]
    assert [r.split(" (")[0] for r in q["reason"].to_list()] == [
        "malformed JSON", "not UTF-8 text", "not a JSON object"]
    assert q["file"].to_list() == [str(tmp_path / "t.jsonl")] * 3
    assert "\\xe9" in q["content"][1]  # kept, undecodable byte escaped
    assert loaded.counts["rows_quarantined"] == 3


def test_ragged_and_non_utf8_csv_rows_quarantined_and_short_rows_reported(tmp_path):
    (tmp_path / "c.csv").write_bytes(
        b'id,text,label\n1,hello,a\n2,short\n3,"multi\nline",b\n4,x,y,extra\n5,caf\xe9,c\n6,ok,d\n'
    )
    cfg = source(kind="file", path="c.csv", format="csv", key="id",
                 mapping={"text": "text", "label": "label"})
    with pytest.raises(SourceError, match=r"csv file at line 3: too few fields \(2 of 3\)"):
        load_source("c", cfg, tmp_path)
    loaded = read_source("c", cfg.model_copy(update={"on_bad_rows": "quarantine"}), tmp_path)
    assert loaded.frame["source_key"].to_list() == ["1", "3", "6"]
    assert loaded.frame["text"].to_list() == ["hello", "multi\nline", "ok"]
    assert loaded.quarantined.select("line", "reason").rows() == [
        (3, "too few fields (2 of 3)"), (6, "too many fields (4 of 3)"), (7, "not UTF-8 text")]
    assert loaded.counts["csv_rows_short"] == 1 and loaded.counts["rows_quarantined"] == 3


def test_quarantine_is_for_file_sources_only():
    with pytest.raises(ValueError, match=r"on_bad_rows\n  Extra inputs are not permitted"):
        source(kind="sql", url="sqlite:///x.db", query="select 1", on_bad_rows="quarantine")


# --- the README's chat recipes work as written ---------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_chat_mappings_read_the_three_shapes(tmp_path):
    import re

    import yaml

    text = README.read_text("utf-8")
    configs = {yaml.safe_load(c)["messages"]["shape"]: yaml.safe_load(c)["messages"]
               for c in re.findall(r"`(messages: \{[^`]*\})`", text)}
    assert set(configs) >= {"strings", "role_content", "sharegpt"}
    data = {
        "strings": [{"id": "1", "turns": ["q", "a"]}],
        "role_content": [{"id": "1", "messages": [{"role": "user", "content": "q"},
                                                  {"role": "assistant", "content": "a"}]}],
        "sharegpt": [{"id": "1", "conversations": [{"from": "human", "value": "q"},
                                                   {"from": "gpt", "value": "a"}]}],
    }
    for shape, spec in configs.items():
        write(tmp_path / f"{shape}.jsonl", data[shape], "jsonl")
        cfg = source(kind="file", path=f"{shape}.jsonl", format="jsonl", key="id", messages=spec)
        assert roles_and_texts(load_source("c", cfg, tmp_path)) == [[("user", "q"), ("assistant", "a")]]

    block = re.search(r"  community_chats:\n(.*?)```", text, re.S).group(1)
    cfg = SourceConfig.model_validate(yaml.safe_load(block))
    (tmp_path / "data").mkdir()
    write(tmp_path / "data" / "chats.jsonl",
          [{"id": "x", "meta": {"created": "2026-01-01"}, **data["sharegpt"][0]}], "jsonl")
    df = load_source("community_chats", cfg, tmp_path)
    assert roles_and_texts(df) == [[("user", "q"), ("assistant", "a")]]
    assert df["created_at"].dt.year().to_list() == [2026]


def test_role_map_can_skip_tool_turns(tmp_path):
    write(tmp_path / "o.jsonl", [{"id": "1", "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "tool", "content": "{\"t\": 21}"},
        {"role": "assistant", "content": "21 degrees"}]}], "jsonl")
    cfg = source(kind="file", path="o.jsonl", format="jsonl", key="id",
                 messages={"column": "messages", "shape": "role_content",
                           "role_map": {"tool": "skip"}})
    assert roles_and_texts(load_source("c", cfg, tmp_path)) == [
        [("user", "weather?"), ("assistant", "21 degrees")]]
