"""``ftdata pii``: redact or scan one field of a JSONL file with a recipe's redaction settings.

    ftdata pii redact --recipe NAME --input IN.jsonl --field FIELD --output OUT.jsonl
    ftdata pii scan   --recipe NAME --input IN.jsonl --field FIELD [--show-values]

Both use the same redactor as the recipe's ``redacted`` asset (recognizers, threshold, allow
list, operators). ``scan`` changes nothing and prints entity types, counts and character
offsets; found values are printed only with ``--show-values``. ``redact`` writes the output
file atomically (temporary file, then rename). ``FIELD`` may be a string field or ``messages``
(a list of ``{"role", "content"}``), whose contents are all processed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path


def register(subparsers) -> None:
    """Add the ``pii`` command group to the ``ftdata`` parser."""
    pii = subparsers.add_parser("pii", help="redact or scan a JSONL field with a recipe's settings")
    sub = pii.add_subparsers(dest="pii_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--recipe", required=True, help="recipe whose redact settings apply")
        p.add_argument("--input", required=True, type=Path, help="JSONL file")
        p.add_argument("--field", required=True, help="field to process (or 'messages')")

    red = sub.add_parser("redact", help="write a copy of the file with the field redacted")
    common(red)
    red.add_argument("--output", required=True, type=Path, help="JSONL file to write")
    red.set_defaults(func=_cmd_redact)

    scan = sub.add_parser("scan", help="report PII found in the field, changing nothing")
    common(scan)
    scan.add_argument(
        "--show-values", action="store_true", help="also print the found values (sensitive!)"
    )
    scan.set_defaults(func=_cmd_scan)


def _redactor(args):
    from ftdata_pipeline.config.loader import load_project
    from ftdata_pipeline.stages.pii.operators import PseudonymKeyMissing
    from ftdata_pipeline.stages.redact import get_redactor

    project = load_project(args.config_dir)  # a ConfigError is reported by cli.main
    if args.recipe not in project.recipes:
        raise _Fail(f"unknown recipe {args.recipe!r}; known: {sorted(project.recipes)}", 2)
    try:
        return get_redactor(project.recipes[args.recipe].redact)
    except PseudonymKeyMissing as exc:
        raise _Fail(str(exc), 2) from None


class _Fail(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _read(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:  # position only: the line may hold PII
                raise _Fail(f"{path}:{n}: not valid JSON (column {exc.colno})", 2) from None
            if not isinstance(row, dict):
                raise _Fail(f"{path}:{n}: expected a JSON object", 2)
            rows.append(row)
    return rows


def _texts(rows: list[dict], field: str) -> list[tuple[int, int | None, str]]:
    """(row index, turn or None, text) for every non-empty text of the field."""
    out = []
    for i, row in enumerate(rows):
        value = row.get(field)
        if isinstance(value, str) and value:
            out.append((i, None, value))
        elif field == "messages" and isinstance(value, list):
            for t, msg in enumerate(value):
                if isinstance(msg, dict) and isinstance(msg.get("content"), str) and msg["content"]:
                    out.append((i, t, msg["content"]))
    return out


def _run(func, args) -> int:
    try:
        return func(args)
    except _Fail as exc:
        print(str(exc), file=sys.stderr)
        return exc.code


def _cmd_redact(args) -> int:
    return _run(_redact, args)


def _cmd_scan(args) -> int:
    return _run(_scan, args)


def _redact(args) -> int:
    redactor = _redactor(args)
    rows = _read(args.input)
    items = _texts(rows, args.field)
    redacted, spans = redactor.redact_texts([t for _, _, t in items])
    for (i, turn, _), new in zip(items, redacted, strict=True):
        if turn is None:
            rows[i][args.field] = new
        else:
            rows[i][args.field][turn]["content"] = new
    out = args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    counts = Counter(s[0] for text_spans in spans for s in text_spans)
    print(f"redacted {sum(counts.values())} entities in {len(items)} texts of {len(rows)} lines "
          f"-> {out}")
    for entity, n in sorted(counts.items()):
        print(f"  {entity}: {n}")
    return 0


def _scan(args) -> int:
    redactor = _redactor(args)
    rows = _read(args.input)
    items = _texts(rows, args.field)
    spans = redactor.spans([t for _, _, t in items])
    counts: Counter[str] = Counter()
    for (i, turn, text), text_spans in zip(items, spans, strict=True):
        for entity, start, end, score in text_spans:
            counts[entity] += 1
            where = f"line {i + 1}" + (f" turn {turn}" if turn is not None else "")
            shown = f" {text[start:end]!r}" if args.show_values else ""
            print(f"{where}: {entity} [{start}:{end}] score {score:.2f}{shown}")
    print(f"scanned {len(items)} texts of {len(rows)} lines: {sum(counts.values())} entities")
    for entity, n in sorted(counts.items()):
        print(f"  {entity}: {n}")
    return 0
