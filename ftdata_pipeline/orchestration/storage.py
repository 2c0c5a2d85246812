"""Where the pipeline keeps its files under ``FTDATA_HOME``, and the restricted zone's rules.

Layout::

    $FTDATA_HOME/
      restricted/<asset path>.parquet     raw and curated assets (hold raw PII), owner-only
      restricted/rejects/<dataset>/<stage>.parquet   full rows dropped before redaction
      storage/<asset path>.parquet        redacted-and-later assets
      <root>/<asset path>/<partition>.parquet        one partition of a partitioned asset
      restricted/rejects/<dataset>/<stage>/<partition>.parquet   rejects of one partition
      restricted/dedup_index/<dataset>/<partition>.parquet   what a partition kept (hashes)
      storage/rejects/<dataset>/<stage>.parquet      full rows dropped after redaction
      stats/<dataset>/<stage>.json         counts only, read by the dataset card
      exports/<dataset>/                   training files + manifest.json
      cards/<dataset>/                     dataset card (Markdown, JSON, plots)
      restricted/.spill/<dataset>/<stage>@<host>@<pid>@*/   what a running curated step wrote
      .spill/<dataset>/<stage>@<host>@<pid>@*/   ... a running redacted or split step
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote

import polars as pl
from dagster import ConfigurableResource

from ftdata_pipeline.parquet import write_scan
from ftdata_pipeline.records import REJECT_SCHEMA

HOME_ENV = "FTDATA_HOME"


def default_home() -> str:
    return os.environ.get(HOME_ENV, str(Path.cwd() / "data"))


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def atomic_write_bytes(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write to a temporary file beside ``path`` and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def partition_file_name(partition: str) -> str:
    """A partition key as one file name (keys of files below subfolders hold '/')."""
    return quote(partition, safe="") + ".parquet"


def stored_partitions(folder: Path) -> dict[str, Path]:
    """Partition key -> file of the partition files in ``folder``, in key order."""
    if not folder.is_dir():
        return {}
    found = {
        unquote(p.name.removesuffix(".parquet")): p
        for p in folder.glob("*.parquet") if not p.name.startswith(".")
    }
    return dict(sorted(found.items()))


def atomic_write_parquet(
    df: pl.DataFrame | pl.LazyFrame, path: Path, *, private: bool = False
) -> None:
    """Write ``df`` to ``path`` through a temporary file renamed into place. A LazyFrame is
    written a slice at a time (``parquet.write_scan``): never in memory as a whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        # statistics off: they embed nothing run-specific today, but keep files minimal and stable
        if isinstance(df, pl.LazyFrame):
            write_scan(df, Path(tmp))
        else:
            df.write_parquet(tmp, compression="zstd", statistics=False)
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PipelineStorage(ConfigurableResource):
    """Paths under FTDATA_HOME, plus the side files a stage writes besides its main output."""

    home: str

    @property
    def root(self) -> Path:
        return Path(self.home)

    def restricted_root(self) -> Path:
        return _private_dir(self.root / "restricted")

    def open_root(self) -> Path:
        path = self.root / "storage"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def asset_path(
        self, key_path: list[str], *, restricted: bool, partition: str | None = None
    ) -> Path:
        """The asset's Parquet file; of a partitioned asset, one partition's file."""
        base = self.restricted_root() if restricted else self.open_root()
        path = base.joinpath(*key_path).with_suffix(".parquet")
        if partition is not None:
            path = base.joinpath(*key_path) / partition_file_name(partition)
        if restricted:
            for parent in reversed(path.relative_to(base).parents):
                _private_dir(base / parent)
        return path

    def partition_paths(self, key_path: list[str], *, restricted: bool) -> dict[str, Path]:
        """Partition key -> stored file of every stored partition of an asset, in key order."""
        base = self.restricted_root() if restricted else self.open_root()
        return stored_partitions(base.joinpath(*key_path))

    # rejects: full rows, kept so that nothing a stage drops is lost
    def rejects_path(
        self, dataset: str, stage: str, *, restricted: bool, partition: str | None = None
    ) -> Path:
        base = self.restricted_root() if restricted else self.open_root()
        folder = base / "rejects" / dataset
        if restricted:
            _private_dir(base / "rejects")
            _private_dir(folder)
        if partition is not None:
            if restricted:
                _private_dir(folder / stage)
            return folder / stage / partition_file_name(partition)
        return folder / f"{stage}.parquet"

    def write_rejects(
        self, dataset: str, stage: str, rejected: pl.DataFrame, *, restricted: bool,
        partition: str | None = None,
    ):
        atomic_write_parquet(
            rejected,
            self.rejects_path(dataset, stage, restricted=restricted, partition=partition),
            private=restricted,
        )

    def read_reject_index(self, dataset: str, stage: str, *, restricted: bool) -> pl.DataFrame:
        """The content-free reject index (ids, stage, rule, score, detail) of one stage
        (of every stored partition, for a partitioned stage)."""
        path = self.rejects_path(dataset, stage, restricted=restricted)
        paths = [path] if path.exists() else []
        paths += list(stored_partitions(path.with_suffix("")).values())
        if not paths:
            return pl.DataFrame(schema=REJECT_SCHEMA)
        return pl.concat(
            [pl.read_parquet(p, columns=list(REJECT_SCHEMA)).cast(REJECT_SCHEMA) for p in paths]
        )

    # stats: counts only (never content), for the card and the CLI summary
    @contextmanager
    def spill_dir(self, dataset: str, stage: str, *, restricted: bool = False) -> Iterator[Path]:
        """An empty directory for a stage's output written as it goes; removed at exit.

        Under FTDATA_HOME, like the stored output it becomes: same file system, same zone (a
        stage holding raw PII spills inside the owner-only restricted zone). Its name holds
        the host and process id, so the folders a killed step left behind are removed by the
        next step on that host.
        """
        parent = (self.restricted_root() if restricted else self.root) / ".spill" / dataset
        parent.mkdir(parents=True, exist_ok=True)
        host = socket.gethostname()
        for left in parent.glob(f"*@{host}@*"):
            pid = left.name.split("@")[2]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(left, ignore_errors=True)
        path = Path(tempfile.mkdtemp(dir=parent, prefix=f"{stage}@{host}@{os.getpid()}@"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def stats_path(self, dataset: str, stage: str) -> Path:
        return self.root / "stats" / dataset / f"{stage}.json"

    def write_stats(self, dataset: str, stage: str, stats: dict) -> None:
        data = json.dumps(stats, indent=2, sort_keys=True, default=str) + "\n"
        atomic_write_bytes(self.stats_path(dataset, stage), data.encode("utf-8"))

    def read_stats(self, dataset: str, stage: str) -> dict:
        path = self.stats_path(dataset, stage)
        return json.loads(path.read_text("utf-8")) if path.exists() else {}

    def exports_dir(self, dataset: str) -> Path:
        return self.root / "exports" / dataset

    def cards_dir(self, dataset: str) -> Path:
        return self.root / "cards" / dataset
