"""Write a split dataset to disk in its recipe's export formats, atomically, with a manifest.

Layout: ``<out_dir>/<format>/<split>.jsonl`` (+ ``<split>.provenance.jsonl`` for strict formats)
and ``<out_dir>/manifest.json``. Nothing time-dependent is written, so the same records and
config give byte-identical files; the manifest's sha256 sums make that checkable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.formats import FORMATS_BY_NAME
from ftdata_pipeline.formats.kinds import export_kind
from ftdata_pipeline.records import RECORD_ID, SOURCE, SOURCE_KEY, SPLITS

MANIFEST = "manifest.json"
PROVENANCE_SUFFIX = ".provenance.jsonl"


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def _provenance(record: dict[str, Any]) -> dict[str, Any]:
    out = {"id": record[RECORD_ID], "source": record[SOURCE], "source_key": record[SOURCE_KEY]}
    if record.get("teacher"):  # distilled examples name the model that wrote the answer
        out["teacher"] = record["teacher"]
    return out


def _write_file(path: Path, lines: list[str]) -> dict[str, Any]:
    data = "".join(lines).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return {"records": len(lines), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _split_frames(df: pl.DataFrame) -> dict[str, pl.DataFrame]:
    if "split" not in df.columns:
        raise ValueError("export input has no 'split' column")
    unsplit = df.filter(~pl.col("split").is_in(list(SPLITS)) | pl.col("split").is_null()).height
    if unsplit:
        # Exporting only part of the frame would silently lose records.
        raise ValueError(f"{unsplit} record(s) have no split in {list(SPLITS)}")
    ordered = df.sort(RECORD_ID)
    frames = {s: ordered.filter(pl.col("split") == s) for s in SPLITS}
    return {s: f for s, f in frames.items() if f.height}


def _write_tree(df: pl.DataFrame, recipe: RecipeConfig, root: Path, config_hash: str) -> dict:
    frames = _split_frames(df)
    files: list[dict[str, Any]] = []
    for fmt_name in recipe.exports.formats:
        fmt = FORMATS_BY_NAME[fmt_name]
        if export_kind(recipe.kind) not in fmt.KINDS:
            raise ValueError(f"format {fmt_name!r} does not support kind {recipe.kind!r}")
        for split, frame in frames.items():
            examples, sidecar = [], []
            for record in frame.iter_rows(named=True):
                example = fmt.to_example(record)
                if fmt.STRICT:
                    sidecar.append(_line(_provenance(record)))
                else:
                    example = {**example, **_provenance(record)}
                examples.append(_line(example))
            outputs = [(f"{fmt_name}/{split}.jsonl", examples)]
            if fmt.STRICT:
                outputs.append((f"{fmt_name}/{split}{PROVENANCE_SUFFIX}", sidecar))
            for rel, lines in outputs:
                facts = _write_file(root / rel, lines)
                files.append({"path": rel, "format": fmt_name, "split": split, **facts})
        extra = getattr(fmt, "extra_files", None)
        for name, text in (extra(recipe.name, list(frames)) if extra else {}).items():
            rel = f"{fmt_name}/{name}"
            facts = _write_file(root / rel, text.splitlines(keepends=True))
            files.append({"path": rel, "format": fmt_name, "split": "all", **facts})
    manifest = {
        "dataset": recipe.name,
        "kind": recipe.kind,
        "config_hash": config_hash,
        "splits": {s: f.height for s, f in frames.items()},
        "files": sorted(files, key=lambda f: f["path"]),
    }
    _write_file(root / MANIFEST, [json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"])
    for directory in sorted({(root / f["path"]).parent for f in files}) + [root]:
        _fsync_dir(directory)
    return manifest


def _swap_in(new: Path, target: Path) -> None:
    """Replace ``target`` by ``new`` with renames, restoring ``target`` if the swap fails."""
    if not target.exists():
        os.rename(new, target)
        _fsync_dir(target.parent)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    previous = aside / target.name
    os.rename(target, previous)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(previous, target)
        aside.rmdir()
        raise
    _fsync_dir(target.parent)
    shutil.rmtree(aside, ignore_errors=True)


def write_exports(
    df: pl.DataFrame, recipe: RecipeConfig, out_dir: Path, *, config_hash: str
) -> dict:
    """Write every export format of ``recipe`` for each split in ``df``; return the manifest.

    The new export is built in a sibling temp directory and swapped in by renames, so readers
    see either the previous export or the complete new one; on failure the previous one stays.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    # mkdtemp makes the directory owner-only; the export itself is meant to be readable.
    tmp.chmod(0o755)
    try:
        manifest = _write_tree(df, recipe, tmp, config_hash)
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def read_manifest(out_dir: Path) -> dict:
    return json.loads((Path(out_dir) / MANIFEST).read_text(encoding="utf-8"))


def verify_exports(out_dir: Path) -> list[str]:
    """Problems found comparing the files on disk with the manifest; empty when all match."""
    out_dir = Path(out_dir)
    try:
        manifest = read_manifest(out_dir)
    except FileNotFoundError:
        return [f"{MANIFEST}: missing"]
    except json.JSONDecodeError as exc:
        return [f"{MANIFEST}: not valid JSON ({exc.msg})"]
    problems = []
    for entry in manifest.get("files", []):
        path = out_dir / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']}: missing")
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"{entry['path']}: sha256 mismatch")
        records = data.count(b"\n")
        if records != entry["records"]:
            problems.append(
                f"{entry['path']}: {records} records on disk, manifest says {entry['records']}"
            )
    return problems
