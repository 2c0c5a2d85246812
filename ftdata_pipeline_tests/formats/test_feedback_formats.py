"""Feedback export formats: exact lines, and the LLaMA-Factory dataset_info.json in the manifest."""

from __future__ import annotations

import json

import polars as pl
import pytest

from ftdata_pipeline.config.models import FORMATS, RecipeConfig
from ftdata_pipeline.formats import FORMATS_BY_NAME
from ftdata_pipeline.formats.writer import verify_exports, write_exports
from ftdata_pipeline.records import conform

PAIR = {"record_id": "r1", "prompt": "Q?", "chosen": "Good", "rejected": "Bad", "system": None}
PAIR_SYS = {**PAIR, "system": "Be brief."}
CHAT = {
    "record_id": "r2", "system": "Be brief.", "label": "Thumbs_Up",
    "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
}  # fmt: skip

CASES = [
    ("trl_preference_implicit", PAIR, {
        "chosen": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "Good"}],
        "rejected": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "Bad"}],
    }),
    ("trl_kto", CHAT, {
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "completion": [{"role": "assistant", "content": "Hello!"}],
        "label": True,
    }),
    ("trl_kto", {**CHAT, "label": "undesirable"}, {
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "completion": [{"role": "assistant", "content": "Hello!"}],
        "label": False,
    }),
    ("trl_prompt_only", CHAT, {
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    }),
    ("vertex_preference", PAIR_SYS, {
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Q?"}]}],
        "completions": [
            {"score": 1, "completion": {"role": "model", "parts": [{"text": "Good"}]}},
            {"score": 0, "completion": {"role": "model", "parts": [{"text": "Bad"}]}},
        ],
    }),
    ("llamafactory_ranking", PAIR_SYS, {
        "instruction": "Q?", "input": "", "chosen": "Good", "rejected": "Bad",
        "system": "Be brief.",
    }),
]  # fmt: skip


@pytest.mark.parametrize(("name", "record", "expected"), CASES)
def test_exact_lines(name, record, expected):
    assert FORMATS_BY_NAME[name].to_example(record) == expected


def test_kto_needs_a_desirability_label():
    with pytest.raises(ValueError, match="r2.*'billing'.*desirable"):
        FORMATS_BY_NAME["trl_kto"].to_example({**CHAT, "label": "billing"})


def test_config_lists_every_registered_format():
    assert set(FORMATS) == set(FORMATS_BY_NAME)


def test_vertex_completions_have_one_preferred_and_one_dispreferred():
    example = FORMATS_BY_NAME["vertex_preference"].to_example(PAIR)
    assert sorted(c["score"] for c in example["completions"]) == [0, 1]
    assert example["contents"][-1]["role"] == "user"  # must end with a user turn
    assert "system_instruction" not in example


def test_llamafactory_ranking_writes_dataset_info_in_the_manifest(tmp_path):
    recipe = RecipeConfig.model_validate(
        {"name": "prefs", "kind": "preference", "sources": ["s"],
         "exports": {"formats": ["llamafactory_ranking", "vertex_preference"]},
         "label": {"method": "source"}}  # fmt: skip
    )
    frame = conform(pl.DataFrame({
        "record_id": ["a", "b", "c"], "source": ["s"] * 3, "source_key": ["1", "2", "3"],
        "prompt": ["q1", "q2", "q3"], "chosen": ["g1", "g2", "g3"], "rejected": ["b1", "b2", "b3"],
        "split": ["train", "train", "test"]}))  # fmt: skip
    manifest = write_exports(frame, recipe, tmp_path / "out", config_hash="x")
    info_path = tmp_path / "out" / "llamafactory_ranking" / "dataset_info.json"
    info = json.loads(info_path.read_text())
    assert info == {
        f"prefs_{split}": {"file_name": f"{split}.jsonl", "ranking": True, "columns": {
            "prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected",
            "system": "system"}}
        for split in ("train", "test")
    }  # fmt: skip
    # every file the entry names exists and has the columns it maps
    for entry in info.values():
        lines = (info_path.parent / entry["file_name"]).read_text().splitlines()
        for line in lines:
            row = json.loads(line)
            assert {"instruction", "input", "chosen", "rejected"} <= set(row)
    assert "llamafactory_ranking/dataset_info.json" in {f["path"] for f in manifest["files"]}
    assert verify_exports(tmp_path / "out") == []


def test_dataset_info_is_staged_checked_and_published_with_the_split_files(tmp_path):
    """The extra file goes through the staged writer: nothing at the published path before
    publish(), the format_valid re-read skips it (no example lines), lineage ignores it."""
    from ftdata_pipeline.formats.writer import stage_exports, validate_export_files
    from ftdata_pipeline.governance.reconcile import lineage_from_disk

    recipe = RecipeConfig.model_validate(
        {"name": "prefs", "kind": "preference", "sources": ["s"],
         "exports": {"formats": ["llamafactory_ranking"]}, "label": {"method": "source"}}
    )
    frame = conform(pl.DataFrame({
        "record_id": ["a", "b"], "source": ["s"] * 2, "source_key": ["1", "2"],
        "prompt": ["q1", "q2"], "chosen": ["g1", "g2"], "rejected": ["b1", "b2"],
        "split": ["train", "test"]}))  # fmt: skip
    out = tmp_path / "prefs"
    staged = stage_exports(frame, recipe, out, config_hash="x")
    try:
        assert (staged.staging / "llamafactory_ranking" / "dataset_info.json").is_file()
        assert not out.exists()
        checked = validate_export_files(staged.staging)
        assert checked == {"lines": 2, "invalid": 0, "problems": []}
        staged.publish()
    except BaseException:
        staged.discard()
        raise
    assert json.loads((out / "llamafactory_ranking" / "dataset_info.json").read_text())
    rows = lineage_from_disk(out, json.loads((out / "manifest.json").read_text()))
    assert sorted((r["record_id"], r["split"]) for r in rows) == [("a", "train"), ("b", "test")]
