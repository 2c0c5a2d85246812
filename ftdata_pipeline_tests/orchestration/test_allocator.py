"""Processes that load the package give freed Polars memory back at once, and so do their
children (Dagster's step processes); a user's own allocator settings are kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Builds and drops a ~0.3 GB frame; prints resident memory held by it and left after it.
_MEASURE = """
import psutil, polars as pl
p = psutil.Process()
base = p.memory_info().rss
df = pl.DataFrame({"x": pl.int_range(0, 20_000_000, eager=True)}).with_columns(
    pl.col("x").cast(pl.String))
held = p.memory_info().rss - base
del df
pl.DataFrame({"y": [1, 2, 3]}).sum()  # an allocation after the free: jemalloc's chance to purge
print(held, p.memory_info().rss - base)
"""


def _run(code: str, env_conf: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    if env_conf is not None:
        env["_RJEM_MALLOC_CONF"] = env_conf
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300, check=True)
    return done.stdout.strip().splitlines()[-1]


def _left_share(line: str) -> float:
    held, left = (int(x) for x in line.split())
    assert held > 150e6, held  # the frame was resident
    return left / held


def test_freed_frames_leave_the_process_and_its_children() -> None:
    # Polars alone keeps the freed pages resident: what the package changes.
    assert _left_share(_run(_MEASURE)) > 0.5
    assert _left_share(_run("import ftdata_pipeline\n" + _MEASURE)) < 0.2
    # A child of a process that loaded the package (and Polars) inherits the setting, even
    # when it imports Polars first: a step process loads the code location after Polars.
    child = (
        "import ftdata_pipeline, polars, subprocess, sys\n"
        f"print(subprocess.run([sys.executable, '-c', {_MEASURE!r}], capture_output=True,"
        " text=True, check=True).stdout.strip())"
    )
    assert _left_share(_run(child)) < 0.2


def test_a_users_allocator_settings_are_kept() -> None:
    show = "import ftdata_pipeline, os, json; print(json.dumps(os.environ['_RJEM_MALLOC_CONF']))"
    mine = "dirty_decay_ms:3000,narenas:2"
    assert json.loads(_run(show, mine)) == mine
    assert json.loads(_run(show)) == "dirty_decay_ms:0,muzzy_decay_ms:0"
    # inherited from a parent that loaded Polars without the package: Polars' defaults only
    assert json.loads(_run(show, "dirty_decay_ms:500,muzzy_decay_ms:1000")) == (
        "dirty_decay_ms:0,muzzy_decay_ms:0")


def test_arrow_writes_from_the_system_allocator_unless_a_pool_is_chosen() -> None:
    """Arrow's bundled mimalloc kept written batches resident (~100 MB through the split
    stage's writes at 510k records): the package's processes and their children use the
    system allocator; a pool a user chose is kept; Arrow loaded before the package follows."""
    pool = "import pyarrow as pa; print(pa.default_memory_pool().backend_name)"

    def run(code: str, **env: str) -> str:
        base = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
        done = subprocess.run([sys.executable, "-c", code], env={**base, **env},
                              capture_output=True, text=True, timeout=300, check=True)
        return done.stdout.strip().splitlines()[-1]

    assert run(pool) != "system"  # Arrow's own default: what the package changes
    assert run("import ftdata_pipeline\n" + pool) == "system"
    assert run("import pyarrow, ftdata_pipeline\n" + pool) == "system"
    child = (
        "import ftdata_pipeline, subprocess, sys\n"
        f"print(subprocess.run([sys.executable, '-c', {pool!r}], capture_output=True,"
        " text=True, check=True).stdout.strip())"
    )
    assert run(child) == "system"
    assert run("import ftdata_pipeline\n" + pool, ARROW_DEFAULT_MEMORY_POOL="mimalloc") == "mimalloc"


# Fills glibc's heap with mid-sized numpy arrays the way a search does (made and freed in
# turn, a few kept), frees them, and prints resident memory before and after ``give_back``.
_HEAP = """
import numpy as np, psutil
from ftdata_pipeline.allocator import give_back
p = psutil.Process()
big = np.empty(16 << 20, dtype=np.uint8); big[:] = 1; del big  # raises glibc's mmap threshold
kept, arrays = [], []
for i in range(400):
    a = np.ones((1 << 20) + 4096 * (i % 7), dtype=np.uint8)  # ~1 MB each, from the heap
    arrays.append(a)
    if i % 20 == 19:
        kept.append(np.ones(100_000, dtype=np.uint8))  # live chunks pin the heap's top
arrays.clear()
before = p.memory_info().rss
give_back()
print(before, p.memory_info().rss)
"""


def test_give_back_returns_the_free_pages_of_the_c_heap() -> None:
    """Freed mid-sized arrays stay resident in glibc's heap (below its top) until
    ``give_back``, which the split's searches call when they end."""
    before, after = (int(x) for x in _run(_HEAP).split())
    assert before - after > 200e6, (before, after)


def test_the_split_stage_gives_freed_memory_back_after_each_search(tmp_path, monkeypatch) -> None:
    """The split stage returns the C heap's free pages once its grouping and once its leak
    report have searched (measured on 900k inputs: ~150 MB each time, under every later
    phase, the writing one its peak then)."""
    import random

    import polars as pl

    from ftdata_pipeline.config.models import RecipeConfig
    from ftdata_pipeline.records import conform
    from ftdata_pipeline.stages.split import stage

    calls = []
    monkeypatch.setattr(stage, "give_back", lambda: calls.append(1))
    rng = random.Random(2)
    words = [f"w{i}" for i in range(40)]
    frame = conform(pl.DataFrame({
        "record_id": [f"r{i:04d}" for i in range(400)], "source": "s",
        "source_key": [str(i) for i in range(400)],
        "text": [" ".join(rng.choices(words, k=12)) for _ in range(400)],
    }))
    recipe = RecipeConfig.model_validate({
        "name": "d", "kind": "pretraining", "sources": ["s"], "exports": {"formats": ["trl_text"]},
        "split": {"group_near_duplicates": 0.5},
    })
    stage.split(frame.lazy(), recipe, spill=tmp_path / "out")
    assert len(calls) == 2
