"""Label schema and rule labeling functions: votes, coverage/overlap/conflict, instruction."""

from __future__ import annotations

import polars as pl
import pytest
from pydantic import ValidationError

from ftdata_pipeline.config.models import RecipeConfig
from ftdata_pipeline.formats.openai import OpenAIChat
from ftdata_pipeline.records import ANNOTATION_SCHEMA, conform, stable_id
from ftdata_pipeline.stages.label import label

LABELS = [
    {"name": "billing", "description": "invoices, charges, refunds"},
    {"name": "access", "description": "logging in, passwords, 2FA"},
    {"name": "bug", "description": "the product misbehaves"},
]
FUNCTIONS = [
    {"name": "kw_billing", "label": "billing", "keywords": ["invoice", "refund"]},
    {"name": "re_access", "label": "access", "pattern": r"(?i)\blog-?in\b|password"},
    {"name": "web_form_bug", "label": "bug", "keywords": ["crash"],
     "when": [{"field": "source", "op": "eq", "value": "web"}]},
    {"name": "long_access", "label": "access", "when": [{"field": "q_words", "op": "ge",
                                                           "value": 10}]},
]  # fmt: skip


def _recipe(**label_cfg) -> RecipeConfig:
    base = {"method": "rules", "labels": LABELS, "functions": FUNCTIONS}
    return RecipeConfig.model_validate(
        {"name": "t", "kind": "classification", "sources": ["web", "mail"],
         "exports": {"formats": ["classification_jsonl", "openai_chat"]},
         "label": {**base, **label_cfg}}  # fmt: skip
    )


def _records() -> pl.DataFrame:
    rows = [
        ("1", "web", "Refund for my invoice please", 5),  # billing only
        ("2", "web", "cannot log-in after the crash", 5),  # access + bug (conflict)
        ("3", "mail", "app crash on start", 5),  # crash but not web: abstain
        ("4", "mail", "password reset link and invoice question here ok", 10),  # 2 access, 1 billing
        ("5", "mail", "hello there", 3),  # nothing
        ("6", "web", "blog-in typo", 3),  # "log-in" inside a word: no match
    ]
    return conform(
        pl.DataFrame(
            {
                "record_id": [stable_id(s, k) for k, s, _, _ in rows],
                "source": [s for _, s, _, _ in rows],
                "source_key": [k for k, _, _, _ in rows],
                "text": [t for _, _, t, _ in rows],
                "q_words": [w for _, _, _, w in rows],
            }
        )
    )


def _kept(result) -> dict[str, str]:
    return dict(zip(result.kept["source_key"], result.kept["label"], strict=True))


def test_majority_vote_of_functions_and_snorkel_stats():
    result = label(_records().lazy(), _recipe())
    assert _kept(result) == {"1": "billing", "4": "access"}
    rules = dict(zip(result.rejected["source_key"], result.rejected["rule"], strict=True))
    assert rules == {"2": "rules_tie", "3": "no_rule_matched", "5": "no_rule_matched",
                     "6": "no_rule_matched"}  # fmt: skip
    stats = result.stats["functions"]
    # 6 records: kw_billing fires on 1, 4; re_access on 2, 4; web_form_bug on 2; long_access on 4
    assert stats["kw_billing"] == {"label": "billing", "records": 2, "coverage": 0.3333,
                                   "overlap": 0.1667, "conflict": 0.1667}  # fmt: skip
    assert stats["re_access"] == {"label": "access", "records": 2, "coverage": 0.3333,
                                  "overlap": 0.3333, "conflict": 0.3333}  # fmt: skip
    assert stats["web_form_bug"] == {"label": "bug", "records": 1, "coverage": 0.1667,
                                     "overlap": 0.1667, "conflict": 0.1667}  # fmt: skip
    # long_access overlaps re_access (same label: no conflict) and kw_billing (conflict) on 4
    assert stats["long_access"]["overlap"] == 0.1667 and stats["long_access"]["conflict"] == 0.1667


def test_weighted_vote_changes_the_winner():
    weighted = [dict(f, weight=3.0) if f["name"] == "kw_billing" else f for f in FUNCTIONS]
    result = label(_records().lazy(), _recipe(functions=weighted, vote="weighted"))
    assert _kept(result)["4"] == "billing"  # 3 > 1 + 1
    # web_form_bug weighted 1 still ties re_access on record 2
    assert "2" not in _kept(result)


def test_multi_label_keeps_every_voted_label():
    result = label(_records().lazy(), _recipe(multi_label=True))
    kept = _kept(result)
    assert kept["2"] == "access,bug" and kept["4"] == "access,billing"


