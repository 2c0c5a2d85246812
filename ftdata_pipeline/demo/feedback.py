"""Demo human feedback and teacher outputs, derived deterministically from the other demo files.

- ``response_ratings.csv``: 1-5 ratings of the ranked responses (plain annotation CSV);
- ``argilla_rankings.json``: the same responses ranked again by three reviewers, as Argilla 2.x
  records exported with ``to_list(flatten=True)``;
- ``ticket_review_label_studio.json``: a Label Studio JSON export of the ticket review queue
  (three-way disagreements) answered by a lead reviewer;
- ``teacher_outputs.jsonl``: a teacher model's answers to the production search queries.

Each builder has its own seeded random stream, so adding one never changes the others' files.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta

from ftdata_pipeline.demo import phrases as P

RATERS = ("rater_1", "rater_2", "rater_3")
# Argilla user ids are UUIDs; fixed ones keep the export byte-identical.
ARGILLA_USERS = (
    "5f0c8a52-1f7e-4c59-9a55-2d9d3b1e7a01",
    "9b2e6c13-8d4a-4f0e-b6d7-0c3f1a2b4c02",
    "c7d4e2f9-3a6b-4d8c-8e1f-5a6b7c8d9e03",
)
REVIEWER = {"id": 7, "email": "lead.reviewer@acmecloud.example", "first_name": "Lead",
            "last_name": "Reviewer"}  # fmt: skip
TEACHERS = (("acme-teacher-xl", "2026-09"), ("acme-teacher-l", "2026-06"))
RATING_OF_RANK = {1: 5, 2: 4, 3: 2, 4: 1}


def build_ratings(seed: int, rankings: list[dict]) -> tuple[list[tuple], Counter]:
    """Two or three raters per response; ratings follow the rank with some noise."""
    r = random.Random(f"{seed}-ratings")
    rows, stats = [], Counter()
    for row in rankings:
        raters = RATERS if r.random() < 0.3 else tuple(sorted(r.sample(RATERS, 2)))
        for rater in raters:
            rating = RATING_OF_RANK[row["rank"]]
            if r.random() < 0.2:
                rating = min(5, max(1, rating + r.choice((-1, 1))))
                stats["noisy"] += 1
            status = "submitted"
            if r.random() < 0.02:
                status = "discarded"
                stats["discarded"] += 1
            rows.append((row["response_id"], rater, rating, status))
    stats["rows"] = len(rows)
    return rows, stats


def build_argilla_rankings(seed: int, rankings: list[dict]) -> tuple[list[dict], Counter]:
    """One Argilla record per prompt: the four responses ranked by each reviewer."""
    r = random.Random(f"{seed}-argilla")
    by_prompt: dict[str, list[dict]] = {}
    for row in rankings:
        by_prompt.setdefault(row["prompt_id"], []).append(row)
    records, stats = [], Counter()
    for n, (prompt_id, rows) in enumerate(sorted(by_prompt.items()), 1):
        values, users, statuses = [], [], []
        # Argilla's ranking options are fixed for the dataset (response_1..4); each record's
        # metadata says which response an option stands for.
        option = {x["response_id"]: f"response_{k}" for k, x in
                  enumerate(sorted(rows, key=lambda x: x["response_id"]), 1)}  # fmt: skip
        for user in sorted(r.sample(ARGILLA_USERS, r.choice((2, 3)))):
            order = sorted(rows, key=lambda x: (x["rank"], r.random()))
            if r.random() < 0.25:  # a reviewer swaps two neighbours
                i = r.randrange(3)
                order[i], order[i + 1] = order[i + 1], order[i]
                stats["swapped"] += 1
            status = "submitted"
            u = r.random()
            if u < 0.04:
                status = "discarded"
            elif u < 0.07:
                status = "draft"
            stats[status] += 1
            # the SDK reads a stored ranking back as the options in rank order
            values.append([option[x["response_id"]] for x in order])
            users.append(user)
            statuses.append(status)
        record = {
            "id": f"arg-{n:04d}",
            "status": "completed",
            "_server_id": f"00000000-0000-4000-8000-{n:012d}",
            "prompt": rows[0]["prompt"],
            **{f"response_{k}": x["response"] for k, x in
               enumerate(sorted(rows, key=lambda x: x["response_id"]), 1)},
            "source": "response_rankings",
            "source_key": prompt_id,
            **{f"{o}_key": rid for rid, o in sorted(option.items(), key=lambda x: x[1])},
            "ranking.responses": values,
            "ranking.responses.users": users,
            "ranking.responses.status": statuses,
        }  # fmt: skip
        records.append(record)
    stats["records"] = len(records)
    return records, stats


def build_review_export(
    seed: int, tickets: list[dict], labels: list[tuple[str, str, str]], anchor: datetime
) -> tuple[list[dict], Counter]:
    """Label Studio's JSON export after a lead answered the tickets annotators split on."""
    r = random.Random(f"{seed}-review")
    votes: dict[str, set[str]] = {}
    for ticket_id, _, label in labels:
        votes.setdefault(ticket_id, set()).add(label)
    by_id = {t["ticket_id"]: t for t in tickets}
    tasks, stats = [], Counter()
    for n, ticket_id in enumerate(sorted(t for t, v in votes.items() if len(v) == 3), 1):
        ticket = by_id[ticket_id]
        when = (anchor - timedelta(days=3, minutes=n)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        annotation_id = 1000 + 2 * n
        annotations = []
        if r.random() < 0.1:  # a second reviewer opened the task and skipped it
            annotations.append(_ls_annotation(annotation_id - 1, 9, n, [], when, cancelled=True))
            stats["cancelled"] += 1
        result = [{"value": {"choices": [ticket["category"]]}, "id": f"r{n:05d}",
                   "from_name": "label", "to_name": "text", "type": "choices",
                   "origin": "manual"}]  # fmt: skip
        annotations.append(_ls_annotation(annotation_id, REVIEWER, n, result, when))
        tasks.append({
            "id": n, "annotations": annotations, "file_upload": "label_studio_tasks.json",
            "drafts": [], "predictions": [],
            # the queue's tasks carry redacted text; the import reads only source and key
            "data": {"text": "(redacted ticket text from the review queue)", "source": "support_tickets",
                     "source_key": ticket_id, "reason": "needs_review"},
            "meta": {}, "created_at": when, "updated_at": when, "inner_id": n,
            "total_annotations": 1, "cancelled_annotations": len(annotations) - 1,
            "total_predictions": 0, "comment_count": 0, "unresolved_comment_count": 0,
            "last_comment_updated_at": None, "project": 4, "updated_by": 7,
            "comment_authors": [],
        })  # fmt: skip
        stats["answered"] += 1
    return tasks, stats


def _ls_annotation(ann_id, user, task, result, when, cancelled=False) -> dict:
    return {"id": ann_id, "completed_by": user, "result": result, "was_cancelled": cancelled,
            "ground_truth": False, "created_at": when, "updated_at": when, "draft_created_at": None,
            "lead_time": 12.5, "prediction": {}, "result_count": len(result), "unique_id": None,
            "import_id": None, "last_action": None, "bulk_created": False, "task": task,
            "project": 4, "updated_by": None, "parent_prediction": None,
            "parent_annotation": None, "last_created_by": None}  # fmt: skip


TEACHER_REFUSALS = ("I'm sorry, but I cannot help with that request.",
                    "As an AI language model, I cannot access your account.")  # fmt: skip
TEACHER_SHORT = ("OK.", "Yes.", "See settings.")


def build_teacher_outputs(seed: int, queries: list[dict], person) -> tuple[list[dict], Counter]:
    """The teacher's answer to every query, a second teacher on some; planted bad outputs."""
    r = random.Random(f"{seed}-teacher")
    rows, stats = [], Counter()
    for q in queries:
        area, step = P.RESPONSE_AREAS[q["category"]]
        teachers = TEACHERS if r.random() < 0.3 else TEACHERS[:1]
        for model, version in teachers:
            answer = (f"For \"{q['text']}\": open Settings > {area} in your Acme Cloud account. "
                      f"{step} If that does not solve it, reply with the exact error message.")  # fmt: skip
            score = round(r.uniform(0.55, 0.98), 3)
            u = r.random()
            if u < 0.03:
                answer, kind = r.choice(TEACHER_REFUSALS), "refusal"
            elif u < 0.05:
                answer, kind = "", "empty"
            elif u < 0.08:
                answer, kind = r.choice(TEACHER_SHORT), "short"
            elif u < 0.13:
                score, kind = round(r.uniform(0.05, 0.45), 3), "low_score"
            elif u < 0.18:
                # the teacher invents a greeting with a made-up customer name: redaction's job
                answer, kind = f"Hi {person()['name']}, {answer}", "with_name"
            else:
                kind = "good"
            stats[f"{model}_{kind}"] += 1
            rows.append({"query_id": q["query_id"], "teacher_model": model,
                         "teacher_version": version, "response": answer,
                         "judge_score": score})  # fmt: skip
    stats["rows"] = len(rows)
    return rows, stats
