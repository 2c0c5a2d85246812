"""Raw stage: reading each source kind, mapping onto the canonical record, and clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from ftdata_pipeline.config.models import SourceConfig
from ftdata_pipeline.records import ANNOTATION_SCHEMA, RECORD_SCHEMA, stable_id
from ftdata_pipeline.stages.raw import SourceError, load_source

GOV = {"owner": "team@example.com", "licence": "internal", "classification": "internal",
       "contains_pii": True}
SECRET = "Jane Secretperson"  # stands in for PII: must never appear in an error message


def source(**kw) -> SourceConfig:
    return SourceConfig(**GOV, **kw)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


TICKETS = [
    {"id": "T-2", "subject": "Refund", "body": "Charged twice", "reply": "Done",
     "ts": "2026-09-02T10:00:00Z"},
    {"id": "T-1", "subject": "Login", "body": None, "reply": "Reset",
     "ts": "2026-09-01 08:30:00"},
    {"id": "T-3", "subject": None, "body": None, "reply": None, "ts": "2026-09-03T12:00:00+02:00"},
]


def tickets_cfg(**over) -> SourceConfig:
    kw = dict(kind="file", path="t.jsonl", format="jsonl", key="id",
              mapping={"text": "{subject}: {body}", "response": "reply", "created_at": "ts"})
    return source(**(kw | over))


def test_jsonl_template_mapping_provenance_and_order(tmp_path):
    write_jsonl(tmp_path / "t.jsonl", TICKETS)
    df = load_source("tickets", tickets_cfg(), tmp_path)  # relative path resolves against root
    assert df.schema == pl.Schema(RECORD_SCHEMA)
    assert df["source_key"].to_list() == ["T-1", "T-2", "T-3"]
    assert df["source"].to_list() == ["tickets"] * 3
    assert df["record_id"].to_list() == [stable_id("tickets", k) for k in ("T-1", "T-2", "T-3")]
    # null columns become "" inside a template; a row with every column null has no text
    assert df["text"].to_list() == ["Login: ", "Refund: Charged twice", None]
    assert df["response"].to_list() == ["Reset", "Done", None]
    assert df["created_at"].to_list() == [
        datetime(2026, 9, 1, 8, 30, tzinfo=UTC),
        datetime(2026, 9, 2, 10, tzinfo=UTC),
        datetime(2026, 9, 3, 10, tzinfo=UTC),
    ]


def test_csv_without_key_uses_row_numbers_and_casts_rank(tmp_path):
    rows = "prompt,response,rank\n" + "".join(f"q{i},r{i},{i % 4 + 1}\n" for i in range(12))
    (tmp_path / "r.csv").write_text(rows, encoding="utf-8")
    cfg = source(kind="file", path=str(tmp_path / "r.csv"), format="csv",
                 mapping={"prompt": "prompt", "response": "response", "rank": "rank"})
    df = load_source("ranks", cfg, Path("/nonexistent"))  # absolute path ignores root
    assert df["source_key"].to_list() == [str(i) for i in range(12)]  # numeric order
    assert df["prompt"].to_list()[10] == "q10"
    assert df.schema["rank"] == pl.Int32
    assert df["rank"].to_list()[:5] == [1, 2, 3, 4, 1]


def test_parquet_with_naive_datetime(tmp_path):
    pl.DataFrame(
        {"article_id": [2, 1], "title": ["B", "A"], "body": ["b", "a"],
         "updated_at": [datetime(2026, 1, 2), datetime(2026, 1, 1)]}
    ).write_parquet(tmp_path / "kb.parquet")
    cfg = source(kind="file", path="kb.parquet", format="parquet", key="article_id",
                 mapping={"text": "{title}\n\n{body}", "created_at": "updated_at"})
    df = load_source("kb", cfg, tmp_path)
    assert df["source_key"].to_list() == ["1", "2"]
    assert df["text"].to_list() == ["A\n\na", "B\n\nb"]
    assert df["created_at"].to_list() == [datetime(2026, 1, 1, tzinfo=UTC),
                                          datetime(2026, 1, 2, tzinfo=UTC)]


def make_chat_db(path: Path, turns: list[tuple]) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE chat_turns (conversation_id TEXT, turn_index INTEGER, role TEXT,"
            " content TEXT, created_at TEXT)"))
        conn.execute(
            sa.text("INSERT INTO chat_turns VALUES (:c, :i, :r, :t, :ts)"),
            [dict(zip(("c", "i", "r", "t", "ts"), t, strict=True)) for t in turns],
        )
    engine.dispose()


TURNS = [  # deliberately out of order
    ("C-2", 1, "agent", "Sure.", "2026-09-05T10:01:00Z"),
    ("C-1", 2, "customer", "thanks", "2026-09-04T09:02:00Z"),
    ("C-1", 0, "system", "Chat started.", "2026-09-04T09:00:00Z"),
    ("C-2", 0, "customer", "Cancel please", "2026-09-05T10:00:00Z"),
    ("C-1", 1, "customer", "My router is offline", "2026-09-04T09:01:00Z"),
]


def chat_cfg(url="sqlite:///chats.db", url_env=None, role_map=None) -> SourceConfig:
    role_map = {"customer": "user", "agent": "assistant"} if role_map is None else role_map
    return source(
        kind="sql", url=url, url_env=url_env,
        query="SELECT * FROM chat_turns",
        turns={"group": "conversation_id", "order": "turn_index", "role": "role",
               "content": "content", "role_map": role_map},
        mapping={"created_at": "created_at"},
    )


def test_sql_turns_become_ordered_messages(tmp_path):
    make_chat_db(tmp_path / "chats.db", TURNS)
    df = load_source("chats", chat_cfg(), tmp_path)  # relative sqlite path resolves against root
    assert df["source_key"].to_list() == ["C-1", "C-2"]
    assert df["conversation_id"].to_list() == ["C-1", "C-2"]
    assert df.schema["messages"] == RECORD_SCHEMA["messages"]
    assert df["messages"].to_list()[0] == [
        {"role": "system", "content": "Chat started."},  # canonical roles pass through
        {"role": "user", "content": "My router is offline"},
        {"role": "user", "content": "thanks"},
    ]
    assert [m["role"] for m in df["messages"].to_list()[1]] == ["user", "assistant"]
    assert df["created_at"].to_list() == [datetime(2026, 9, 4, 9, tzinfo=UTC),
                                          datetime(2026, 9, 5, 10, tzinfo=UTC)]
    assert df["record_id"].to_list() == [stable_id("chats", "C-1"), stable_id("chats", "C-2")]


def test_sql_url_env_wins_over_url(tmp_path, monkeypatch):
    make_chat_db(tmp_path / "other.db", TURNS[:1])
    monkeypatch.setenv("TEST_CHAT_URL", f"sqlite:///{tmp_path / 'other.db'}")
    df = load_source("chats", chat_cfg(url="sqlite:///missing.db", url_env="TEST_CHAT_URL"),
                     tmp_path)
    assert df["source_key"].to_list() == ["C-2"]


def test_annotations_schema(tmp_path):
    (tmp_path / "l.csv").write_text(
        "ticket_id,annotator,label\nT-2,ann_b,billing\nT-1,ann_a,shipping\n", encoding="utf-8")
    cfg = source(kind="file", role="annotations", path="l.csv", format="csv",
                 mapping={"item_key": "ticket_id", "annotator": "annotator", "label": "label"})
    df = load_source("labels", cfg, tmp_path)
    assert df.schema == pl.Schema(ANNOTATION_SCHEMA)
    assert df.select("source", "source_key", "item_key", "annotator", "label").rows() == [
        ("labels", "0", "T-2", "ann_b", "billing"), ("labels", "1", "T-1", "ann_a", "shipping")]
    assert df["item_source"].to_list() == [None, None]


def test_annotations_name_the_source_they_annotate(tmp_path):
    (tmp_path / "r.csv").write_text("ticket_id,annotator,stars\nT-1,ann_a,4\n", encoding="utf-8")
    cfg = source(kind="file", role="annotations", path="r.csv", format="csv",
                 annotates="support_tickets",
                 mapping={"item_key": "ticket_id", "annotator": "annotator", "rating": "stars"})
    df = load_source("ratings", cfg, tmp_path)
    assert df.select("item_source", "item_key", "rating").rows() == [("support_tickets", "T-1", 4.0)]


# --- errors ---------------------------------------------------------------------------------


def raises(match: str, *args) -> str:
    with pytest.raises(SourceError, match=match) as info:
        load_source(*args)
    message = str(info.value)
    assert SECRET not in message and "Secretperson" not in message
    return message


def test_missing_file_names_source_and_path(tmp_path):
    msg = raises("file not found", "tickets", tickets_cfg(), tmp_path)
    assert "'tickets'" in msg and str(tmp_path / "t.jsonl") in msg


def test_invalid_jsonl_names_line_without_content(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(TICKETS[0]) + "\n" + '{"id": "T-9", "body": "' + SECRET + '\n',
                    encoding="utf-8")
    msg = raises("not a valid jsonl file", "tickets", tickets_cfg(), tmp_path)
    assert "line 2" in msg and str(path) in msg


def test_ragged_csv_names_line(tmp_path):
    (tmp_path / "l.csv").write_text(f"a,b\n1,2\n3,4,{SECRET}\n", encoding="utf-8")
    cfg = source(kind="file", path="l.csv", format="csv", mapping={"text": "a"})
    msg = raises("not a valid csv file", "labels", cfg, tmp_path)
    assert "line 3" in msg


def test_missing_mapped_column_lists_available(tmp_path):
    write_jsonl(tmp_path / "t.jsonl", TICKETS)
    cfg = tickets_cfg(mapping={"text": "{subject} {bodyy}"})
    msg = raises("missing column", "tickets", cfg, tmp_path)
    assert "mapping.text" in msg and "'bodyy'" in msg
    assert "available: id, subject, body, reply, ts" in msg
    with pytest.raises(SourceError, match=r"mapping\.response.*'answer'"):
        load_source("tickets", tickets_cfg(mapping={"response": "answer"}), tmp_path)
    with pytest.raises(SourceError, match=r"key.*'ticket_id'"):
        load_source("tickets", tickets_cfg(key="ticket_id"), tmp_path)


def test_null_and_duplicate_keys_name_rows_not_values(tmp_path):
    rows = [dict(TICKETS[0], id=SECRET), dict(TICKETS[1], id=None), dict(TICKETS[2], id=None)]
    write_jsonl(tmp_path / "t.jsonl", rows)
    msg = raises("null in 2 row", "tickets", tickets_cfg(), tmp_path)
    assert "rows 1, 2" in msg and "'id'" in msg
    rows = [dict(TICKETS[0], id=SECRET), TICKETS[1], dict(TICKETS[2], id=SECRET)]
    write_jsonl(tmp_path / "t.jsonl", rows)
    msg = raises("2 row.*sharing a key", "tickets", tickets_cfg(), tmp_path)
    assert "rows 0, 2" in msg


def test_unparseable_created_at_names_row(tmp_path):
    write_jsonl(tmp_path / "t.jsonl", [TICKETS[0], dict(TICKETS[1], ts=SECRET)])
    msg = raises("created_at", "tickets", tickets_cfg(), tmp_path)
    assert "not an ISO 8601 timestamp in 1 row" in msg and "rows 1" in msg


def test_unparseable_rank_names_row(tmp_path):
    (tmp_path / "r.csv").write_text(f"p,r,rank\na,b,1\nc,d,{SECRET}\n", encoding="utf-8")
    cfg = source(kind="file", path="r.csv", format="csv", mapping={"prompt": "p", "rank": "rank"})
    msg = raises(r"mapping\.rank.*not an integer", "ranks", cfg, tmp_path)
    assert "rows 1" in msg


def test_unmapped_role_names_source_and_role(tmp_path):
    make_chat_db(tmp_path / "chats.db", [*TURNS, ("C-3", 0, "bot", SECRET, "2026-09-06")])
    msg = raises("role_map has no entry", "chats", chat_cfg(), tmp_path)
    assert "'chats'" in msg and "'bot'" in msg


def test_missing_sqlite_db_and_failing_query(tmp_path):
    msg = raises("SQLite database not found", "chats", chat_cfg(), tmp_path)
    assert str(tmp_path / "chats.db") in msg
    make_chat_db(tmp_path / "chats.db", TURNS)
    cfg = chat_cfg().model_copy(update={"query": "SELECT * FROM no_such_table"})
    raises("query failed.*no such table: no_such_table", "chats", cfg, tmp_path)


def test_real_demo_sources_load():
    from ftdata_pipeline.config.loader import load_sources, project_root

    root = project_root()
    sources = load_sources(root / "configs" / "sources.yaml")
    heights = {n: load_source(n, c, root).height for n, c in sources.items()}
    assert heights["support_tickets"] == 2000
    assert heights["chat_transcripts"] == 400
    assert heights["response_rankings"] == 1000
    assert heights["kb_articles"] == 300
    assert heights["ticket_labels"] > 5000


def test_empty_files_give_empty_frames(tmp_path):
    (tmp_path / "t.jsonl").write_text("\n", encoding="utf-8")
    df = load_source("tickets", tickets_cfg(), tmp_path)
    assert df.height == 0 and df.schema == pl.Schema(RECORD_SCHEMA)
    (tmp_path / "l.csv").write_text("ticket_id,annotator,label\n", encoding="utf-8")
    cfg = source(kind="file", role="annotations", path="l.csv", format="csv",
                 mapping={"item_key": "ticket_id", "annotator": "annotator", "label": "label"})
    assert load_source("labels", cfg, tmp_path).schema == pl.Schema(ANNOTATION_SCHEMA)


def test_missing_turn_column_lists_available(tmp_path):
    make_chat_db(tmp_path / "chats.db", TURNS)
    cfg = chat_cfg().model_copy(update={"turns": chat_cfg().turns.model_copy(update={"role": "speaker"})})
    msg = raises(r"turns: missing column\(s\) 'speaker'", "chats", cfg, tmp_path)
    assert "available: conversation_id, turn_index, role, content, created_at)" in msg
