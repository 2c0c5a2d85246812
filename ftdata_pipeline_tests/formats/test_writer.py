"""The export writer: layout, provenance placement, manifest integrity, determinism, atomicity."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import polars as pl
import pytest

from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.formats import writer
from ftdata_pipeline.formats.writer import read_manifest, verify_exports, write_exports
from ftdata_pipeline.records import MESSAGE, conform


def _recipe(formats=("openai_chat", "trl_messages")) -> RecipeConfig:
    return RecipeConfig.model_validate(
        {"name": "support_chat", "kind": "chat_sft", "sources": ["chats"],
         "exports": {"formats": list(formats)}}
    )


def _frame() -> pl.DataFrame:
    def conv(q, a):
        return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]

    return conform(
        pl.DataFrame(
            {
                "record_id": ["b2", "a1", "c3"],
                "source": ["chats", "chats", "chats"],
                "source_key": ["2", "1", "3"],
                "messages": [conv("Zwei", "Ja"), conv("Eins", "Grüße"), conv("Drei", "Nein")],
                "split": ["train", "train", "test"],
            },
            schema_overrides={"messages": pl.List(MESSAGE)},
        )
    )


def _only_published(tmp_path: Path, out: Path) -> None:
    """Beside the published symlink: its lock and exactly one version, the published one."""
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f".{out.name}.lock", f".{out.name}.versions", out.name
    ]
    assert out.is_symlink()
    versions = tmp_path / f".{out.name}.versions"
    assert [p.name for p in versions.iterdir()] == [Path(out.readlink()).name]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_files_and_provenance(tmp_path):
    out = tmp_path / "exports"
    write_exports(_frame(), _recipe(), out, config_hash="abc")
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [
        "manifest.json",
        "openai_chat/test.jsonl",
        "openai_chat/test.provenance.jsonl",
        "openai_chat/train.jsonl",
        "openai_chat/train.provenance.jsonl",
        "trl_messages/test.jsonl",
        "trl_messages/train.jsonl",
    ]
    # Strict format: bare examples, provenance line-aligned in the sidecar, rows by record_id.
    raw = (out / "openai_chat/train.jsonl").read_bytes()
    assert raw == (
        '{"messages":[{"role":"user","content":"Eins"},{"role":"assistant","content":"Grüße"}]}\n'
        '{"messages":[{"role":"user","content":"Zwei"},{"role":"assistant","content":"Ja"}]}\n'
    ).encode("utf-8")
    assert _lines(out / "openai_chat/train.provenance.jsonl") == [
        {"id": "a1", "source": "chats", "source_key": "1"},
        {"id": "b2", "source": "chats", "source_key": "2"},
    ]
    # Non-strict format: provenance inline, after the example's own keys.
    assert (out / "trl_messages/test.jsonl").read_text(encoding="utf-8") == (
        '{"messages":[{"role":"user","content":"Drei"},{"role":"assistant","content":"Nein"}],'
        '"id":"c3","source":"chats","source_key":"3"}\n'
    )


def test_manifest_matches_bytes(tmp_path):
    out = tmp_path / "exports"
    manifest = write_exports(_frame(), _recipe(), out, config_hash="abc")
    assert manifest == read_manifest(out)
    assert manifest["dataset"] == "support_chat"
    assert manifest["kind"] == "chat_sft"
    assert manifest["config_hash"] == "abc"
    assert manifest["splits"] == {"train": 2, "test": 1}
    assert [f["path"] for f in manifest["files"]] == sorted(f["path"] for f in manifest["files"])
    for entry in manifest["files"]:
        data = (out / entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
        assert entry["records"] == {"train": 2, "test": 1}[entry["split"]]
    assert verify_exports(out) == []


def test_verify_reports_tampering_and_missing_files(tmp_path):
    out = tmp_path / "exports"
    write_exports(_frame(), _recipe(), out, config_hash="abc")
    (out / "trl_messages/train.jsonl").write_text("{}\n", encoding="utf-8")
    (out / "openai_chat/test.provenance.jsonl").unlink()
    assert verify_exports(out) == [
        "openai_chat/test.provenance.jsonl: missing",
        "trl_messages/train.jsonl: sha256 mismatch",
        "trl_messages/train.jsonl: 1 records on disk, manifest says 2",
    ]
    assert verify_exports(tmp_path / "nowhere") == ["manifest.json: missing"]


def test_verify_reads_files_in_chunks_with_the_same_findings(tmp_path, monkeypatch):
    """Export files are hashed and their lines counted a chunk at a time (a training file can
    be larger than a step's memory); chunk edges change nothing, a change anywhere is found."""
    from ftdata_pipeline.formats import writer

    out = tmp_path / "exports"
    write_exports(_frame(), _recipe(), out, config_hash="abc")
    reads: list[int] = []
    real_open = open

    class Recorder:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def read(self, size=-1):
            reads.append(size)
            return self.fh.read(size)

    monkeypatch.setattr(writer, "VERIFY_CHUNK", 7)
    monkeypatch.setattr("builtins.open", lambda path, mode="r", *a, **k: Recorder(
        real_open(path, mode, *a, **k)) if mode == "rb" else real_open(path, mode, *a, **k))
    assert verify_exports(out) == []
    assert reads and set(reads) == {7}
    monkeypatch.setattr("builtins.open", real_open)

    path = out / "trl_messages/train.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[:-3] + b"X" + data[-2:])  # one byte near the end
    assert verify_exports(out) == ["trl_messages/train.jsonl: sha256 mismatch"]


def test_rerun_is_byte_identical(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_exports(_frame(), _recipe(), a, config_hash="abc")
    # Row order of the input must not matter either.
    write_exports(_frame().reverse(), _recipe(), b, config_hash="abc")
    files_a = {p.relative_to(a): p.read_bytes() for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b): p.read_bytes() for p in b.rglob("*") if p.is_file()}
    assert files_a == files_b


def test_rewrite_replaces_previous_export_and_leaves_no_temp_dirs(tmp_path):
    out = tmp_path / "exports"
    write_exports(_frame(), _recipe(), out, config_hash="one")
    write_exports(_frame(), _recipe(["trl_messages"]), out, config_hash="two")
    assert read_manifest(out)["config_hash"] == "two"
    assert not (out / "openai_chat").exists()
    _only_published(tmp_path, out)


def test_failure_mid_write_keeps_previous_export(tmp_path, monkeypatch):
    out = tmp_path / "exports"
    write_exports(_frame(), _recipe(), out, config_hash="one")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    real_write = writer._LineFile.write
    calls = []

    def failing_write(self, lines):
        calls.append(lines)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_write(self, lines)

    monkeypatch.setattr(writer._LineFile, "write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        write_exports(_frame(), _recipe(), out, config_hash="two")
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    _only_published(tmp_path, out)


def test_failure_on_swap_keeps_previous_export(tmp_path, monkeypatch):
    out = tmp_path / "exports"
    write_exports(_frame(), _recipe(), out, config_hash="one")
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == out:
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        write_exports(_frame(), _recipe(), out, config_hash="two")
    monkeypatch.undo()
    assert read_manifest(out)["config_hash"] == "one"
    assert verify_exports(out) == []
    # the next run cleans what the failed one left
    write_exports(_frame(), _recipe(), out, config_hash="three")
    assert read_manifest(out)["config_hash"] == "three"
    _only_published(tmp_path, out)


def test_records_without_split_are_an_error(tmp_path):
    df = _frame().with_columns(pl.lit(None, pl.String).alias("split"))
    with pytest.raises(ValueError, match="3 record"):
        write_exports(df, _recipe(), tmp_path / "exports", config_hash="x")
    assert not (tmp_path / "exports").exists()


def test_format_not_supporting_kind_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="does not support kind 'chat_sft'"):
        write_exports(_frame(), _recipe(["trl_text"]), tmp_path / "exports", config_hash="x")


def _numbered_chats(splits: dict[str, int], unanswered: tuple[int, ...]) -> pl.DataFrame:
    """Chats r00, r01, ... split in that order; the ``unanswered`` ones end on a user turn."""
    def conv(i):
        turns = [{"role": "user", "content": f"Frage {i}"}]
        answer = {"role": "assistant", "content": f"Antwort {i}"}
        return turns + ([] if i in unanswered else [answer])

    n = sum(splits.values())
    return conform(pl.DataFrame(
        {
            "record_id": [f"r{i:02d}" for i in range(n)],
            "source": ["chats"] * n,
            "source_key": [str(i) for i in range(n)],
            "messages": [conv(i) for i in range(n)],
            "split": [name for name, count in splits.items() for _ in range(count)],
        },
        schema_overrides={"messages": pl.List(MESSAGE)},
    ))


def _tree(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_lines_are_written_a_batch_at_a_time_with_the_same_bytes(tmp_path, monkeypatch):
    """A split's lines are made and written EXPORT_BATCH records at a time: same files,
    manifest and rejects as in one go, a record left out in a late batch included, and no
    file for a split whose every record is left out."""
    n = 12
    # r07 (train, third batch of 3) and both test records have no answer to train on
    frame = _numbered_chats({"train": 8, "validation": 2, "test": 2}, unanswered=(7, 10, 11))
    whole = writer.stage_exports(frame, _recipe(), tmp_path / "one", config_hash="h")
    whole.publish()

    batches = []
    real_render = writer._render

    def render(batch, *args):
        batches.append(batch.height)
        return real_render(batch, *args)

    monkeypatch.setattr(writer, "EXPORT_BATCH", 3)
    monkeypatch.setattr(writer, "_render", render)
    staged = writer.stage_exports(frame, _recipe(), tmp_path / "three", config_hash="h")
    staged.publish()
    assert max(batches) == 3 and sum(batches) == n
    one, three = tmp_path / "one", tmp_path / "three"
    files = _tree(one)
    assert files == _tree(three)
    assert not any(str(p).startswith(("openai_chat/test", "trl_messages/test")) for p in files)
    assert staged.manifest["splits"] == {"train": 7, "validation": 2}
    assert staged.rejected["record_id"].to_list() == ["r07", "r10", "r11"]
    assert staged.rejected.equals(whole.rejected) and staged.kept.equals(whole.kept)
    assert verify_exports(three) == []


def test_a_scan_of_the_split_output_is_exported_batch_by_batch_with_the_same_bytes(
    tmp_path, monkeypatch
):
    """From a scan of the split stage's file (each split in id order) the records stream: no
    full-width frame larger than a batch is ever collected, and files, manifest, rejects and
    kept records equal the in-memory export's. Rows in another order are sorted first."""
    frame = _numbered_chats({"train": 9, "validation": 2, "test": 3}, unanswered=(4, 12))
    whole = writer.stage_exports(frame, _recipe(), tmp_path / "memory", config_hash="h")
    whole.publish()
    stored = tmp_path / "split.parquet"
    frame.sort("split", "record_id").write_parquet(stored)
    shuffled = tmp_path / "shuffled.parquet"
    frame.sample(fraction=1.0, shuffle=True, seed=1).write_parquet(shuffled)

    collected: list[int] = []
    real_collect = pl.LazyFrame.collect

    def collect(self, *args, **kwargs):
        out = real_collect(self, *args, **kwargs)
        if "messages" in out.columns:
            collected.append(out.height)
        return out

    monkeypatch.setattr(writer, "EXPORT_BATCH", 3)
    monkeypatch.setattr(pl.LazyFrame, "collect", collect)
    for name, path in (("scan", stored), ("shuffled", shuffled)):
        collected.clear()
        staged = writer.stage_exports(pl.scan_parquet(path), _recipe(), tmp_path / name,
                                      config_hash="h")
        staged.publish()
        assert isinstance(staged.kept, pl.LazyFrame)
        if name == "scan":
            assert max(collected, default=0) <= 3, collected  # the rejects: 2 rows
        assert _tree(tmp_path / "memory") == _tree(tmp_path / name)
        assert staged.manifest == whole.manifest
        assert staged.rejected.equals(whole.rejected)
        assert staged.kept.collect().sort("record_id").equals(whole.kept.sort("record_id"))
