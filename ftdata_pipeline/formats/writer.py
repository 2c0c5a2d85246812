"""Write a split dataset to disk in its recipe's export formats, atomically, with a manifest.

Layout: ``<out_dir>/<format>/<split>.jsonl`` (+ ``<split>.provenance.jsonl`` for strict formats)
and ``<out_dir>/manifest.json``. Nothing time-dependent is written, so the same records and
config give byte-identical files; the manifest's sha256 sums make that checkable.

Every line is checked against its trainer's rules (the format's ``validate``) before it is
written; a split's lines are made and written a batch of records at a time. A record with a
line that breaks them is left out of *every* format of the export (so one line number still
serves all of a split's files) and returned as a reject with the format and the reason (rule
``format_invalid``); the manifest counts them.

Writing is two steps, so checks can run on the staged files before they are published:
``stage_exports`` builds the complete new export in a temp directory, ``StagedExport.publish``
swaps it in (``discard`` drops it and keeps the previous export). ``write_exports`` does both.
Publishing is crash-safe (see ``publish``): the published path is a symlink swapped atomically
onto a complete version directory, and whatever a killed run left is cleaned at the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.formats import FORMATS_BY_NAME, publish
from ftdata_pipeline.formats.common import classification_as_chat, default_instruction
from ftdata_pipeline.formats.kinds import export_kind
from ftdata_pipeline.formats.rlhf_steps import Part, step_parts
from ftdata_pipeline.parquet import scan_slices
from ftdata_pipeline.records import RECORD_ID, REJECT_SCHEMA, SOURCE, SOURCE_KEY, SPLITS

MANIFEST = "manifest.json"
PROVENANCE_SUFFIX = ".provenance.jsonl"
REJECT_STAGE = "exports"
FORMAT_INVALID = "format_invalid"
EXTRA_SPLIT = "all"  # manifest split of a format's extra files (not per-split example lines)
# Records turned into lines at one time: a split's lines are written as they are made, so
# the export step holds one batch of lines, not every line of every format.
EXPORT_BATCH = 5_000
VERIFY_CHUNK = 1 << 20  # bytes of an export file read at a time when it is verified


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def _provenance(record: dict[str, Any]) -> dict[str, Any]:
    out = {"id": record[RECORD_ID], "source": record[SOURCE], "source_key": record[SOURCE_KEY]}
    if record.get("teacher"):  # distilled examples name the model that wrote the answer
        out["teacher"] = record["teacher"]
    return out


_fsync_dir = publish.fsync_dir


def _check_splits(records: pl.LazyFrame) -> None:
    if "split" not in records.collect_schema().names():
        raise ValueError("export input has no 'split' column")
    unsplit = records.filter(
        ~pl.col("split").is_in(list(SPLITS)) | pl.col("split").is_null()
    ).select(pl.len()).collect().item()
    if unsplit:
        # Exporting only part of the frame would silently lose records.
        raise ValueError(f"{unsplit} record(s) have no split in {list(SPLITS)}")


def _split_rows(records: pl.DataFrame | pl.LazyFrame, split: str) -> Iterator[pl.DataFrame]:
    """One split's records in id order, ``EXPORT_BATCH`` at a time.

    The split stage stores the splits one after another, each in id order: then the split is
    a run of rows, read a slice at a time (only the split and id columns are read first, to
    know). Records in another layout are gathered and sorted in memory.
    """
    lf = records.lazy()
    where = (
        lf.select(pl.col("split") == split, pl.col(RECORD_ID))
        .with_row_index("_at")
        .filter(pl.col("split"))
        .select(
            pl.len().alias("n"), pl.col("_at").min().alias("first"),
            pl.col("_at").max().alias("last"), pl.col(RECORD_ID).is_sorted().alias("ordered"),
        )
        .collect()
        .row(0, named=True)
    )
    if not where["n"]:
        return
    if where["ordered"] and where["last"] - where["first"] + 1 == where["n"]:
        yield from scan_slices(lf.slice(where["first"], where["n"]), EXPORT_BATCH)
        return
    rows = lf.filter(pl.col("split") == split).collect().sort(RECORD_ID)
    yield from rows.iter_slices(EXPORT_BATCH)


def _owned(rejected: list[tuple[str, str]], owners: pl.DataFrame | None) -> dict[str, str]:
    """Rejected record ids -> detail, as the records they stand for (an SFT/RL example: every
    pair of its prompt)."""
    if owners is None or not rejected:
        return dict(rejected)
    detail = dict(rejected)
    return {pair: detail[rid] for rid, pair in
            owners.filter(pl.col(RECORD_ID).is_in(list(detail))).sort("pair_id").iter_rows()}


def _formats(recipe: RecipeConfig) -> list[Any]:
    formats = []
    for fmt_name in recipe.exports.formats:
        fmt = FORMATS_BY_NAME[fmt_name]
        if export_kind(recipe.kind) not in fmt.KINDS:
            raise ValueError(f"format {fmt_name!r} does not support kind {recipe.kind!r}")
        formats.append(fmt)
    return formats


def instruction_for(recipe: RecipeConfig) -> str:
    return recipe.exports.instruction or default_instruction(recipe.label.label_set)


def example_for(fmt: Any, record: dict[str, Any], kind: str, instruction: str) -> dict[str, Any]:
    """One record as one line of ``fmt``: in a chat format, a classification record is the
    recipe's instruction and the text, answered by the label."""
    if kind == "classification" and fmt.CHAT:
        record = classification_as_chat(record, instruction)
    return fmt.to_example(record)


