"""The dataset card: facts in Markdown and JSON, plots present and byte-identical across renders."""

from __future__ import annotations

import json

from ftdata_pipeline.config.models import RecipeConfig, SourceConfig
from ftdata_pipeline.governance.card import render_card

RECIPE = RecipeConfig.model_validate(
    {
        "name": "ticket_triage",
        "description": "Route support tickets to a queue.",
        "kind": "classification",
        "sources": ["tickets"],
        "label": {
            "method": "rules",
            "rules": [{"label": "billing", "pattern": "invoice"}],
            "label_set": ["billing", "other"],
        },
        "exports": {"formats": ["classification_jsonl"]},
    }
)
SOURCES = {
    "tickets": SourceConfig.model_validate(
        {
            "kind": "file",
            "path": "data/tickets.jsonl",
            "format": "jsonl",
            "owner": "support-ops",
            "licence": "proprietary-internal",
            "classification": "confidential",
            "contains_pii": True,
        }
    ),
    "unrelated": SourceConfig.model_validate(
        {
            "kind": "file",
            "path": "x.csv",
            "format": "csv",
            "owner": "nobody",
            "licence": "CC-BY-4.0",
            "classification": "public",
            "contains_pii": False,
        }
    ),
}
STAGES = [
    {"stage": "curated", "rows_in": 120, "rows_kept": 100, "rows_rejected": 20,
     "drops": {"exact_duplicate": 15, "empty": 5}},
    {"stage": "labeled", "rows_in": 100, "rows_kept": 90, "rows_rejected": 10,
     "drops": {"no_rule_matched": 10}},
]
LABELS = {"distribution": {"other": 70, "billing": 20}, "agreement": {"cohen_kappa": 0.52}}
SPLITS = {
    "counts": {"train": 72, "validation": 9, "test": 9},
    "label_counts": {
        "train": {"billing": 16, "other": 56},
        "validation": {"billing": 2, "other": 7},
        "test": {"billing": 2, "other": 7},
    },
}
REDACTION = {
    "entities": {"PERSON": 31, "EMAIL_ADDRESS": 12},
    "operators": {
        "PERSON": "pseudonym (keyed HMAC-SHA256, 8 hex digits)",
        "EMAIL_ADDRESS": "placeholder <EMAIL_ADDRESS>",
    },
    "evaluation": {"status": "not evaluated", "detection_config": "abc", "how": "run it"},
    "records_redacted": 40,
}
MANIFEST = {
    "dataset": "ticket_triage",
    "kind": "classification",
    "config_hash": "cafe1234",
    "splits": {"train": 72, "validation": 9, "test": 9},
    "files": [
        {"path": "classification_jsonl/train.jsonl", "format": "classification_jsonl",
         "split": "train", "records": 72, "bytes": 5000, "sha256": "ab" * 32},
    ],
}


def _render(out_dir):
    return render_card(RECIPE, SOURCES, STAGES, LABELS, SPLITS, REDACTION, MANIFEST, out_dir)


def test_card_mentions_sources_counts_pii_exports_and_metrics(tmp_path):
    paths = _render(tmp_path)
    assert paths["markdown"] == tmp_path / "README.md"
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "# Dataset card: ticket_triage" in md
    assert "Route support tickets to a queue." in md
    assert (
        "| tickets | records | support-ops | proprietary-internal | confidential | yes | — |" in md
    )
    assert "unrelated" not in md  # only the recipe's own sources
    assert "| EMAIL_ADDRESS | placeholder <EMAIL_ADDRESS> | 12 |" in md
    assert "| PERSON | pseudonym (keyed HMAC-SHA256, 8 hex digits) | 31 |" in md
    assert "not evaluated" in md  # the evaluation status of the configuration that ran
    assert "`<EMAIL_ADDRESS>`" in md
    assert "- records redacted: 40" in md
    assert "| curated | 120 | 100 | 20 | empty: 5, exact_duplicate: 15 |" in md
    assert "| labeled | 100 | 90 | 10 | no_rule_matched: 10 |" in md
    assert "| billing | 20 | 22.2% |" in md and "| other | 70 | 77.8% |" in md
    assert "| cohen_kappa | 0.52 |" in md
    assert "| train | 72 | 80.0% |" in md
    assert "| split | billing | other |" in md and "| train | 16 | 56 |" in md
    export_row = "| classification_jsonl/train.jsonl | classification_jsonl | train | 72 | 5000 |"
    assert f"{export_row} `{'ab' * 32}` |" in md
    assert "F1 (macro)" in md and "ROC AUC" in md
    assert "![Records per split](split_distribution.png)" in md
    assert "![Records per label](label_distribution.png)" in md
    # Computed limitations: PII source, rules labels, imbalance, low agreement, small splits.
    assert "residual personal data is possible" in md
    assert "regular-expression rules" in md
    assert "largest/smallest = 3.5" in md
    assert "cohen_kappa = 0.52 is below 0.6" in md
    assert "The validation split has only 9 records" in md


def test_card_json_holds_the_same_facts(tmp_path):
    card = json.loads(_render(tmp_path)["json"].read_text(encoding="utf-8"))
    assert card["dataset"] == "ticket_triage"
    assert card["config_hash"] == "cafe1234"
    assert card["sources"][0]["licence"] == "proprietary-internal"
    assert card["pii"]["entities"] == {"EMAIL_ADDRESS": 12, "PERSON": 31}
    assert card["stages"][0]["drops"] == {"empty": 5, "exact_duplicate": 15}
    assert card["splits"]["counts"] == {"train": 72, "validation": 9, "test": 9}
    assert card["evaluation"]["metrics"] == ["F1 (macro)", "ROC AUC (one-vs-rest)", "accuracy"]
    assert card["plots"] == ["split_distribution.png", "label_distribution.png"]


def test_plots_exist_and_are_byte_identical_across_renders(tmp_path):
    a = _render(tmp_path / "a")
    b = _render(tmp_path / "b")
    assert [p.name for p in a["plots"]] == ["split_distribution.png", "label_distribution.png"]
    for pa, pb in zip(a["plots"], b["plots"], strict=True):
        data = pa.read_bytes()
        assert data.startswith(b"\x89PNG")
        assert data == pb.read_bytes()
    assert a["markdown"].read_bytes() == b["markdown"].read_bytes()
    assert a["json"].read_bytes() == b["json"].read_bytes()


def test_card_tolerates_missing_stats_for_other_kinds(tmp_path):
    recipe = RecipeConfig.model_validate(
        {"name": "prefs", "kind": "preference", "sources": ["tickets"],
         "label": {"method": "rankings"}, "exports": {"formats": ["trl_preference"]}}
    )
    paths = render_card(recipe, {}, [], {}, {}, {}, {}, tmp_path)
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "reward accuracy, win rate" in md
    assert "No PII spans were detected." in md
    assert "No records in split(s): train, validation, test." in md
    assert [p.name for p in paths["plots"]] == ["split_distribution.png"]
    assert not (tmp_path / "label_distribution.png").exists()
