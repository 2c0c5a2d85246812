"""The demo's feedback recipes end to end: reward model + DPO pairs, KTO, distillation and the
ticket review loop, checked against what each trainer reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftdata_pipeline.orchestration.storage import PipelineStorage

pytestmark = pytest.mark.integration


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _is_messages(value, roles) -> bool:
    return (
        isinstance(value, list)
        and all(set(m) == {"role", "content"} and isinstance(m["content"], str) for m in value)
        and [m["role"] for m in value if m["role"] != "system"][-1:] == roles[-1:]
    )


def test_reward_dpo_pairs_for_every_trainer(demo_run):
    home, _ = demo_run
    # the recipe sets the RLHF steps: its pairs are the reward step's
    out = PipelineStorage(home=str(home)).exports_dir("response_reward_dpo") / "reward"
    stats = json.loads((home / "stats" / "response_reward_dpo" / "labeled.json").read_text())
    assert stats["stats"]["pairs"] > 500 and stats["stats"]["tied_pairs_dropped"] > 0
    assert stats["stats"]["annotations_excluded_by_status"]["discarded"] > 0
    for row in _lines(out / "trl_preference" / "train.jsonl"):
        assert isinstance(row["prompt"], str) and row["chosen"] != row["rejected"]
    for row in _lines(out / "trl_preference_implicit" / "train.jsonl"):
        assert _is_messages(row["chosen"], ["assistant"]) and _is_messages(row["rejected"], ["assistant"])
        assert row["chosen"][:-1] == row["rejected"][:-1]  # the shared (implicit) prompt
    for row in _lines(out / "vertex_preference" / "train.jsonl"):
        assert set(row) <= {"system_instruction", "contents", "completions"}
        assert row["contents"][-1]["role"] == "user"
        assert sorted(c["score"] for c in row["completions"]) == [0, 1]
        assert all(c["completion"]["role"] == "model" for c in row["completions"])
    info = json.loads((out / "llamafactory_ranking" / "dataset_info.json").read_text())
    for entry in info.values():
        assert entry["ranking"] is True
        rows = _lines(out / "llamafactory_ranking" / entry["file_name"])
        assert rows and all(set(entry["columns"].values()) - {"system"} <= set(r) for r in rows)
    # all pairs of one prompt in one split
    splits: dict[str, set[str]] = {}
    for split in ("train", "validation", "test"):
        for prov in _lines(out / "trl_preference" / f"{split}.jsonl"):
            splits.setdefault(prov["source_key"].split("-R")[0], set()).add(split)
    assert all(len(s) == 1 for s in splits.values())


def test_rlhf_steps_exported_on_disjoint_prompts(demo_run):
    home, result = demo_run
    out = PipelineStorage(home=str(home)).exports_dir("response_reward_dpo")
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["rlhf"]) == {"sft", "reward", "rl"}
    prompts: dict[str, set[str]] = {}
    for step, rel, prompt_of in (
        ("sft", "trl_messages", lambda r: r["messages"][-2]["content"]),
        ("reward", "trl_preference", lambda r: r["prompt"]),
        ("rl", "trl_prompt_only", lambda r: r["prompt"][-1]["content"]),
    ):
        files = [f for f in manifest["files"] if f["path"].startswith(f"{step}/{rel}/")]
        assert files and all(f["step"] == step for f in files)
        rows = [r for f in files for r in _lines(out / f["path"])]
        assert len(rows) == sum(manifest["rlhf"][step]["examples"].values())
        prompts[step] = {prompt_of(r) for r in rows}
        if step == "sft":
            assert all(_is_messages(r["messages"], ["assistant"]) for r in rows)
        if step == "rl":
            assert all(_is_messages(r["prompt"], ["user"]) for r in rows)
    assert not prompts["sft"] & prompts["reward"]
    assert not prompts["sft"] & prompts["rl"]
    assert not prompts["reward"] & prompts["rl"]
    # one SFT and one RL example per prompt of the step; shares near the configured 20/60/20
    total = sum(len(p) for p in prompts.values())
    assert total > 200
    for step, share in (("sft", 0.2), ("reward", 0.6), ("rl", 0.2)):
        assert abs(len(prompts[step]) / total - share) < 0.05, step
    # the split asset's blocking check passed on the demo
    [check] = [e.asset_check_evaluation_data for e in result.all_events
               if e.event_type_value == "ASSET_CHECK_EVALUATION"
               and e.asset_check_evaluation_data.check_name == "rlhf_steps_disjoint"]
    assert check.passed
    card = (home / "cards" / "response_reward_dpo" / "README.md").read_text()
    assert "### RLHF steps" in card and "| sft |" in card


def test_kto_lines_have_desirable_and_undesirable_examples(demo_run):
    home, _ = demo_run
    out = PipelineStorage(home=str(home)).exports_dir("response_kto")
    rows = _lines(out / "trl_kto" / "train.jsonl")
    assert {r["label"] for r in rows} == {True, False}
    for row in rows:
        assert _is_messages(row["prompt"], ["user"])
        assert [m["role"] for m in row["completion"]] == ["assistant"]
    prompts = _lines(out / "trl_prompt_only" / "train.jsonl")
    assert len(prompts) == len(rows) and all(_is_messages(p["prompt"], ["user"]) for p in prompts)


def test_distillation_examples_name_their_teacher_and_hold_no_names(demo_run):
    home, _ = demo_run
    out = PipelineStorage(home=str(home)).exports_dir("query_distillation")
    rows = _lines(out / "trl_messages" / "train.jsonl")
    assert rows and {r["teacher"] for r in rows} <= {"acme-teacher-xl@2026-09",
                                                       "acme-teacher-l@2026-06"}
    assert all(_is_messages(r["messages"], ["assistant"]) for r in rows)
    answers = [r["messages"][-1]["content"] for r in rows]
    # the teacher greeted made-up customers by name: redacted before export
    greetings = [a for a in answers if a.startswith("Hi ")]
    assert greetings and all("<PERSON>" in a.split(",")[0] for a in greetings)
    stats = json.loads((home / "stats" / "query_distillation" / "labeled.json").read_text())
    assert set(stats["drops"]) >= {"teacher_refusal", "teacher_low_score"}
    card = (home / "cards" / "query_distillation" / "README.md").read_text()
    assert "## Teacher models" in card and "acme-teacher-xl@2026-09" in card


def test_ticket_review_loop_closed_by_the_label_studio_export(demo_run):
    home, _ = demo_run
    stats = json.loads((home / "stats" / "ticket_intents" / "labeled.json").read_text())["stats"]
    assert stats["review_answers_used"] > 0
    assert stats["labeled_by"]["review"] == stats["review_answers_used"]
    assert stats["review_queue"] == 0  # every split item was answered
    assert stats["annotations_excluded_by_status"] == {"cancelled": 6}
    assert stats["agreement"]["krippendorff_alpha"]["nominal"] > 0.7
    tasks = json.loads((home / "review" / "ticket_intents" / "label_studio_tasks.json").read_text())
    assert tasks == []
