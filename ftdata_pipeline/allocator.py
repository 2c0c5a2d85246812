"""Polars' and Arrow's allocators give freed memory back to the system at once, in every process.

Polars allocates with jemalloc and configures it to keep freed pages for reuse for about a
second (``dirty_decay_ms:500,muzzy_decay_ms:1000``); jemalloc only purges while it allocates,
so the pages of a whole-input frame a stage builds and drops stay resident through the next
phase, beside numpy's arrays (glibc's allocator cannot reuse them). On the split stage over
510k records that held the process at 1.3-1.5 GB between phases where the live data needed
~1.0 GB; purging at once left its run time as it was (98.5 s against 99.6 s).

jemalloc reads its settings once, when Polars loads, from ``_RJEM_MALLOC_CONF`` (Polars puts
its own defaults first, so a later setting wins). The package's ``__init__`` calls
``return_freed_memory`` before anything imports Polars; in a process that loaded Polars
before, the setting reaches its children (Dagster's step processes). Decay settings a user
put in ``_RJEM_MALLOC_CONF`` themselves are kept.

Arrow (the Parquet writer behind every spilled part and export) allocates from its bundled
mimalloc by default, which kept the buffers of batches already written resident: on the
split stage over 510k records its writing phase sat ~100 MB higher (1,275-1,364 MB against
1,178-1,245 MB with the system allocator, measured twice each), the stage's peak then.
Arrow reads ``ARROW_DEFAULT_MEMORY_POOL`` when it loads; set to ``system`` here unless a user
chose a pool, and in this process too when Arrow was loaded before the package.

numpy allocates from glibc's heap, which keeps freed arrays of up to 32 MB for reuse (its
threshold for giving an array pages of its own rises to that as large arrays are freed), and
gives the pages back only from the top of the heap. A phase that makes and frees millions of
mid-sized arrays (the split's similarity searches) left the next one ~150 MB higher at 900k
inputs; ``give_back`` (glibc's ``malloc_trim``) returns every free page after such a phase.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from functools import cache

_VAR = "_RJEM_MALLOC_CONF"
_POLARS_DEFAULTS = "dirty_decay_ms:500,muzzy_decay_ms:1000"  # what Polars writes first
PROMPT = "dirty_decay_ms:0,muzzy_decay_ms:0"
_ARROW_VAR = "ARROW_DEFAULT_MEMORY_POOL"


def return_freed_memory() -> None:
    """Both allocators give freed memory back at once, unless a user chose otherwise."""
    _jemalloc_decay()
    _arrow_pool()


def _jemalloc_decay() -> None:
    """Set jemalloc to purge freed pages at once, unless decay settings are already chosen
    (by a user, or by this function in a parent process: inherited with Polars' defaults)."""
    inherited = os.environ.get(_VAR, "")
    own = inherited.removeprefix(_POLARS_DEFAULTS).lstrip(",")
    if "decay_ms" in own:
        return
    os.environ[_VAR] = ",".join(part for part in (own, PROMPT) if part)


def _arrow_pool() -> None:
    """Arrow allocates from the system allocator, unless a pool is chosen already."""
    if _ARROW_VAR in os.environ:
        return
    os.environ[_ARROW_VAR] = "system"
    if "pyarrow" in sys.modules:  # loaded before the package: the variable was read already
        pyarrow = sys.modules["pyarrow"]
        pyarrow.set_memory_pool(pyarrow.system_memory_pool())


@cache
def _trim():
    """glibc's ``malloc_trim``, or None where the C library is not glibc."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def give_back() -> None:
    """Return the free pages of the C heap to the system (after a phase that freed many
    numpy arrays); nothing where the C library has no ``malloc_trim``."""
    trim = _trim()
    if trim is not None:
        trim(0)
