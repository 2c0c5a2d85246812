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
