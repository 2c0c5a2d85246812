"""The demo generator is deterministic, matches the committed demo_data/, and plants what it says."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from ftdata_pipeline.config.loader import load_recipe
from ftdata_pipeline.demo import phrases
from ftdata_pipeline.demo.generate import DEFAULT_SEED, build_eval, build_tickets, generate

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "demo_data"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> tuple[Path, dict, float]:
    out = tmp_path_factory.mktemp("demo")
    start = time.perf_counter()
    counts = generate(out)
    return out, counts, time.perf_counter() - start


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_regenerated_files_are_byte_identical_to_committed(regenerated):
    out, _, elapsed = regenerated
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in COMMITTED.iterdir())
    assert "chat_transcripts.sqlite" in names and "kb_articles.parquet" in names
    for name in names:
        assert (out / name).read_bytes() == (COMMITTED / name).read_bytes(), name
    assert elapsed < 20


def test_another_seed_gives_other_data(tmp_path):
    generate(tmp_path, seed=DEFAULT_SEED + 1)
    other = (tmp_path / "support_tickets.jsonl").read_bytes()
    assert other != (COMMITTED / "support_tickets.jsonl").read_bytes()


def test_tickets_have_planted_duplicates_and_junk():
    tickets = _jsonl(COMMITTED / "support_tickets.jsonl")
    assert len(tickets) == 2000
    assert len({t["ticket_id"] for t in tickets}) == len(tickets)
    assert list(tickets[0]) == [
        "ticket_id", "created_at", "channel", "product", "subject", "body", "agent_reply",
        "customer_email",
    ]
    same = Counter((t["subject"], t["body"], t["agent_reply"]) for t in tickets if t["body"].strip())
    assert sum(n - 1 for n in same.values() if n > 1) >= 100
    bodies = [t["body"] for t in tickets]
    assert sum(not b.strip() for b in bodies) >= 10
    assert sum(b.strip() in phrases.TOO_SHORT for b in bodies) >= 20
    assert sum(b in phrases.BOILERPLATE for b in bodies) >= 20
    assert sum("<p>" in b for b in bodies) >= 10
    assert sum("\u00a0" in b for b in bodies) >= 10
    assert sum("\u0301" in b or "\u0308" in b for b in bodies) >= 10  # NFD combining accents
    for word in ("Hola", "Guten Tag", "Bonjour"):
        assert any(word in b for b in bodies), word


def test_ticket_pii_is_present_and_cards_are_luhn_valid():
    text = "\n".join(t["body"] for t in _jsonl(COMMITTED / "support_tickets.jsonl"))
    assert len(re.findall(r"\b\d{3}-\d{2}-\d{4}\b", text)) >= 10  # SSNs
    assert len(re.findall(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,}", text)) >= 10  # IBANs
    assert len(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text)) >= 10  # IPv4
    cards = re.findall(r"\b(?:\d[ -]?){13,19}\b", text)
    cards = [re.sub(r"\D", "", c) for c in cards if re.sub(r"\D", "", c) in phrases.TEST_CARDS]
    assert len(cards) >= 20
    for number in cards:
        digits = [int(d) for d in reversed(number)]
        total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
        assert total % 10 == 0, number[-4:]


def test_junk_fails_and_real_tickets_pass_the_recipe_thresholds():
    cfg = load_recipe(ROOT / "configs" / "datasets" / "ticket_intents.yaml").curate
    tickets = build_tickets(DEFAULT_SEED, build_eval(DEFAULT_SEED))
    for t in tickets:
        text = re.sub(r"<[^>]+>", " ", f"{t['subject']}\n\n{t['body']}").strip()
        too_small = len(text) < cfg.min_chars or len(text.split()) < cfg.min_words
        assert too_small == t["kind"].startswith("junk"), (t["ticket_id"], t["kind"])


def test_labels_have_three_annotators_eight_categories_and_disagreement():
    labels = pl.read_csv(COMMITTED / "ticket_labels.csv")
    assert labels.columns == ["ticket_id", "annotator", "label"]
    assert sorted(labels["annotator"].unique()) == ["ann_a", "ann_b", "ann_c"]
    assert sorted(labels["label"].unique()) == sorted(phrases.CATEGORIES)
    per_item = labels.group_by("ticket_id").agg(
        pl.len().alias("votes"), pl.col("label").n_unique().alias("distinct")
    )
    n = per_item.height
    assert 0.10 < per_item.filter(pl.col("votes") == 3, pl.col("distinct") == 2).height / n < 0.20
    assert per_item.filter(pl.col("distinct") == 3).height >= 10
    assert per_item.filter(pl.col("votes") < 3).height >= 10


def test_chat_transcripts_shape():
    con = sqlite3.connect(COMMITTED / "chat_transcripts.sqlite")
    try:
        rows = con.execute(
            "SELECT conversation_id, turn_index, role, content FROM chat_turns"
            " ORDER BY conversation_id, turn_index"
        ).fetchall()
    finally:
        con.close()
    convs: dict[str, list[tuple[str, str]]] = {}
    for cid, _, role, content in rows:
        convs.setdefault(cid, []).append((role, content))
    assert len(convs) == 400
    assert {r for t in convs.values() for r, _ in t} == {"customer", "agent", "system"}
    assert all(2 <= len([r for r, _ in t if r != "system"]) <= 8 for t in convs.values())
    assert sum(t[-1][0] == "customer" for t in convs.values()) >= 20
    assert sum(t[0][0] == "system" for t in convs.values()) >= 10
    contents = Counter(tuple(t) for t in convs.values())
    assert sum(n - 1 for n in contents.values() if n > 1) >= 5


def test_rankings_have_four_responses_per_prompt_ordered_by_quality():
    rows = pl.read_ndjson(COMMITTED / "response_rankings.jsonl")
    per_prompt = rows.group_by("prompt_id").agg(
        pl.len().alias("n"), pl.col("rank").n_unique().alias("distinct")
    )
    assert per_prompt.height == 250
    assert per_prompt["n"].to_list() == [4] * 250
    ties = per_prompt.filter(pl.col("distinct") < 4).height
    assert 5 <= ties <= 25
    assert rows["rank"].is_between(1, 4).all()
    # Better-ranked responses are longer and more specific on average.
    mean_len = rows.group_by("rank").agg(pl.col("response").str.len_chars().mean()).sort("rank")
    assert mean_len["response"].to_list() == sorted(mean_len["response"].to_list(), reverse=True)


def test_kb_articles_and_reference_files():
    kb = pl.read_parquet(COMMITTED / "kb_articles.parquet")
    assert kb.height == 300 and kb["article_id"].n_unique() == 300
    assert kb.schema["updated_at"] == pl.Datetime("us", "UTC")
    assert kb.select(pl.struct("title", "body").is_duplicated().sum()).item() >= 6
    assert kb.filter(pl.col("body").str.len_chars() < 25).height >= 5
    queries = _jsonl(COMMITTED / "production_queries.jsonl")
    assert len(queries) == 500
    assert {q["category"] for q in queries} == set(phrases.CATEGORIES)


def test_eval_prompts_are_planted_in_tickets():
    evals = _jsonl(COMMITTED / "eval_set.jsonl")
    assert len(evals) == 100 and list(evals[0]) == ["id", "prompt", "expected"]
    bodies = "\n".join(t["body"] for t in _jsonl(COMMITTED / "support_tickets.jsonl")).lower()
    verbatim = sum(e["prompt"].lower() in bodies for e in evals)
    nearly = sum(e["prompt"].rstrip("?").lower()[1:] in bodies for e in evals)
    assert verbatim >= 12
    assert nearly >= 20
    rankings = set(pl.read_ndjson(COMMITTED / "response_rankings.jsonl")["prompt"].to_list())
    assert not rankings & {e["prompt"] for e in evals}
