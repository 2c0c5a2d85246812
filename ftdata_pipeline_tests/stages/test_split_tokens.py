"""Token counts: published reference counts, chat template overhead, max_tokens policies,
per-split totals in the stats and the manifest."""

from __future__ import annotations

import json

import polars as pl
import pytest
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers, trainers

from ftdata_pipeline import records
from ftdata_pipeline.config.models import RecipeConfig, TokensConfig
from ftdata_pipeline.formats.writer import write_exports
from ftdata_pipeline.stages.split import split
from ftdata_pipeline.stages.split.tokens import load_tokenizer

# The OpenAI cookbook "How to count tokens with tiktoken": token ids of "tiktoken is great!"
# and the prompt tokens the OpenAI API reported for its example conversation (129 for
# gpt-3.5-turbo / gpt-4 on cl100k_base, 124 for gpt-4o / gpt-4o-mini on o200k_base).
COOKBOOK_IDS = {
    "cl100k_base": [83, 1609, 5963, 374, 2294, 0],
    "o200k_base": [83, 8251, 2488, 382, 2212, 0],
}
COOKBOOK_CHAT_TOKENS = {"cl100k_base": 129, "o200k_base": 124}
COOKBOOK_MESSAGES = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that "
     "translates corporate jargon into plain English."},
    {"role": "system", "name": "example_user",
     "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant",
     "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more "
     "bandwidth to touch base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant",
     "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean "
     "for the client deliverable."},
]


@pytest.mark.parametrize("encoding", sorted(COOKBOOK_IDS))
def test_counts_agree_with_the_published_reference(encoding: str) -> None:
    tok = load_tokenizer(TokensConfig(tokenizer=encoding))
    assert tok.encode("tiktoken is great!") == COOKBOOK_IDS[encoding]
    assert tok.chat(COOKBOOK_MESSAGES) == COOKBOOK_CHAT_TOKENS[encoding]


def test_special_token_text_in_data_is_ordinary_text() -> None:
    tok = load_tokenizer(TokensConfig(tokenizer="o200k_base"))
    assert tok.count("before <|endoftext|> after") > 3


def test_unknown_tokenizer_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="tokens.tokenizer"):
        load_tokenizer(TokensConfig(tokenizer="llama.json"), str(tmp_path))


CHATML = (
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "<|im_end|>\n{% endfor %}"
)


def local_tokenizer(tmp_path, template: bool = True):
    """A small BPE tokenizer trained here and saved as tokenizer.json (+ chat template)."""
    tok = HFTokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = ["how do i cancel my plan", "your invoice was refunded today", "reset password"] * 50
    tok.train_from_iterator(corpus, trainer)
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    if template:
        (tmp_path / "tokenizer_config.json").write_text(
            json.dumps({"chat_template": CHATML, "bos_token": "<s>", "eos_token": "</s>"})
        )
    return path, tok


def test_local_tokenizer_json_with_its_chat_template(tmp_path) -> None:
    path, hf = local_tokenizer(tmp_path)
    tok = load_tokenizer(TokensConfig(tokenizer="tokenizer.json"), str(tmp_path))
    messages = [{"role": "user", "content": "how do i cancel"},
                {"role": "assistant", "content": "your plan was refunded"}]
    rendered = ("<s><|im_start|>user\nhow do i cancel<|im_end|>\n"
                "<|im_start|>assistant\nyour plan was refunded<|im_end|>\n")
    expected = len(hf.encode(rendered, add_special_tokens=False).ids)
    assert tok.chat(messages) == expected
    # the template's special tokens are single tokens: overhead = bos + 2 x (start, end) + ...
    content = sum(len(hf.encode(m["content"]).ids) for m in messages)
    assert expected - content >= 5


def test_local_tokenizer_without_template_uses_configured_overhead(tmp_path) -> None:
    local_tokenizer(tmp_path, template=False)
    cfg = TokensConfig(tokenizer=str(tmp_path / "tokenizer.json"), per_message=4, per_example=2)
    tok = load_tokenizer(cfg)
    messages = [{"role": "user", "content": "reset password"}]
    assert tok.chat(messages) == 4 + tok.count("user") + tok.count("reset password") + 2


def chat_recipe(**tokens) -> RecipeConfig:
    return RecipeConfig.model_validate({
        "name": "chat", "kind": "chat_sft", "sources": ["chats"],
        "exports": {"formats": ["openai_chat"]}, "tokens": tokens,
        "split": {"group_near_duplicates": None},
    })


def conversation(i: int, turns: int) -> dict:
    msgs = []
    for t in range(turns):
        role = "user" if t % 2 == 0 else "assistant"
        msgs.append({"role": role, "content": f"turn {t} of conversation {i} " + "word " * 20})
    return {"record_id": f"r{i:03d}", "source": "chats", "source_key": str(i),
            "conversation_id": f"c{i}", "system": "You are a support assistant.", "messages": msgs}


