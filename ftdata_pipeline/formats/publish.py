"""Crash-safe publishing of an export directory: a symlink swapped atomically onto a version.

Layout beside the published path ``<parent>/<name>``::

    <name>                      symlink -> .<name>.versions/<version>   (what readers open)
    .<name>.versions/<version>/ complete exports, one per published content
    .<name>.versions/.tmp-*     an export being written
    .<name>.lock                held (flock) while an export is staged and published

A version is named after its manifest's sha256, so identical content is one version. Publishing
is: write the staged export completely (fsynced), rename it to its version directory, make a
new symlink under a temp name and ``rename`` it over ``<name>``. ``rename`` replaces a symlink
atomically, so at every instant ``<name>`` is either the previous complete export or the new
one. A process killed at any point leaves leftovers that :func:`recover` removes at the next
run (under the lock): temp directories, versions that were never published, superseded ones,
and, if the published path itself is missing or dangling, it points it back at the newest
complete version.

An export written by the earlier layout (a plain directory at ``<name>``, with
``.<name>.tmp-*``/``.<name>.old-*`` siblings) is migrated on its next publish.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

TMP_PREFIX = ".tmp-"


def versions_dir(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.versions"


def lock_path(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.lock"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ExportLock:
    """An exclusive ``flock`` on ``.<name>.lock``; the kernel drops it if the process dies,
    so a killed run never leaves a stale lock."""

    def __init__(self, out_dir: Path):
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(lock_path(out_dir), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def current_version(out_dir: Path) -> str | None:
    """The version directory name ``<name>`` points at (None: not a symlink, or dangling)."""
    if out_dir.is_symlink() and out_dir.exists():
        return Path(os.readlink(out_dir)).name
    return None


def make_staging(out_dir: Path) -> Path:
    versions = versions_dir(out_dir)
    versions.mkdir(parents=True, exist_ok=True)
    os.chmod(versions, 0o755)
    staging = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=versions))
    # mkdtemp makes the directory owner-only; the export itself is meant to be readable.
    staging.chmod(0o755)
    return staging


def _point(out_dir: Path, version: str) -> None:
    """Point ``<name>`` at ``version`` with one atomic rename of a fresh symlink."""
    link_tmp = out_dir.parent / f".{out_dir.name}.link-{os.getpid()}"
    link_tmp.unlink(missing_ok=True)
    os.symlink(Path(versions_dir(out_dir).name) / version, link_tmp)
    if out_dir.exists() and not out_dir.is_symlink():
        # Earlier layout: a plain directory. It moves into the versions directory first; a
        # crash right here leaves no published path, which recover() repairs.
        os.rename(out_dir, versions_dir(out_dir) / f"legacy-{os.getpid()}")
    os.replace(link_tmp, out_dir)
    fsync_dir(out_dir.parent)


def publish(staging: Path, out_dir: Path, manifest_bytes: bytes) -> str:
    """Make the complete export in ``staging`` the one at ``out_dir``; returns its version."""
    version = hashlib.sha256(manifest_bytes).hexdigest()[:16]
    versions = versions_dir(out_dir)
    final = versions / version
    if current_version(out_dir) == version:
        # The same content is already published: nothing to swap.
        shutil.rmtree(staging, ignore_errors=True)
    else:
        if final.exists():  # written by a run that died before its swap
            shutil.rmtree(final)
        os.rename(staging, final)
        fsync_dir(versions)
        _point(out_dir, version)
    remove_superseded(out_dir)
    return version


def remove_superseded(out_dir: Path) -> list[str]:
    """Delete every version and temp directory except the published one."""
    versions = versions_dir(out_dir)
    keep = current_version(out_dir)
    removed = []
    if versions.is_dir():
        for entry in sorted(versions.iterdir()):
            if entry.name != keep:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
                removed.append(entry.name)
    for stray in out_dir.parent.glob(f".{out_dir.name}.link-*"):
        stray.unlink(missing_ok=True)
        removed.append(stray.name)
    return removed


def recover(out_dir: Path, is_complete: Callable[[Path], bool]) -> list[str]:
    """Repair what a killed run left behind; returns what was done (names, for a log line).

    Call with the lock held. ``is_complete(dir)`` says whether a directory holds a whole
    export (its manifest verifies).
    """
    done: list[str] = []
    parent = out_dir.parent
    # Earlier layout's leftovers: a directory moved aside before a swap that never happened.
    for old in sorted(parent.glob(f".{out_dir.name}.old-*")):
        stranded = old / out_dir.name
        if not out_dir.exists() and not out_dir.is_symlink() and stranded.is_dir() \
                and is_complete(stranded):
            os.rename(stranded, out_dir)
            done.append(f"restored {old.name}")
        shutil.rmtree(old, ignore_errors=True)
        done.append(f"removed {old.name}")
    for tmp in sorted(parent.glob(f".{out_dir.name}.tmp-*")):
        shutil.rmtree(tmp, ignore_errors=True)
        done.append(f"removed {tmp.name}")
    published = out_dir.exists()  # False when missing or a dangling symlink
    if not published:
        versions = versions_dir(out_dir)
        candidates = sorted(
            (d for d in versions.iterdir() if d.is_dir() and not d.name.startswith(TMP_PREFIX)),
            key=lambda d: d.stat().st_mtime, reverse=True,
        ) if versions.is_dir() else []
        for candidate in candidates:
            if is_complete(candidate):
                _point(out_dir, candidate.name)
                done.append(f"republished {candidate.name}")
                break
    done += [f"removed {n}" for n in remove_superseded(out_dir)] if out_dir.is_symlink() else [
        f"removed {n}" for n in _remove_temps(out_dir)
    ]
    return done


def _remove_temps(out_dir: Path) -> list[str]:
    versions = versions_dir(out_dir)
    removed = []
    if versions.is_dir():
        for entry in versions.glob(f"{TMP_PREFIX}*"):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed
