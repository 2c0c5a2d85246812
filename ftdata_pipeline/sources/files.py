"""File sources: JSONL, CSV and Parquet, with per-line quarantine of bad rows.

JSONL is read by Polars; only when Polars refuses the file is it scanned line by line to find
the bad lines (malformed JSON, not an object, not UTF-8), which fail the source or, with
``on_bad_rows: quarantine``, are set aside with their line number and reason. CSV is read with
the standard library's C ``csv`` reader rather than Polars: Polars pads a row with too few
fields silently and cannot say which physical line a row came from, and both matter here.
It reads the file as a stream and turns its rows into Polars columns ``CSV_BATCH`` rows at a
time, so the Python strings of only one batch are alive at once.
A UTF-8 byte-order mark is skipped in both. Annotation tools' exports (``label_studio``,
``argilla``) are read by their importers into annotation rows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from ftdata_pipeline.governance.versions import file_sha256
from ftdata_pipeline.sources.base import RawRead, SourceError, register, resolve

BOM = b"\xef\xbb\xbf"
MAX_LINES_SHOWN = 5
CSV_BATCH = 50_000  # CSV rows held as Python strings at one time


def _shown(lines: list[int]) -> str:
    more = ", ..." if len(lines) > MAX_LINES_SHOWN else ""
    return ", ".join(map(str, lines[:MAX_LINES_SHOWN])) + more


def _bad_rows_error(name: str, path: Path, fmt: str, bad: list[dict[str, Any]]) -> SourceError:
    first = bad[0]
    more = f"; {len(bad)} bad rows, at lines {_shown([b['line'] for b in bad])}" if len(bad) > 1 else ""
    return SourceError(
        f"source {name!r}: {path}: not a valid {fmt} file at line {first['line']}: "
        f"{first['reason']}{more} (fix the file, or set on_bad_rows: quarantine to set bad "
        "rows aside)"
    )


def _quarantine(name: str, path: Path, line: int, reason: str, raw: bytes) -> dict[str, Any]:
    return {
        "source": name,
        "file": str(path),
        "line": line,
        "reason": reason,
        "content": raw.decode("utf-8", errors="backslashreplace"),
    }


def _head(path: Path, limit: int | None) -> bytes:
    """The file's bytes, or only its first ``limit`` lines (validate reads a sample)."""
    if limit is None:
        return path.read_bytes()
    with path.open("rb") as fh:
        return b"".join(line for _, line in zip(range(limit), fh, strict=False))


def read_jsonl(name: str, path: Path, on_bad_rows: str, limit: int | None = None) -> RawRead:
    data = _head(path, limit)
    if data.startswith(BOM):
        data = data[len(BOM):]
    if not data.strip():
        # An empty file is no data, not broken data; the raw size guard decides if that is ok.
        return RawRead(pl.DataFrame())
    try:
        return RawRead(pl.read_ndjson(io.BytesIO(data), infer_schema_length=None))
    except Exception:  # noqa: BLE001 - find the bad lines instead; the library message may quote data
        pass
    good: list[bytes] = []
    bad: list[dict[str, Any]] = []
    for n, raw in enumerate(data.split(b"\n"), start=1):
        line = raw.rstrip(b"\r")
        if line.startswith(BOM):
            line = line[len(BOM):]
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(_quarantine(name, path, n, "not UTF-8 text", line))
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            bad.append(_quarantine(name, path, n, f"malformed JSON ({exc.msg})", line))
            continue
        if not isinstance(value, dict):
            bad.append(_quarantine(name, path, n, "not a JSON object", line))
            continue
        good.append(line)
    if not bad:
        raise SourceError(f"source {name!r}: {path}: not a valid jsonl file (every line parses "
                          "as a JSON object, but the lines' types do not fit one schema)")
    if on_bad_rows == "fail":
        raise _bad_rows_error(name, path, "jsonl", bad)
    frame = (
        pl.read_ndjson(io.BytesIO(b"\n".join(good)), infer_schema_length=None)
        if good
        else pl.DataFrame()
    )
    return RawRead(frame, bad, {"rows_quarantined": len(bad)})


class _TakenLines:
    """The lines the ``csv`` reader takes from a text file, kept until its row is complete:
    a bad row is quarantined with its exact text (a quoted field may span lines)."""

    def __init__(self, lines: Iterator[str]):
        self._lines = lines
        self.taken: list[str] = []

    def __iter__(self) -> _TakenLines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.taken.append(line)
        return line


def _csv_frame(header: list[str], rows: list[list[str]]) -> pl.DataFrame:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    return pl.DataFrame(
        {h: pl.Series(h, col, dtype=pl.String) for h, col in zip(header, columns, strict=True)}
    ).with_columns(
        # As Polars' reader does: an empty field is missing.
        pl.when(pl.col(h) != "").then(pl.col(h)).alias(h) for h in header
    )


