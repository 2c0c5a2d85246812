"""Exports of the RLHF steps: one directory per step in its trainer's format, disjoint prompts,
every file in the manifest and valid, byte-identical on rerun."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.formats.rlhf_steps import best_responses
from ftdata_pipeline.formats.writer import (
    read_manifest,
    validate_export_files,
    verify_exports,
    write_exports,
)
from ftdata_pipeline.records import conform
from ftdata_pipeline.stages.split import split
from ftdata_pipeline.stages.split.rlhf import STEP
from ftdata_pipeline_tests.stages.test_split_rlhf import pairs

PAIR_FORMATS = ["trl_preference", "openai_preference", "llamafactory_ranking"]


def _recipe(**rlhf) -> RecipeConfig:
    return RecipeConfig.model_validate({
        "name": "ranked", "kind": "preference", "sources": ["src"],
        "label": {"method": "rankings"}, "exports": {"formats": PAIR_FORMATS},
        "rlhf": {"sft": 0.2, "reward": 0.5, "rl": 0.3, **rlhf},
    })


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _split(recipe: RecipeConfig) -> pl.DataFrame:
    return split(pairs(300).lazy(), recipe).kept


def test_each_step_in_its_format_with_disjoint_prompts(tmp_path: Path) -> None:
    recipe = _recipe()
    df = _split(recipe)
    manifest = write_exports(df, recipe, tmp_path / "out", config_hash="h")
    out = tmp_path / "out"
    assert verify_exports(out) == []
    validity = validate_export_files(out)
    assert validity["invalid"] == 0 and validity["lines"] > 0
    paths = {f["path"] for f in manifest["files"]}
    for split_name in ("train", "validation", "test"):
        assert f"sft/trl_messages/{split_name}.jsonl" in paths
        assert f"rl/trl_prompt_only/{split_name}.jsonl" in paths
        for fmt in PAIR_FORMATS:
            assert f"reward/{fmt}/{split_name}.jsonl" in paths
    assert "reward/llamafactory_ranking/dataset_info.json" in paths
    assert {f["step"] for f in manifest["files"]} == {"sft", "reward", "rl"}
    assert all(f["path"].startswith(f["step"] + "/") for f in manifest["files"])

    prompts: dict[str, set[str]] = {"sft": set(), "reward": set(), "rl": set()}
    for split_name in ("train", "validation", "test"):
        sft = _lines(out / f"sft/trl_messages/{split_name}.jsonl")
        assert all([m["role"] for m in line["messages"]] == ["user", "assistant"] for line in sft)
        prompts["sft"] |= {line["messages"][0]["content"] for line in sft}
        reward = _lines(out / f"reward/trl_preference/{split_name}.jsonl")
        prompts["reward"] |= {line["prompt"] for line in reward}
        rl = _lines(out / f"rl/trl_prompt_only/{split_name}.jsonl")
        assert all(set(line) == {"prompt", "id", "source", "source_key"} for line in rl)
        assert all([m["role"] for m in line["prompt"]] == ["user"] for line in rl)
        prompts["rl"] |= {line["prompt"][0]["content"] for line in rl}
        # counts in the manifest are the lines on disk
        for step, rel in (("sft", "sft/trl_messages"), ("rl", "rl/trl_prompt_only"),
                          ("reward", "reward/trl_preference")):
            n = len(_lines(out / f"{rel}/{split_name}.jsonl"))
            assert manifest["rlhf"][step]["examples"][split_name] == n
    assert not prompts["sft"] & prompts["reward"]
    assert not prompts["sft"] & prompts["rl"]
    assert not prompts["reward"] & prompts["rl"]
    # one SFT / RL example per prompt of the step, every pair in the reward step
    for step in ("sft", "rl"):
        expected = df.filter(pl.col(STEP) == step)["prompt"].n_unique()
        assert len(prompts[step]) == expected == sum(manifest["rlhf"][step]["examples"].values())
    assert sum(manifest["splits"].values()) == df.height
    assert sum(manifest["rlhf"]["reward"]["examples"].values()) == df.filter(
        pl.col(STEP) == "reward").height


def test_rerun_is_byte_identical_and_formats_are_configurable(tmp_path: Path) -> None:
    recipe = _recipe(sft_formats=["openai_chat", "trl_prompt_completion"])
    df = _split(recipe)
    write_exports(df, recipe, tmp_path / "a", config_hash="h")
    write_exports(df.sample(fraction=1.0, shuffle=True, seed=2), recipe, tmp_path / "b",
                  config_hash="h")
    a, b = read_manifest(tmp_path / "a"), read_manifest(tmp_path / "b")
    assert a == b
    for f in a["files"]:
        a_bytes = (tmp_path / "a" / f["path"]).read_bytes()
        assert a_bytes == (tmp_path / "b" / f["path"]).read_bytes(), f["path"]
    assert a["rlhf"]["sft"]["formats"] == ["openai_chat", "trl_prompt_completion"]
    # openai_chat is strict: provenance in a sidecar, the line itself only messages
    line = _lines(tmp_path / "a/sft/openai_chat/train.jsonl")[0]
    assert set(line) == {"messages"}
    assert (tmp_path / "a/sft/openai_chat/train.provenance.jsonl").is_file()


def test_best_response_wins_most_pairs() -> None:
    # A > B, A > C, B > C, and a second prompt whose only pair is Y > X
    rows = [("1", "p", "A", "B"), ("2", "p", "A", "C"), ("3", "p", "B", "C"),
            ("4", "q", "Y", "X")]
    df = conform(pl.DataFrame(
        [{"record_id": r, "source": "s", "source_key": r, "conversation_id": c, "prompt": c,
          "chosen": ch, "rejected": rj, "split": "train"} for r, c, ch, rj in rows]))
    records, owners = best_responses(df)
    assert dict(zip(records["conversation_id"], records["response"])) == {"p": "A", "q": "Y"}
    assert records["record_id"].to_list() == ["1", "4"]
    assert sorted(owners.rows()) == [("1", "1"), ("1", "2"), ("1", "3"), ("4", "4")]


def test_without_rlhf_the_layout_is_unchanged(tmp_path: Path) -> None:
    recipe = RecipeConfig.model_validate({
        "name": "ranked", "kind": "preference", "sources": ["src"],
        "label": {"method": "rankings"}, "exports": {"formats": ["trl_preference"]}})
    df = split(pairs(60).lazy(), recipe).kept
    manifest = write_exports(df, recipe, tmp_path / "out", config_hash="h")
    assert "rlhf" not in manifest
    assert {f["path"].split("/")[0] for f in manifest["files"]} == {"trl_preference"}
    assert all("step" not in f for f in manifest["files"])


def test_step_files_load_with_hugging_face_datasets_as_trl_reads_them(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    recipe = _recipe()
    out = tmp_path / "out"
    write_exports(_split(recipe), recipe, out, config_hash="h")
    # the columns SFTTrainer, RewardTrainer/DPOTrainer and GRPOTrainer/PPO read
    expected = {"sft/trl_messages": {"messages"}, "reward/trl_preference":
                {"prompt", "chosen", "rejected"}, "rl/trl_prompt_only": {"prompt"}}
    for rel, columns in expected.items():
        loaded = datasets.load_dataset("json", data_files=str(out / rel / "train.jsonl"),
                                       split="train", cache_dir=str(tmp_path / "cache"))
        assert columns <= set(loaded.column_names), rel
        if rel.startswith("rl/"):  # the answer never reaches the RL step
            assert set(loaded.column_names) == {"prompt", "id", "source", "source_key"}
        assert loaded.num_rows == len(_lines(out / rel / "train.jsonl"))


def test_lineage_lines_point_at_each_step_file_line(tmp_path: Path) -> None:
    from ftdata_pipeline.governance.lineage import export_lineage

    recipe = _recipe()
    df = _split(recipe)
    write_exports(df, recipe, tmp_path / "out", config_hash="h")
    step_of = dict(zip(df["record_id"], df[STEP]))
    rows = list(export_lineage(df))
    assert len(rows) == df.height
    files = {"sft": "sft/trl_messages", "reward": "reward/trl_preference",
             "rl": "rl/trl_prompt_only"}
    cache: dict[str, list[dict]] = {}
    for row in rows:
        path = tmp_path / "out" / files[step_of[row["record_id"]]] / f"{row['split']}.jsonl"
        lines = cache.setdefault(str(path), _lines(path))
        line = lines[row["line"] - 1]
        if step_of[row["record_id"]] == "reward":
            assert line["id"] == row["record_id"]
        else:  # the example of the pair's prompt
            prompt = df.filter(pl.col("record_id") == row["record_id"])["prompt"][0]
            text = line["messages"][0]["content"] if "messages" in line else line["prompt"][0][
                "content"]
            assert text == prompt


def test_an_sft_example_breaking_its_trainer_rule_leaves_out_its_prompts_pairs(tmp_path):
    recipe = _recipe(sft_formats=["bedrock_conversation"])
    df = _split(recipe)
    several = pl.len().over("conversation_id") > 1
    victim = df.filter((pl.col(STEP) == "sft") & several)["conversation_id"][0]
    # Nova reserves "[EOS]": the prompt's best answer cannot be a Bedrock conversation turn
    best = f"answer 0 to {victim}"
    df = df.with_columns(
        pl.when(pl.col(c) == best).then(pl.lit(best + " [EOS]")).otherwise(pl.col(c)).alias(c)
        for c in ("chosen", "rejected"))
    out = tmp_path / "out"
    manifest = write_exports(df, recipe, out, config_hash="h")
    n_pairs = df.filter(pl.col("conversation_id") == victim).height
    assert manifest["rejected"] == {"records": n_pairs,
                                    "by_format": {"bedrock_conversation": n_pairs}}
    assert sum(manifest["splits"].values()) == df.height - n_pairs
    written = "".join(p.read_text() for p in (out / "sft").rglob("*.jsonl"))
    assert "[EOS]" not in written and victim not in written
    assert validate_export_files(out)["invalid"] == 0