def line_problems(fmt: Any, record: dict[str, Any], kind: str, instruction: str):
    """(example or None, reasons): the line and what breaks its trainer's rules."""
    try:
        example = example_for(fmt, record, kind, instruction)
    except (KeyError, TypeError, ValueError) as exc:
        # A record that cannot be expressed at all (no assistant turn, a missing field).
        return None, [f"cannot build a line: {exc}"]
    return example, fmt.validate(example)


def _render(frame: pl.DataFrame, kind: str, instruction: str, formats: list[Any]):
    """Lines per format for some records of a split, and the records left out with their
    reasons."""
    lines: dict[str, tuple[list[str], list[str]]] = {f.NAME: ([], []) for f in formats}
    rejected: list[tuple[str, str]] = []  # (record_id, detail)
    for record in frame.iter_rows(named=True):
        examples, reasons = [], []
        for fmt in formats:
            example, problems = line_problems(fmt, record, kind, instruction)
            reasons += [f"{fmt.NAME}: {p}" for p in problems]
            examples.append(example)
        if reasons:
            rejected.append((record[RECORD_ID], "; ".join(reasons)))
            continue
        for fmt, example in zip(formats, examples, strict=True):
            data, sidecar = lines[fmt.NAME]
            if fmt.STRICT:
                sidecar.append(_line(_provenance(record)))
            else:
                example = {**example, **_provenance(record)}
            data.append(_line(example))
    return lines, rejected


