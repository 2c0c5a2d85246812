"""``ftdata pii``: redact or scan one field of a JSONL file with a recipe's redaction settings.

    ftdata pii redact --recipe NAME --input IN.jsonl --field FIELD --output OUT.jsonl
    ftdata pii scan   --recipe NAME --input IN.jsonl --field FIELD [--show-values]
    ftdata pii evaluate --recipe NAME [--n 2000] [--neg 1000]

Both use the same redactor as the recipe's ``redacted`` asset (recognizers, threshold, allow
list, operators). ``scan`` changes nothing and prints entity types, counts and character
offsets; found values are printed only with ``--show-values``. ``redact`` writes the output
file atomically (temporary file, then rename). ``FIELD`` may be a string field or ``messages``
(a list of ``{"role", "content"}``), whose contents are all processed. ``evaluate`` measures
the recipe's detection on presidio-evaluator's generated sentences and on PII-free package
documentation, prints the figures, records them for the dataset card, and exits 1 when a
target is missed.
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

    ev = sub.add_parser(
        "evaluate",
        help="measure the recipe's detection on independent data and record the figures",
    )
    ev.add_argument("--recipe", required=True, help="recipe whose redact settings apply")
    ev.add_argument("--n", type=int, default=2000, help="presidio-evaluator sentences")
    ev.add_argument("--neg", type=int, default=1000, help="negative (PII-free) records")
    ev.add_argument("--no-record", action="store_true", help="print only; do not record")
    ev.set_defaults(func=_cmd_evaluate)


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
    """(row index, turn or None, text) for every non-empty text of the field.

    An object or list (in the field, or as a message's content) is handed to the redactor as
    its JSON text, which the redactor reads value by value (keys such as ``name`` tell what a
    value is); ``_put`` turns the redacted text back into the object, so nested values are
    redacted in place and never written out as a string.
    """
    out = []
    for i, row in enumerate(rows):
        value = row.get(field)
        if field == "messages" and isinstance(value, list):
            for t, msg in enumerate(value):
                if isinstance(msg, dict) and msg.get("content"):
                    text = _as_text(msg["content"])
                    if text:
                        out.append((i, t, text))
        else:
            text = _as_text(value)
            if text:
                out.append((i, None, text))
    return out


def _as_text(value) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, (dict, list)) and value:
        return json.dumps(value, ensure_ascii=False)
    return None


def _put(old, new: str):
    """The redacted value in the shape of the original (a string, or the object again)."""
    if isinstance(old, str):
        return new
    try:
        return json.loads(new)
    except ValueError:  # a replacement broke the JSON: redact the leaves one by one instead
        raise _Fail("internal error: redacted JSON value does not parse", 1) from None


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
            rows[i][args.field] = _put(rows[i][args.field], new)
        else:
            msg = rows[i][args.field][turn]
            msg["content"] = _put(msg["content"], new)
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


def _cmd_evaluate(args) -> int:
    return _run(_evaluate, args)


def _evaluate(args) -> int:
    from ftdata_pipeline.config.loader import load_project
    from ftdata_pipeline.stages.pii import independent_eval as ie
    from ftdata_pipeline.stages.pii.eval_record import record

    redactor = _redactor(args)
    cfg = load_project(args.config_dir).recipes[args.recipe].redact
    positives = ie.presidio_evaluator_examples(args.n)
    redacted, spans = redactor.redact_texts([ex.text for ex in positives])
    scores = ie.score(positives, spans, redacted)
    negatives = ie.negative_examples(args.neg)
    neg = ie.score_negative(negatives, redactor.spans(negatives))
    figures = {
        "presidio-evaluator": {
            "sentences": args.n,
            "pattern_recall": round(scores.recall(ie.PATTERN_ENTITIES), 3),
            "pattern_leak_free": round(scores.leak_free(ie.PATTERN_ENTITIES), 3),
            **{
                f"{t}_{m}": round(getattr(scores.per_type[t], m), 3)
                for t in ("PERSON", "STREET_ADDRESS")
                if t in scores.per_type and scores.per_type[t].gold
                for m in ("recall", "precision", "leak_free")
            },
        },
        "negative": {
            "records": args.neg,
            "words_kept": round(neg.words_kept_share, 3),
            "records_untouched": round(neg.untouched_share, 3),
        },
    }
    print(f"presidio-evaluator ({args.n} sentences):")
    for entity, s in scores.per_type.items():
        if s.gold:
            print(f"  {entity}: recall {s.recall:.3f} precision {s.precision:.3f} "
                  f"leak-free {s.leak_free:.3f} ({s.gold} values)")
    print(f"negative ({args.neg} records): words kept {neg.words_kept_share:.3f}, "
          f"records untouched {neg.untouched_share:.3f}")
    if not args.no_record:
        key = record(cfg, {"sets": figures, "measured_with": f"ftdata pii evaluate --n {args.n} "
                           f"--neg {args.neg}"})
        print(f"recorded for detection configuration {key}")
    fails = scores.failures() + neg.failures()
    for fail in fails:
        print(f"target missed: {fail}", file=sys.stderr)
    return 1 if fails else 0