def read_csv(name: str, path: Path, on_bad_rows: str, limit: int | None = None) -> RawRead:
    # The file is read as a stream and its rows become Polars columns CSV_BATCH rows at a time:
    # held as Python lists of strings, a whole file takes ~12x its size in memory.
    # surrogateescape keeps undecodable bytes as lone surrogates, so one bad line is found
    # and reported by number instead of refusing the whole file; utf-8-sig drops a BOM.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        lines = _TakenLines(fh)
        reader = csv.reader(lines)
        header: list[str] | None = None
        frames: list[pl.DataFrame] = []
        rows: list[list[str]] = []
        n_rows = 0
        bad: list[dict[str, Any]] = []
        short = 0
        start = 1
        for row in reader:
            line, start = start, reader.line_num + 1
            taken, lines.taken = lines.taken, []
            if not row:
                continue
            undecodable = any(_has_surrogate(v) for v in row)
            if header is None:
                if undecodable:
                    raise SourceError(f"source {name!r}: {path}: the header line is not UTF-8 text")
                header = row
                if len(set(header)) != len(header):
                    raise SourceError(f"source {name!r}: {path}: the header repeats a column name")
                continue
            reason = None
            if undecodable:
                reason = "not UTF-8 text"
            elif len(row) < len(header):
                short += 1
                reason = f"too few fields ({len(row)} of {len(header)})"
            elif len(row) > len(header):
                reason = f"too many fields ({len(row)} of {len(header)})"
            if limit is not None and n_rows + len(bad) >= limit:
                break
            if reason:
                raw = "".join(taken).removesuffix("\n")  # the row's lines, as in the file
                bad.append(_quarantine(name, path, line, reason,
                                       raw.encode("utf-8", errors="surrogateescape")))
                continue
            rows.append(row)
            n_rows += 1
            if len(rows) == CSV_BATCH:
                frames.append(_csv_frame(header, rows))
                rows = []
    if header is None:
        return RawRead(pl.DataFrame())
    if bad and on_bad_rows == "fail":
        raise _bad_rows_error(name, path, "csv", bad)
    if rows or not frames:
        frames.append(_csv_frame(header, rows))
    counts = {"rows_quarantined": len(bad), "csv_rows_short": short} if bad else {}
    return RawRead(pl.concat(frames) if len(frames) > 1 else frames[0], bad, counts)


def _has_surrogate(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def read_parquet(name: str, path: Path, on_bad_rows: str, limit: int | None = None) -> RawRead:
    try:
        return RawRead(pl.read_parquet(path, n_rows=limit))
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: one clear error
        raise SourceError(
            f"source {name!r}: {path}: not a valid parquet file ({type(exc).__name__}); "
            "a truncated upload looks like this"
        ) from None


READERS = {"jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet}


def read_tool_export(name: str, cfg: Any, path: Path, limit: int | None = None) -> RawRead:
    """A Label Studio / Argilla export file, as annotation rows (``ANNOTATION_SCHEMA``): the
    labeling package's importers parse each tool's own layout."""
    from ftdata_pipeline.stages.labeling.imports import AnnotationImportError, load_tool_export

    try:
        frame = load_tool_export(name, cfg, path)
    except AnnotationImportError as exc:
        raise SourceError(str(exc)) from None
    return RawRead(frame if limit is None else frame.head(limit))


class FileKind:
    name = "file"

    def path(self, cfg: Any, root: Path) -> Path:
        return resolve(cfg.path, root)

    def read(self, name: str, cfg: Any, root: Path, *, limit: int | None = None) -> RawRead:
        path = self.path(cfg, root)
        if not path.is_file():
            raise SourceError(f"source {name!r}: file not found: {path}")
        try:
            if getattr(cfg, "tool_export", False):
                return read_tool_export(name, cfg, path, limit)
            return READERS[cfg.format](name, path, cfg.on_bad_rows, limit)
        except OSError as exc:
            raise SourceError(f"source {name!r}: {path}: cannot be read ({exc.strerror})") from None

    def fingerprint(self, cfg: Any, root: Path) -> str | None:
        path = self.path(cfg, root)
        if not path.is_file():
            return None
        stat = path.stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}"

    def input_version(self, cfg: Any, root: Path, df: pl.DataFrame) -> dict[str, Any]:
        path = self.path(cfg, root)
        stat = path.stat()
        return {
            "kind": "file",
            "path": str(cfg.path),
            "sha256": file_sha256(path),
            "bytes": stat.st_size,
            "mtime": int(stat.st_mtime),
            "rows_read": df.height,
        }

    def asset_kinds(self, cfg: Any) -> set[str]:
        return {cfg.format or "file"}

    def location(self, cfg: Any) -> str:
        return str(cfg.path)


register(FileKind())
