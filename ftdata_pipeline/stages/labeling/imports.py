"""Annotation tools' own export files as annotation sources: Label Studio and Argilla 2.x.

Both become rows of the annotation schema (``records.ANNOTATION_SCHEMA``): one row per answer
with the annotated record's (item_source, item_key), the annotator, and a label, rating or rank.

- Label Studio JSON export (a list of tasks): ``data`` holds the record's source and key (the
  review queue's tasks carry them); each of ``annotations`` is one annotator's answer
  (``completed_by``), its ``result`` entries by control type: ``choices`` -> labels, ``rating``
  -> rating, ``pairwise`` (``selected`` left/right) -> ranks 1/2 of the two responses whose keys
  the task data holds, ``ranker`` -> ranks in list order of the response ids. Annotations with
  ``was_cancelled`` become ``status = cancelled`` rows and the task's ``drafts`` (unsubmitted
  work) ``status = draft`` rows, both excluded and counted by the stage. Predictions are never
  answers and are ignored.
- Label Studio JSON_MIN export (one flat row per submitted annotation): the task data at the top
  level with the task ``id``, ``annotator`` and ``annotation_id``, and each control's answer under
  its name, shortened (a single choice as a bare string, other answers as a list of their
  ``value`` dicts). Data keys and control names share the row, so ``tool.questions`` must name
  the controls to read. Skipped annotations and drafts are not in this export at all, so they
  cannot be counted: prefer the full JSON export.
- Argilla 2.x records exported with ``to_list(flatten=True)`` (JSON list or JSONL, also what
  ``to_datasets()`` holds): fields and metadata at the top level, ``<question>.responses``
  (values), ``.responses.users`` and ``.responses.status`` (submitted | discarded | draft) side
  by side. A text value is a label, a number a rating, a list of ``{value, rank}`` (the server's
  form) or a list of options in a question named in ``tool.rankings`` (the SDK's form: options
  in rank order) a ranking. Ranking options are fixed per Argilla dataset, so each option is
  turned into a response key through the record's ``tool.ranking_option_key`` field when it has
  one. A response without a status is a draft (the SDK stores it so). The nested records file
  of ``to_json``/``to_disk`` carries no response status and is refused with a clear error.

Errors name the file and the task or record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from ftdata_pipeline.config.models import SourceConfig, ToolExportConfig
from ftdata_pipeline.records import ANNOTATION_SCHEMA, conform


class AnnotationImportError(ValueError):
    """An annotation tool's export that cannot be read; the message names file and record."""


def load_tool_export(name: str, cfg: SourceConfig, path: Path) -> pl.DataFrame:
    """Read ``path`` (format ``label_studio`` or ``argilla``) into annotation rows."""
    items = _read_items(name, path)
    tool = cfg.tool or ToolExportConfig()
    parse = _label_studio_rows if cfg.format == "label_studio" else _argilla_rows
    rows: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise AnnotationImportError(f"source {name!r}: {path}: item {i} is not a JSON object")
        rows.extend(parse(name, path, i, item, tool))
    frame = pl.DataFrame(rows, schema=ANNOTATION_SCHEMA) if rows else pl.DataFrame(
        schema=ANNOTATION_SCHEMA
    )
    if cfg.annotates:
        frame = frame.with_columns(pl.col("item_source").fill_null(cfg.annotates))
    return conform(frame.with_columns(pl.lit(name).alias("source")), ANNOTATION_SCHEMA).sort(
        "source_key"
    )


