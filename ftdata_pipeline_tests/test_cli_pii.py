"""``ftdata pii redact`` / ``ftdata pii scan``."""

from __future__ import annotations

import json

import pytest

from ftdata_pipeline.cli import main

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
ROWS = [
    {"id": 1, "body": f"Hi, I'm Maria Garcia, mail me at {EMAIL}.", "keep": EMAIL},
    {"id": 2, "body": "Cancel order ACM-577644 please."},
    {"id": 3, "body": None},
    {"id": 4, "messages": [{"role": "user", "content": f"Card {CARD}"}, {"role": "assistant"}]},
]


@pytest.fixture()
def infile(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_redact_writes_redacted_copy(infile, tmp_path, capsys):
    out = tmp_path / "sub" / "out.jsonl"
    args = ["pii", "redact", "--recipe", "support_assistant", "--input", str(infile)]
    assert main([*args, "--field", "body", "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["body"] == "Hi, I'm <PERSON>, mail me at <EMAIL_ADDRESS>."
    assert rows[0]["keep"] == EMAIL  # other fields untouched
    assert rows[1]["body"] == "Cancel order <ORDER_NUMBER> please."  # the recipe's recognizer
    assert rows[2]["body"] is None
    assert [p.name for p in out.parent.iterdir()] == ["out.jsonl"]  # no temp file left
    printed = capsys.readouterr().out
    assert "EMAIL_ADDRESS: 1" in printed and EMAIL not in printed and "Maria" not in printed


def test_redact_messages_field_uses_recipe_operators(infile, tmp_path):
    out = tmp_path / "out.jsonl"
    args = ["pii", "redact", "--recipe", "support_assistant", "--input", str(infile)]
    assert main([*args, "--field", "messages", "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # support_assistant masks cards down to the last four digits
    assert rows[3]["messages"][0]["content"] == "Card " + "*" * 15 + "1111"
    assert rows[3]["messages"][1] == {"role": "assistant"}
    assert rows[0]["body"] == ROWS[0]["body"]


def test_scan_reports_types_and_offsets_not_values(infile, capsys):
    args = ["pii", "scan", "--recipe", "support_assistant", "--input", str(infile)]
    assert main([*args, "--field", "body"]) == 0
    printed = capsys.readouterr().out
    start = ROWS[0]["body"].index(EMAIL)
    assert f"line 1: EMAIL_ADDRESS [{start}:{start + len(EMAIL)}]" in printed
    assert "line 2: ORDER_NUMBER" in printed
    assert "PERSON: 1" in printed and "entities" in printed
    assert EMAIL not in printed and "Maria" not in printed and "577644" not in printed
    assert json.loads(infile.read_text().splitlines()[0]) == ROWS[0]  # unchanged

    assert main([*args, "--field", "body", "--show-values"]) == 0
    assert EMAIL in capsys.readouterr().out


def test_unknown_recipe_and_bad_json(infile, tmp_path, capsys):
    args = ["pii", "scan", "--input", str(infile), "--field", "body"]
    assert main([*args, "--recipe", "nope"]) == 2
    assert "unknown recipe" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"body": "Maria Garcia"\n')
    assert main(["pii", "scan", "--recipe", "support_assistant", "--input", str(bad),
                 "--field", "body"]) == 2
    err = capsys.readouterr().err
    assert "not valid JSON" in err and "Maria" not in err


def test_redact_nested_values_in_place(tmp_path):
    src = tmp_path / "nested.jsonl"
    row = {"id": 9, "body": {"customer": {"name": "Jan Novák", "note": f"mail {EMAIL}"},
                             "tags": ["billing", "call 0612 345 67 89"]}}
    src.write_text(json.dumps(row, ensure_ascii=False) + "\n")
    out = tmp_path / "out.jsonl"
    args = ["pii", "redact", "--recipe", "support_assistant", "--input", str(src)]
    assert main([*args, "--field", "body", "--output", str(out)]) == 0
    body = json.loads(out.read_text())["body"]
    assert isinstance(body, dict)  # still an object, not its JSON text
    assert body["customer"]["name"] == "<PERSON>"
    assert body["customer"]["note"] == "mail <EMAIL_ADDRESS>"
    assert body["tags"] == ["billing", "call <PHONE_NUMBER>"]


def test_evaluate_prints_and_checks_targets(capsys):
    code = main(["pii", "evaluate", "--recipe", "support_assistant", "--n", "120", "--neg", "60",
                 "--no-record"])
    printed = capsys.readouterr().out
    assert "PERSON: recall" in printed and "words kept" in printed
    assert code in (0, 1)  # 120 sentences are too few for the targets; the figures print