class _LineFile:
    """An export file written as its lines come, its size and sha256 summed on the way."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "wb")  # noqa: SIM115 - closed by close() or abort()
        self._sha = hashlib.sha256()
        self.records = 0
        self.bytes = 0

    def write(self, lines: list[str]) -> None:
        data = "".join(lines).encode("utf-8")
        self._fh.write(data)
        self._sha.update(data)
        self.records += len(lines)
        self.bytes += len(data)

    def close(self) -> dict[str, Any]:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        return {"records": self.records, "bytes": self.bytes, "sha256": self._sha.hexdigest()}

    def abort(self) -> None:
        """Let go of the file after a failure (the staging directory is removed anyway)."""
        self._fh.close()


def _write_file(path: Path, lines: list[str]) -> dict[str, Any]:
    """A whole file at once (the manifest, a format's extra files)."""
    out = _LineFile(path)
    try:
        out.write(lines)
    except BaseException:
        out.abort()
        raise
    return out.close()


def _write_split(
    batches: Iterable[pl.DataFrame], part: Part, split: str, instruction: str, root: Path
) -> tuple[list[tuple[str, str]], dict[str, tuple[str, dict[str, Any]]], int]:
    """Write one split's lines in every format of ``part``, a batch of records at a time
    (only one batch's records and lines are in memory). Returns the records left out (id,
    detail), per file written its format and facts, and the records read. A file is opened
    at its first line: a split whose every record was left out has no file, as before any
    line is known."""
    rejected: list[tuple[str, str]] = []
    files: dict[str, _LineFile] = {}
    formats: dict[str, str] = {}
    read = 0
    with ExitStack() as stack:
        for batch in batches:
            read += batch.height
            lines, batch_rejected = _render(batch, part.kind, instruction, part.formats)
            rejected += batch_rejected
            for fmt in part.formats:
                examples, sidecar = lines[fmt.NAME]
                outputs = [(f"{part.prefix}{fmt.NAME}/{split}.jsonl", examples)]
                if fmt.STRICT:
                    outputs.append((f"{part.prefix}{fmt.NAME}/{split}{PROVENANCE_SUFFIX}", sidecar))
                for rel, content in outputs:
                    if not content:
                        continue
                    if rel not in files:
                        files[rel] = _LineFile(root / rel)
                        stack.callback(files[rel].abort)  # on failure (after close: no-op)
                        formats[rel] = fmt.NAME
                    files[rel].write(content)
        return rejected, {rel: (formats[rel], f.close()) for rel, f in files.items()}, read


def _parts(records: pl.LazyFrame, recipe: RecipeConfig) -> list[Part]:
    """One part (all records, the recipe's formats, read as they are written) or, with
    ``rlhf``, one per RLHF step (built in memory: a step's examples come from its pairs)."""
    if recipe.rlhf is None:
        return [Part("", None, recipe.kind, _formats(recipe), records)]
    return step_parts(records.collect(), recipe, _formats(recipe))


def _write_tree(
    records: pl.DataFrame | pl.LazyFrame, recipe: RecipeConfig, root: Path, config_hash: str
):
    lf = records.lazy()
    _check_splits(lf)
    parts = _parts(lf, recipe)
    instruction = instruction_for(recipe)
    files: list[dict[str, Any]] = []
    rejected: dict[str, str] = {}
    steps: dict[str, dict[str, Any]] = {}
    for part in parts:
        step_file = {"step": part.step} if part.step else {}
        examples_written: dict[str, int] = {}
        for split in SPLITS:
            split_rejected, written_files, read = _write_split(
                _split_rows(part.records, split), part, split, instruction, root
            )
            if not read:
                continue
            rejected.update(_owned(split_rejected, part.owners))
            examples_written[split] = read - len(split_rejected)
            for rel, (fmt_name, facts) in written_files.items():
                files.append({"path": rel, "format": fmt_name, "split": split, **step_file,
                              **facts})
        # Files a format wants beside its split files (LLaMA-Factory's dataset_info.json),
        # staged and published with them; split "all" in the manifest, and not example lines.
        splits_written = [s for s in SPLITS if examples_written.get(s)]
        for fmt in part.formats:
            extra = getattr(fmt, "extra_files", None)
            for name, text in (extra(recipe.name, splits_written) if extra else {}).items():
                rel = f"{part.prefix}{fmt.NAME}/{name}"
                facts = _write_file(root / rel, text.splitlines(keepends=True))
                files.append({"path": rel, "format": fmt.NAME, "split": EXTRA_SPLIT,
                              **step_file, **facts})
        if part.step:
            steps[part.step] = {
                "formats": [f.NAME for f in part.formats],
                "examples": {s: n for s, n in examples_written.items() if n},
            }
    # records (pairs, for the RLHF steps) written per split: those no format left out
    ids = sorted(rejected)
    has_tokens = "n_tokens" in lf.collect_schema().names()
    per_split = (
        lf.group_by("split")
        .agg(
            (~pl.col(RECORD_ID).is_in(ids)).sum().alias("written"),
            *([pl.col("n_tokens").sum().alias("tokens")] if has_tokens else []),
        )
        .sort("split")
        .collect()
    )
    written = {row["split"]: int(row["written"]) for row in per_split.iter_rows(named=True)}
    written = {s: written[s] for s in SPLITS if s in written}
    by_format: dict[str, int] = {}
    for detail in rejected.values():
        for fmt_name in sorted({part.split(":", 1)[0] for part in detail.split("; ")}):
            by_format[fmt_name] = by_format.get(fmt_name, 0) + 1
    manifest = {
        "dataset": recipe.name,
        "kind": recipe.kind,
        "config_hash": config_hash,
        "splits": {s: n for s, n in written.items() if n},
        "files": sorted(files, key=lambda f: f["path"]),
        "rejected": {"records": len(rejected), "by_format": dict(sorted(by_format.items()))},
    }
    if steps:
        manifest["rlhf"] = steps
    if has_tokens:  # counted by the split stage with the recipe's tokenizer
        tokens = {row["split"]: int(row["tokens"]) for row in per_split.iter_rows(named=True)}
        manifest["tokens"] = {
            "tokenizer": recipe.tokens.tokenizer,
            "per_split": {s: tokens[s] for s in SPLITS if s in tokens},
        }
    _write_file(root / MANIFEST, [json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"])
    for directory in sorted({(root / f["path"]).parent for f in files}) + [root]:
        _fsync_dir(directory)
    rejects = lf.filter(pl.col(RECORD_ID).is_in(ids)).sort(RECORD_ID).collect().with_columns(
        pl.lit(REJECT_STAGE).alias("stage"),
        pl.lit(FORMAT_INVALID).alias("rule"),
        pl.lit(None, REJECT_SCHEMA["score"]).alias("score"),
        pl.col(RECORD_ID).replace_strict(rejected, default=None, return_dtype=pl.String)
        .alias("detail"),
    )
    # a scan in, a scan out: the records exported are never all in memory
    kept = lf.filter(~pl.col(RECORD_ID).is_in(ids))
    return manifest, kept if isinstance(records, pl.LazyFrame) else kept.collect(), rejects


@dataclass
class StagedExport:
    """A complete new export in a temp directory, not yet published at ``out_dir``.

    It holds the dataset's export lock until ``publish`` or ``discard``.
    """

    staging: Path
    out_dir: Path
    manifest: dict
    kept: pl.DataFrame | pl.LazyFrame  # the records written (lineage is built from these)
    rejected: pl.DataFrame  # full rows + stage/rule/score/detail of the records left out
    recovered: list[str] = field(default_factory=list)  # what recovery cleaned before staging
    version: str | None = None
    _lock: publish.ExportLock | None = None

    def publish(self) -> str:
        try:
            self.version = publish.publish(
                self.staging, self.out_dir, (self.staging / MANIFEST).read_bytes()
            )
        except BaseException:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise
        finally:
            self._release()
        return self.version

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _is_complete(directory: Path) -> bool:
    return (directory / MANIFEST).is_file() and not verify_exports(directory)


def recover_exports(out_dir: Path) -> list[str]:
    """Clean up after a killed export run (temp and stale directories, a missing published
    path); safe to call any time."""
    out_dir = Path(out_dir)
    lock = publish.ExportLock(out_dir)
    try:
        return publish.recover(out_dir, _is_complete)
    finally:
        lock.release()


def stage_exports(
    df: pl.DataFrame, recipe: RecipeConfig, out_dir: Path, *, config_hash: str
) -> StagedExport:
    """Build every export format of ``recipe`` for each split of ``df`` in a temp directory
    beside ``out_dir``; nothing at ``out_dir`` changes until ``publish``."""
    out_dir = Path(out_dir)
    lock = publish.ExportLock(out_dir)
    try:
        recovered = publish.recover(out_dir, _is_complete)
        tmp = publish.make_staging(out_dir)
        try:
            manifest, kept, rejected = _write_tree(df, recipe, tmp, config_hash)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    except BaseException:
        lock.release()
        raise
    return StagedExport(tmp, out_dir, manifest, kept, rejected, recovered, _lock=lock)


def write_exports(
    df: pl.DataFrame, recipe: RecipeConfig, out_dir: Path, *, config_hash: str
) -> dict:
    """Write every export format of ``recipe`` for each split in ``df``; return the manifest.

    The new export is built in a temp directory and published by an atomic symlink swap, so
    readers see either the previous export or the complete new one; on failure (or a kill at
    any point) the previous one stays.
    """
    staged = stage_exports(df, recipe, out_dir, config_hash=config_hash)
    staged.publish()
    return staged.manifest


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
        # read in chunks: a training file can be larger than the memory a step should take
        digest, records = hashlib.sha256(), 0
        with open(path, "rb") as fh:
            while chunk := fh.read(VERIFY_CHUNK):
                digest.update(chunk)
                records += chunk.count(b"\n")
        if digest.hexdigest() != entry["sha256"]:
            problems.append(f"{entry['path']}: sha256 mismatch")
        if records != entry["records"]:
            problems.append(
                f"{entry['path']}: {records} records on disk, manifest says {entry['records']}"
            )
    return problems


def validate_export_files(out_dir: Path, *, max_reasons: int = 5) -> dict[str, Any]:
    """Re-read every data file listed in the manifest and check each line against its format's
    trainer rules, independently of the writer. Returns ``{"lines": n, "invalid": n,
    "problems": ["<file>:<line>: <reason>", ...]}`` (reasons name keys, never content)."""
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    lines_seen = invalid = 0
    problems: list[str] = []
    for entry in manifest.get("files", []):
        if entry["path"].endswith(PROVENANCE_SUFFIX) or entry.get("split") == EXTRA_SPLIT:
            continue
        fmt = FORMATS_BY_NAME.get(entry["format"])
        if fmt is None:
            invalid += 1
            problems.append(f"{entry['path']}: unknown format {entry['format']!r}")
            continue
        with open(out_dir / entry["path"], encoding="utf-8") as fh:
            for number, raw in enumerate(fh, start=1):
                lines_seen += 1
                try:
                    example = json.loads(raw)
                    reasons = (
                        fmt.validate(example) if isinstance(example, dict) else ["not an object"]
                    )
                except json.JSONDecodeError as exc:
                    reasons = [f"not valid JSON ({exc.msg})"]
                if reasons:
                    invalid += 1
                    if len(problems) < max_reasons:
                        problems.append(f"{entry['path']}:{number}: {'; '.join(reasons)}")
    return {"lines": lines_seen, "invalid": invalid, "problems": problems}
