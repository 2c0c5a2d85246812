"""A run killed at any point of writing or publishing an export never leaves the published path
without a complete export, and the next run cleans up what it left.

Each window is a real ``SIGKILL`` of a child process at that point (no ``finally`` or
``except`` runs, as with the OOM killer or a terminated container)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import polars as pl
import pytest

from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.formats import publish
from ftdata_pipeline.formats.writer import (
    read_manifest,
    recover_exports,
    verify_exports,
    write_exports,
)
from ftdata_pipeline.records import MESSAGE, conform

ROOT = Path(__file__).resolve().parents[2]
RECIPE = {"name": "chat", "kind": "chat_sft", "sources": ["chats"],
          "exports": {"formats": ["openai_chat", "trl_messages"]}}

CHILD = r"""
import os, signal, sys
from pathlib import Path
import polars as pl
from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.formats import publish, writer

window, frame_path, out, recipe_json = sys.argv[1:5]
df = pl.read_parquet(frame_path)
recipe = RecipeConfig.model_validate_json(recipe_json)

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if window == "writing":
    real, calls = writer._LineFile.write, []
    def write(self, lines):
        calls.append(lines)
        if len(calls) == 3:
            die()
        return real(self, lines)
    writer._LineFile.write = write
elif window == "between_renames":
    # the version directory is in place, the symlink not yet swapped
    publish.os.symlink = die
elif window == "legacy_migration":
    # the earlier layout's plain directory moved aside, the symlink not yet in place
    real_replace = publish.os.replace
    def replace(src, dst):
        die() if Path(dst) == Path(out) else real_replace(src, dst)
    publish.os.replace = replace
writer.write_exports(df, recipe, Path(out), config_hash="two")
if window == "after_swap":
    die()  # before anything else (the catalog) learns of the new export
"""


def _frame(answer: str = "Ja") -> pl.DataFrame:
    def conv(q, a):
        return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]

    return conform(pl.DataFrame(
        {"record_id": [f"r{i}" for i in range(20)], "source": ["chats"] * 20,
         "source_key": [str(i) for i in range(20)],
         "messages": [conv(f"Frage {i}", answer) for i in range(20)],
         "split": ["train"] * 15 + ["test"] * 5},
        schema_overrides={"messages": pl.List(MESSAGE)},
    ))


def _recipe() -> RecipeConfig:
    return RecipeConfig.model_validate(RECIPE)


def _kill_child(tmp_path: Path, out: Path, window: str) -> None:
    frame = tmp_path / "frame.parquet"
    _frame("Nein").write_parquet(frame)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, window, str(frame), str(out), json.dumps(RECIPE)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _assert_clean(tmp_path: Path, out: Path) -> None:
    assert sorted(p.name for p in out.parent.iterdir()) == [
        f".{out.name}.lock", f".{out.name}.versions", out.name
    ]
    assert [p.name for p in publish.versions_dir(out).iterdir()] == [out.readlink().name]
    assert verify_exports(out) == []


@pytest.mark.parametrize(
    ("window", "published_after_kill"),
    [("writing", "one"), ("between_renames", "one"), ("after_swap", "two")],
)
def test_kill_in_each_window_keeps_a_complete_export_and_next_run_cleans(
    tmp_path, window, published_after_kill
):
    out = tmp_path / "exports" / "chat"
    write_exports(_frame(), _recipe(), out, config_hash="one")
    _kill_child(tmp_path, out, window)
    # at the published path: a complete export, the previous one or the new one
    assert verify_exports(out) == []
    assert read_manifest(out)["config_hash"] == published_after_kill
    leftovers = sorted(p.name for p in publish.versions_dir(out).iterdir())
    if window == "writing":
        assert any(n.startswith(".tmp-") for n in leftovers)
    if window == "between_renames":
        assert len(leftovers) == 2  # the unpublished version is there, not pointed at
    # the next run removes every leftover and publishes
    write_exports(_frame(), _recipe(), out, config_hash="three")
    assert read_manifest(out)["config_hash"] == "three"
    _assert_clean(tmp_path, out)


def test_kill_while_migrating_the_earlier_layout_is_repaired_at_next_run(tmp_path):
    out = tmp_path / "exports" / "chat"
    write_exports(_frame(), _recipe(), out, config_hash="one")
    # turn it into the earlier layout: a plain directory at the published path
    real = out.resolve()
    out.unlink()
    shutil.copytree(real, out)
    shutil.rmtree(publish.versions_dir(out))
    _kill_child(tmp_path, out, "legacy_migration")
    assert not out.exists()  # the one instant the migration cannot cover...
    assert recover_exports(out)  # ...is repaired by the next run (or any recover call)
    assert verify_exports(out) == []
    assert read_manifest(out)["config_hash"] in {"one", "two"}
    _assert_clean(tmp_path, out)


def test_earlier_layout_old_directory_stranded_by_a_kill_is_restored(tmp_path):
    out = tmp_path / "exports" / "chat"
    write_exports(_frame(), _recipe(), out, config_hash="one")
    real = out.resolve()
    out.unlink()
    stranded = tmp_path / "exports" / ".chat.old-x1y2" / "chat"
    stranded.parent.mkdir()
    shutil.copytree(real, stranded)
    shutil.rmtree(publish.versions_dir(out))
    (tmp_path / "exports" / ".chat.tmp-abcd").mkdir()  # a half-written export of that layout
    done = recover_exports(out)
    assert "restored .chat.old-x1y2" in done and "removed .chat.tmp-abcd" in done
    assert read_manifest(out)["config_hash"] == "one"
    write_exports(_frame(), _recipe(), out, config_hash="two")
    _assert_clean(tmp_path, out)


def test_a_reader_never_sees_the_published_path_without_a_manifest(tmp_path):
    out = tmp_path / "exports" / "chat"
    write_exports(_frame(), _recipe(), out, config_hash="c0")
    stop, misses, reads = threading.Event(), [], [0]

    def reader():
        while not stop.is_set():
            try:
                json.loads((out / "manifest.json").read_bytes())
                reads[0] += 1
            except (OSError, ValueError) as exc:
                misses.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 25):
            write_exports(_frame("Ja" if i % 2 else "Nein"), _recipe(), out,
                          config_hash=f"c{i}")
    finally:
        stop.set()
        thread.join()
    assert misses == []
    assert reads[0] > 0
    _assert_clean(tmp_path, out)
