"""The review queue: records whose labels people should look at again, as Label Studio tasks.

Records go to the queue instead of into training when their annotators disagree (top label's
share under ``label.agreement.review_below``, or a tie) or when exact/near duplicates end up
with different labels. They are rejected with a review rule (so nothing is lost) and written as
a Label Studio import file with the annotators' majority as a pre-annotation. Reviewers'
answers, exported from Label Studio and declared as ``label.review_answers``, decide those
records on the next run, and they leave the queue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import polars as pl

NEEDS_REVIEW = "needs_review"
DUPLICATE_CONFLICT = "duplicate_label_conflict"
REVIEW_RULES = (NEEDS_REVIEW, DUPLICATE_CONFLICT)

TASKS_FILE = "label_studio_tasks.json"
CONFIG_FILE = "label_studio_config.xml"
# Names of the Label Studio controls; the import of reviewers' answers reads these.
CHOICES_NAME = "label"
TEXT_NAME = "text"


def flag_duplicate_conflicts(
    frame: pl.DataFrame, *, label: str, rule: str, detail: str, via: str
) -> pl.DataFrame:
    """Send records to review whose exact (content_hash) or near (dup_cluster_id) duplicates
    were labelled differently. Reviewed records are final and never flagged."""
    candidate = pl.col(rule).is_null() & pl.col(label).is_not_null() & (pl.col(via) != "review")
    conflict = pl.lit(False)
    for key in ("content_hash", "dup_cluster_id"):
        labels = pl.when(candidate).then(pl.col(label))
        conflict = conflict | (
            pl.col(key).is_not_null() & (labels.drop_nulls().n_unique().over(key) > 1)
        )
    flagged = candidate & conflict
    return frame.with_columns(
        pl.when(flagged).then(pl.lit(DUPLICATE_CONFLICT)).otherwise(pl.col(rule)).alias(rule),
        pl.when(flagged)
        .then(pl.lit("an exact or near duplicate of this record has a different label"))
        .otherwise(pl.col(detail))
        .alias(detail),
    )


def review_rows(rejected: pl.DataFrame) -> pl.DataFrame:
    """The rejected rows that make up the review queue."""
    if rejected.is_empty() or "rule" not in rejected.columns:
        return rejected.head(0)
    return rejected.filter(pl.col("rule").is_in(list(REVIEW_RULES))).sort("record_id")


def review_tasks(rows: pl.DataFrame) -> list[dict[str, Any]]:
    """Label Studio tasks (import JSON) for the review queue, the majority as a prediction.

    ``data`` carries the record's source and source_key, so the answers come back joined on
    (source, key) through the Label Studio import.
    """
    tasks = []
    for row in rows.sort("record_id").iter_rows(named=True):
        task: dict[str, Any] = {
            "data": {
                TEXT_NAME: row.get("text") or row.get("prompt") or "",
                "source": row["source"],
                "source_key": row["source_key"],
                "record_id": row["record_id"],
                "reason": row["rule"],
                "detail": row.get("detail"),
            }
        }
        if row.get("label"):
            task["predictions"] = [
                {
                    "model_version": "annotator_majority",
                    "score": row.get("score"),
                    "result": [
                        {
                            "from_name": CHOICES_NAME,
                            "to_name": TEXT_NAME,
                            "type": "choices",
                            "value": {"choices": [row["label"]]},
                        }
                    ],
                }
            ]
        tasks.append(task)
    return tasks


def label_config(labels: list[str], descriptions: dict[str, str] | None = None) -> str:
    """Label Studio labeling config: the text and one single-choice control of the label set."""
    descriptions = descriptions or {}
    choices = "\n".join(
        f"    <Choice value={quoteattr(lab)}"
        + (f" hint={quoteattr(descriptions[lab])}" if descriptions.get(lab) else "")
        + "/>"
        for lab in labels
    )
    return (
        "<View>\n"
        f'  <Text name="{TEXT_NAME}" value="${TEXT_NAME}"/>\n'
        f'  <Choices name="{CHOICES_NAME}" toName="{TEXT_NAME}" choice="single" '
        'showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def write_review_queue(
    rejected: pl.DataFrame,
    out_dir: Path,
    labels: list[str],
    descriptions: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Write the queue's tasks and labeling config (always, so an empty queue replaces an old
    one); return counts for metadata. Writes go to a temporary file renamed into place."""
    rows = review_rows(rejected)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = review_tasks(rows)
    for name, text in (
        (TASKS_FILE, json.dumps(tasks, ensure_ascii=False, indent=1, sort_keys=True) + "\n"),
        (CONFIG_FILE, label_config(labels, descriptions)),
    ):
        tmp = out_dir / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out_dir / name)
    reasons = rows.group_by("rule").len().sort("rule") if rows.height else rows.head(0)
    return {
        "review_queue": len(tasks),
        "review_reasons": dict(zip(reasons["rule"].to_list(), reasons["len"].to_list(),
                                   strict=True)) if rows.height else {},  # fmt: skip
        "review_tasks_file": str(out_dir / TASKS_FILE),
    }