def test_label_descriptions_become_the_chat_instruction():
    result = label(_records().lazy(), _recipe())
    row = result.kept.filter(pl.col("source_key") == "1").row(0, named=True)
    recipe = _recipe()
    # the writer's path: a classification record in a chat format is instruction + text,
    # answered by the label; the label schema is its system prompt
    from ftdata_pipeline.formats.writer import example_for, instruction_for

    example = example_for(OpenAIChat, row, "classification", instruction_for(recipe))
    messages = example["messages"]
    assert OpenAIChat.validate(example) == []
    assert messages[0]["role"] == "system"
    assert "- billing: invoices, charges, refunds" in messages[0]["content"]
    assert "exactly one label" in messages[0]["content"]
    assert messages[-1] == {"role": "assistant", "content": "billing"}


def test_schema_sets_label_set_and_functions_stay_inside_it():
    recipe = _recipe()
    assert recipe.label.label_set == ["billing", "access", "bug"]
    assert recipe.label.descriptions["access"] == "logging in, passwords, 2FA"
    with pytest.raises(ValidationError, match="outside label_set"):
        _recipe(functions=[{"name": "x", "label": "nope", "keywords": ["a"]}])
    with pytest.raises(ValidationError, match="different labels"):
        _recipe(label_set=["billing"])
    with pytest.raises(ValidationError, match="invalid regular expression"):
        _recipe(functions=[{"name": "x", "label": "bug", "pattern": r"(\w)\1"}])
    with pytest.raises(ValidationError, match="needs keywords, pattern or when"):
        _recipe(functions=[{"name": "x", "label": "bug"}])


def test_function_reading_a_missing_field_is_a_clear_error():
    bad = [{"name": "by_team", "label": "bug", "when": [{"field": "team", "op": "eq",
                                                       "value": "x"}]}]  # fmt: skip
    with pytest.raises(ValueError, match="'by_team' reads field 'team'"):
        label(_records().lazy(), _recipe(functions=bad))


def test_majority_vote_falls_back_to_functions():
    ann = conform(
        pl.DataFrame({"source": ["ann"] * 2, "source_key": ["0", "1"], "item_key": ["1", "1"],
                      "item_source": ["web", "web"], "annotator": ["a", "b"],
                      "label": ["bug", "bug"]}),  # fmt: skip
        ANNOTATION_SCHEMA,
    ).lazy()
    recipe = _recipe(method="majority_vote", annotations="ann")
    result = label(_records().lazy(), recipe, ann)
    kept = _kept(result)
    assert kept["1"] == "bug"  # the annotators win over kw_billing
    assert kept["4"] == "access"  # no votes: labeling functions
    assert result.stats["labeled_by"] == {"majority_vote": 1, "rules": 1}
    assert "functions" in result.stats


def test_readme_labeling_example_is_a_valid_label_section():
    import re
    from pathlib import Path

    import yaml

    from ftdata_pipeline.config.models import LabelConfig

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    section = readme.split("## Labels, human feedback and distillation", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    cfg = LabelConfig.model_validate(yaml.safe_load(block)["label"])
    assert cfg.label_set == ["billing", "security"]
    assert [f.name for f in cfg.functions] == ["kw_refund", "re_keys", "web_security"]
    assert cfg.review_answers == "ticket_review" and cfg.agreement.review_below == 0.6


def test_multi_label_majority_vote_and_per_label_agreement():
    ann = conform(pl.DataFrame({
        "source": ["ann"] * 9, "source_key": [str(i) for i in range(9)],
        "item_source": ["web", "web", "web", "web", "web", "web", "mail", "mail", "mail"],
        "item_key": ["1", "1", "1", "1", "1", "2", "3", "3", "3"],
        "annotator": ["a", "a", "b", "b", "c", "a", "a", "b", "c"],
        # item 1: billing by a, b, c; access by a, b -> both (3/3, 2/3); item 3: split 1-1-1
        "label": ["billing", "access", "billing", "access", "billing", "bug", "bug", "access",
                  "billing"]}), ANNOTATION_SCHEMA).lazy()  # fmt: skip
    recipe = _recipe(method="majority_vote", annotations="ann", multi_label=True, functions=[],
                     min_agreement=0.6, agreement={"review_below": 0.6})  # fmt: skip
    result = label(_records().lazy(), recipe, ann)
    assert _kept(result)["1"] == "access,billing"
    assert result.kept.filter(pl.col("source_key") == "1")["label_agreement"][0] == \
        pytest.approx(2 / 3)
    rules = dict(zip(result.rejected["source_key"], result.rejected["rule"], strict=True))
    assert rules["2"] == "insufficient_votes"  # one annotator, no functions
    assert rules["3"] == "low_agreement"  # each label 1 of 3: clear no
    agreement = result.stats["agreement"]
    assert agreement["multi_label"] and set(agreement["per_label"]) == {"access", "billing", "bug"}
