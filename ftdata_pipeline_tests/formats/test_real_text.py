"""Exports of text the project did not write: the long descriptions of the installed packages
(real Markdown with code, read offline from their metadata) as chat answers, in five formats.

Every record is either written in every format, with every line valid for its trainer, or
rejected with a reason that names what is in its text (here: Amazon Nova's reserved words,
which real documentation contains, e.g. a transcript line starting with "User:")."""

from __future__ import annotations

import importlib.metadata as md

import polars as pl

from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.formats.validation import NOVA_RESERVED
from ftdata_pipeline.formats.writer import stage_exports, validate_export_files
from ftdata_pipeline.records import MESSAGE, conform


def _descriptions() -> list[tuple[str, str]]:
    found = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        body = dist.metadata.get_payload() or dist.metadata.get("Description") or ""
        if name and body.strip():
            found[name] = body
    return sorted(found.items())


def test_installed_package_descriptions_export_or_are_rejected_with_their_reason(tmp_path):
    docs = _descriptions()
    assert len(docs) > 50
    df = conform(pl.DataFrame(
        {"record_id": [f"p{i:04d}" for i in range(len(docs))], "source": ["pkgs"] * len(docs),
         "source_key": [n for n, _ in docs],
         "messages": [[{"role": "user", "content": f"What is {n}?"},
                       {"role": "assistant", "content": body}] for n, body in docs],
         "split": ["train"] * len(docs)},
        schema_overrides={"messages": pl.List(MESSAGE)},
    ))
    formats = ["openai_chat", "bedrock_conversation", "sharegpt", "trl_messages", "alpaca"]
    recipe = RecipeConfig.model_validate(
        {"name": "pkgs", "kind": "chat_sft", "sources": ["pkgs"],
         "exports": {"formats": formats}})
    staged = stage_exports(df, recipe, tmp_path / "pkgs", config_hash="x")
    try:
        body_of = dict(zip(df["record_id"], [b for _, b in docs], strict=True))
        rejected = dict(zip(staged.rejected["record_id"], staged.rejected["detail"],
                            strict=True))
        expected = {rid for rid, body in body_of.items()
                    if any(w in body for w in NOVA_RESERVED)}
        assert set(rejected) == expected  # exactly the texts holding a reserved word
        for rid, detail in rejected.items():
            for word in (w for w in NOVA_RESERVED if w in body_of[rid]):
                assert "reserved word" in detail and repr(word) in detail
        assert staged.kept.height + len(rejected) == len(docs)
        validity = validate_export_files(staged.staging)
        assert validity["invalid"] == 0
        assert validity["lines"] == staged.kept.height * len(formats)
        print(f"{len(docs)} package descriptions: {staged.kept.height} exported in "
              f"{len(formats)} formats, {len(rejected)} rejected (Nova reserved words)")
    finally:
        staged.discard()