def frame(rows) -> pl.DataFrame:
    return records.conform(pl.DataFrame(rows))


def test_max_tokens_drop_rejects_and_counts() -> None:
    rows = [conversation(i, 2 if i % 4 else 10) for i in range(40)]
    tok = load_tokenizer(TokensConfig())
    limit = tok.chat([{"role": "system", "content": "You are a support assistant."},
                      *conversation(0, 4)["messages"]])
    result = split(frame(rows).lazy(), chat_recipe(max_tokens=limit, policy="drop"))
    rej = result.rejected
    assert set(rej["rule"]) == {"over_max_tokens"} and rej.height == 10
    assert (rej["score"] > limit).all()
    assert result.kept["n_tokens_seq"].max() <= limit
    report = result.stats["tokens"]
    assert report["over_limit"] == 10 and report["dropped"] == 10 and report["truncated"] == 0


def test_truncate_keeps_system_and_last_assistant_turn() -> None:
    rows = [conversation(i, 2 if i % 4 else 10) for i in range(40)]
    tok = load_tokenizer(TokensConfig())
    limit = tok.chat([{"role": "system", "content": "You are a support assistant."},
                      *conversation(0, 4)["messages"]])
    result = split(frame(rows).lazy(), chat_recipe(max_tokens=limit, policy="truncate"))
    assert result.rejected.is_empty()
    assert result.stats["tokens"]["truncated"] == 10
    for record in result.kept.filter(pl.col("record_id").is_in([f"r{i:03d}" for i in range(0, 40, 4)])).iter_rows(named=True):
        msgs = record["messages"]
        assert msgs[0]["role"] == "user" and msgs[-1]["role"] == "assistant"
        assert msgs[-1]["content"].startswith("turn 9 ")  # the last assistant turn
        assert record["system"] == "You are a support assistant."
        assert 2 <= len(msgs) < 10 and record["n_tokens_seq"] <= limit


def test_token_totals_per_split_in_stats_and_manifest(tmp_path) -> None:
    rows = [conversation(i, 2 + 2 * (i % 3)) for i in range(60)]
    recipe = chat_recipe(epochs=2)
    result = split(frame(rows).lazy(), recipe)
    stats = result.stats["tokens"]
    for name, per in stats["per_split"].items():
        part = result.kept.filter(pl.col("split") == name)
        assert per["total"] == part["n_tokens"].sum() and per["examples"] == part.height
    assert stats["training_tokens"] == 2 * stats["per_split"]["train"]["total"]
    tok = load_tokenizer(TokensConfig())
    first = result.kept.row(0, named=True)
    expected = tok.chat([{"role": "system", "content": first["system"]}]
                        + [{"role": m["role"], "content": m["content"]} for m in first["messages"]])
    assert first["n_tokens"] == expected
    manifest = write_exports(result.kept, recipe, tmp_path / "out", config_hash="x")
    assert manifest["tokens"]["per_split"] == {
        s: v["total"] for s, v in stats["per_split"].items() if v["examples"]
    }


def test_preference_pair_counts_both_sequences() -> None:
    recipe = RecipeConfig.model_validate({
        "name": "pref", "kind": "preference", "sources": ["r"], "label": {"method": "rankings"},
        "exports": {"formats": ["trl_preference"]},
    })
    row = {"record_id": "p", "source": "r", "source_key": "1", "prompt": "how do i cancel",
           "chosen": "Go to Billing and choose Cancel plan.", "rejected": "No."}
    kept = split(frame([row]).lazy(), recipe).kept
    tok = load_tokenizer(TokensConfig())
    user = {"role": "user", "content": row["prompt"]}
    c = tok.chat([user, {"role": "assistant", "content": row["chosen"]}])
    r = tok.chat([user, {"role": "assistant", "content": row["rejected"]}])
    assert kept["n_tokens"][0] == c + r and kept["n_tokens_seq"][0] == max(c, r)


def test_remembered_token_counts_are_bounded(monkeypatch) -> None:
    """Counting every text of a large dataset must not keep every text: the cache of
    counts is cleared at its bound, and counts stay those of the encoder."""
    from ftdata_pipeline.stages.split import tokens

    monkeypatch.setattr(tokens, "MAX_CACHED_LENGTHS", 10)
    tok = load_tokenizer(TokensConfig(tokenizer="o200k_base"))
    texts = [f"ticket {i} about a refund of order {i * 7}" for i in range(35)]
    assert [tok.count(t) for t in texts] == [len(tok.encode(t)) for t in texts]
    assert 0 < len(tok._lengths) <= 10