def _read_items(name: str, path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError:
                raise AnnotationImportError(
                    f"source {name!r}: {path}: line {n} is not valid JSON"
                ) from None
        return items
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise AnnotationImportError(f"source {name!r}: {path}: expected a JSON list of tasks")
    return data


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _record_ref(name: str, path: Path, where: str, data: dict, tool: ToolExportConfig):
    key = data.get(tool.item_key_field)
    if key is None:
        raise AnnotationImportError(
            f"source {name!r}: {path}: {where} has no {tool.item_key_field!r} naming the record"
        )
    return _str(data.get(tool.item_source_field)), str(key)


def _row(key: str, item_source, item_key, annotator, status, **answer) -> dict[str, Any]:
    return {
        "source": None,
        "source_key": key,
        "item_key": item_key,
        "annotator": annotator,
        "label": answer.get("label"),
        "item_source": item_source,
        "rating": answer.get("rating"),
        "rank": answer.get("rank"),
        "status": status,
        "judgement": answer.get("judgement"),
    }


# --------------------------------------------------------------------------------------------
# Label Studio
# --------------------------------------------------------------------------------------------


def _annotator(completed_by: Any) -> str | None:
    """``completed_by`` is a user id, or a user object in some exports."""
    if isinstance(completed_by, dict):
        return _str(completed_by.get("email") or completed_by.get("id"))
    return _str(completed_by)


def _label_studio_rows(
    name: str, path: Path, i: int, task: dict, tool: ToolExportConfig
) -> list[dict[str, Any]]:
    if "annotations" not in task:
        if "annotation_id" in task:
            return _label_studio_min_rows(name, path, i, task, tool)
        raise AnnotationImportError(
            f"source {name!r}: {path}: item {i} (task {task.get('id', '?')}) has neither "
            "'annotations' (a JSON export task) nor 'annotation_id' (a JSON_MIN row); an import "
            "file of tasks is not an export of answers"
        )
    data = task.get("data") or {}
    task_id = task.get("id", i)
    where = f"task {task_id}"
    rows: list[dict[str, Any]] = []
    for a, ann in enumerate(task.get("annotations") or []):
        annotator = _annotator(ann.get("completed_by"))
        status = "cancelled" if ann.get("was_cancelled") else "submitted"
        base = f"{task_id}:{ann.get('id', a)}"
        if status == "cancelled":
            # One row so the stage can count it; its answers are never used.
            source, key = _record_ref(name, path, where, data, tool)
            rows.append(_row(f"{base}:cancelled", source, key, annotator, status))
            continue
        for r, result in enumerate(ann.get("result") or []):
            if tool.questions and result.get("from_name") not in tool.questions:
                continue
            rows.extend(
                _label_studio_result(name, path, where, data, tool, result, f"{base}:{r}",
                                     annotator)  # fmt: skip
            )
    for d, draft in enumerate(task.get("drafts") or []):
        # Work an annotator saved but never submitted: one row so the stage can count it.
        source, key = _record_ref(name, path, where, data, tool)
        rows.append(_row(f"{task_id}:draft:{draft.get('id', d)}", source, key,
                         _annotator(draft.get("user")), "draft"))  # fmt: skip
    return rows


# The JSON_MIN export keeps each result's ``value`` without its ``type``; the value's own key
# tells the control (a single choice is shortened to the bare label).
_MIN_KINDS = {"choices": "choices", "rating": "rating", "selected": "pairwise", "ranker": "ranker"}


def _label_studio_min_rows(
    name: str, path: Path, i: int, row: dict, tool: ToolExportConfig
) -> list[dict[str, Any]]:
    task_id, ann_id = row.get("id", i), row.get("annotation_id", i)
    where = f"task {task_id} annotation {ann_id}"
    if not tool.questions:
        raise AnnotationImportError(
            f"source {name!r}: {path}: {where}: a JSON_MIN export mixes task data and answers "
            "in one row; name the controls to read in tool.questions"
        )
    annotator = _str(row.get("annotator"))
    rows: list[dict[str, Any]] = []
    for question in tool.questions:
        if question not in row:
            continue
        answer = row[question]
        values = answer if isinstance(answer, list) else [answer]
        for r, value in enumerate(values):
            if isinstance(value, str):
                value = {"choices": [value]}
            kinds = [_MIN_KINDS[k] for k in value if k in _MIN_KINDS] if isinstance(
                value, dict) else []  # fmt: skip
            if len(kinds) != 1:
                raise AnnotationImportError(
                    f"source {name!r}: {path}: {where}: control {question!r} answer {value!r} "
                    "is not a choice, rating, pairwise or ranker value"
                )
            result = {"type": kinds[0], "from_name": question, "value": value}
            rows.extend(
                _label_studio_result(name, path, where, row, tool, result,
                                     f"{task_id}:{ann_id}:{question}:{r}", annotator)  # fmt: skip
            )
    return rows


def _label_studio_result(name, path, where, data, tool, result, key, annotator):
    kind = result.get("type")
    value = result.get("value") or {}
    if kind == "choices":
        source, item = _record_ref(name, path, where, data, tool)
        return [
            _row(f"{key}:{c}", source, item, annotator, "submitted", label=str(choice))
            for c, choice in enumerate(value.get("choices") or [])
        ]
    if kind == "rating":
        source, item = _record_ref(name, path, where, data, tool)
        return [_row(key, source, item, annotator, "submitted", rating=float(value["rating"]))]
    if kind == "pairwise":
        selected = value.get("selected")
        if selected not in ("left", "right"):
            raise AnnotationImportError(
                f"source {name!r}: {path}: {where}: pairwise 'selected' must be left or right"
            )
        sides = {"left": tool.left_key_field, "right": tool.right_key_field}
        missing = [f for f in sides.values() if data.get(f) is None]
        if missing:
            raise AnnotationImportError(
                f"source {name!r}: {path}: {where}: pairwise task data lacks {missing}"
            )
        source = _str(data.get(tool.item_source_field))
        return [
            _row(f"{key}:{side}", source, str(data[field]), annotator, "submitted",
                 rank=1 if side == selected else 2, judgement=key)  # fmt: skip
            for side, field in sides.items()
        ]
    if kind == "ranker":
        ranked = value.get("ranker") or {}
        lists = [v for k, v in ranked.items() if k != "_"]
        if len(lists) != 1 and result.get("from_name") not in ranked:
            raise AnnotationImportError(
                f"source {name!r}: {path}: {where}: ranker result with several buckets "
                f"{sorted(ranked)}; only a plain ranked list can be read"
            )
        order = ranked.get(result.get("from_name")) or lists[0]
        source = _str(data.get(tool.item_source_field))
        return [
            _row(f"{key}:{n}", source, str(item), annotator, "submitted", rank=n + 1,
                 judgement=key)
            for n, item in enumerate(order)
        ]
    if tool.questions:  # a control named to be read whose answer this import cannot read
        raise AnnotationImportError(
            f"source {name!r}: {path}: {where}: control {result.get('from_name')!r} has "
            f"result type {kind!r}; only choices, rating, pairwise and ranker can be read"
        )
    return []  # other controls (text areas, regions) carry no label, rating or ranking


# --------------------------------------------------------------------------------------------
# Argilla 2.x
# --------------------------------------------------------------------------------------------

RESPONSES = ".responses"


def _argilla_rows(
    name: str, path: Path, i: int, record: dict, tool: ToolExportConfig
) -> list[dict[str, Any]]:
    record_id = record.get("id") or record.get("_server_id") or i
    where = f"record {record_id}"
    if isinstance(record.get("responses"), dict):
        raise AnnotationImportError(
            f"source {name!r}: {path}: {where}: nested records (to_json / to_disk) do not say "
            "whether a response was submitted, discarded or a draft; export the records with "
            "to_list(flatten=True) or to_datasets()"
        )
    def option_key(option: Any, strict: bool = False) -> str | None:
        """The response key a ranking option stands for in this record (else the option
        itself, or None when ``strict``)."""
        field = tool.ranking_option_key.replace("{option}", str(option))
        if record.get(field) is not None:
            return str(record[field])
        return None if strict else str(option)

    rows: list[dict[str, Any]] = []
    for column in sorted(record):
        if not column.endswith(RESPONSES):
            continue
        question = column[: -len(RESPONSES)]
        if tool.questions and question not in tool.questions:
            continue
        values = record.get(column) or []
        users = record.get(f"{column}.users") or [None] * len(values)
        statuses = record.get(f"{column}.status") or ["submitted"] * len(values)
        if not (len(values) == len(users) == len(statuses)):
            raise AnnotationImportError(
                f"source {name!r}: {path}: {where}: {question!r} has {len(values)} responses "
                f"but {len(users)} users and {len(statuses)} statuses"
            )
        source, item = _record_ref(name, path, where, record, tool)
        for n, (value, user, status) in enumerate(zip(values, users, statuses, strict=True)):
            key = f"{record_id}:{question}:{n}"
            try:
                rows.extend(
                    _argilla_value(key, source, item, _str(user), (status or "draft").lower(),
                                   value, question in tool.rankings, option_key)  # fmt: skip
                )
            except AnnotationImportError as e:
                raise AnnotationImportError(f"source {name!r}: {path}: {where}: {e}") from None
    return rows


def _argilla_value(key, source, item, user, status, value, ranking: bool, option_key):
    if isinstance(value, bool) or value is None:
        return [_row(key, source, item, user, status, label=_str(value))]
    if isinstance(value, int | float):
        return [_row(key, source, item, user, status, rating=float(value))]
    if isinstance(value, str):
        return [_row(key, source, item, user, status, label=value)]
    if isinstance(value, list) and value and isinstance(value[0], dict):
        # ranking as the server stores it: [{"value": option, "rank": n}]
        return [
            _row(f"{key}:{n}", source, option_key(v["value"]), user, status,
                 rank=int(v["rank"]), judgement=key)  # fmt: skip
            for n, v in enumerate(value)
        ]
    if isinstance(value, list) and ranking:
        return [
            _row(f"{key}:{n}", source, option_key(v), user, status, rank=n + 1, judgement=key)
            for n, v in enumerate(value)
        ]
    if isinstance(value, list) and value and all(option_key(v, True) for v in value):
        # The SDK writes a ranking as a plain list of options, like a multi-label answer; when
        # every option stands for a response of the record it is a ranking read as labels.
        raise AnnotationImportError(
            f"{key}: the answer {value!r} lists ranking options of this record's responses; "
            "name the question in tool.rankings"
        )
    if isinstance(value, list):  # multi-label
        return [_row(f"{key}:{n}", source, item, user, status, label=str(v))
                for n, v in enumerate(value)]  # fmt: skip
    return []
