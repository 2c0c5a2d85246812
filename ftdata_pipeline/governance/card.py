"""Render a dataset card (README.md + card.json + PNG plots) from a recipe and run statistics.

The card follows the spirit of Hugging Face dataset cards and SageMaker model cards: what the
dataset is for, where it comes from and under which licences, how PII was handled, what every
stage dropped, how labels and splits are distributed, which files were exported (with sha256),
its known limitations and how models trained on it should be evaluated. It holds counts and
configuration only, never record content. Same inputs give byte-identical files.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ftdata_pipeline.config.models import RecipeConfig, SourceConfig
from ftdata_pipeline.governance.card_split import split_markdown, split_plots
from ftdata_pipeline.records import SPLITS

MARKDOWN = "README.md"
JSON = "card.json"
SPLIT_PLOT = "split_distribution.png"
LABEL_PLOT = "label_distribution.png"

EVALUATION: dict[str, dict[str, Any]] = {
    "chat_sft": {
        "task": "generation",
        "metrics": ["BLEU", "ROUGE-L"],
        "notes": "Compare generated assistant turns with the reference turns of the test "
        "split; n-gram overlap rewards wording, so pair it with human or model-judged review.",
    },
    "classification": {
        "task": "classification",
        "metrics": ["F1 (macro)", "ROC AUC (one-vs-rest)", "accuracy"],
        "notes": "Report per-label precision and recall as well; macro F1 weighs rare labels "
        "equally with frequent ones.",
    },
    "preference": {
        "task": "preference (reward modeling / DPO)",
        "metrics": ["reward accuracy", "win rate"],
        "notes": "Reward accuracy: share of test pairs where the model scores 'chosen' above "
        "'rejected'. Win rate: share of head-to-head comparisons the tuned model wins "
        "against a reference model.",
    },
    "distillation": {
        "task": "generation (distilled from a teacher model)",
        "metrics": ["win rate against the teacher", "ROUGE-L"],
        "notes": "Compare the student's answers on the test prompts with the teacher's; a "
        "judge model or people rate which is better, n-gram overlap only checks wording.",
    },
    "pretraining": {
        "task": "continued pre-training",
        "metrics": ["perplexity"],
        "notes": "Perplexity on the held-out test split, compared with the base model's.",
    },
}

# Hugging Face task category ids, for the card's YAML header.
HF_TASK = {
    "chat_sft": "text-generation",
    "classification": "text-classification",
    "preference": "text-generation",
    "pretraining": "text-generation",
    "distillation": "text-generation",
}

SMALL_SPLIT = 30  # below this, test metrics have confidence intervals too wide to rank models
AGREEMENT_BAR = 0.6  # the usual lower bar for kappa / alpha
IMBALANCE_RATIO = 3.0


# --------------------------------------------------------------------------------------------
# facts
# --------------------------------------------------------------------------------------------


def _source_rows(recipe: RecipeConfig, sources: dict[str, SourceConfig]) -> list[dict]:
    names = list(recipe.sources)
    names += [a for a in [*recipe.label.annotation_sources, *recipe.label.teacher_sources]
              if a not in names]
    rows = []
    for name in names:
        src = sources.get(name)
        rows.append(
            {
                "name": name,
                "role": src.role if src else None,
                "description": src.description if src else "",
                "owner": src.owner if src else None,
                "licence": src.licence if src else None,
                "classification": src.classification if src else None,
                "contains_pii": src.contains_pii if src else None,
                "retention_days": src.retention_days if src else None,
            }
        )
    return rows


def _sorted_counts(counts: dict | None) -> dict[str, int]:
    return {str(k): counts[k] for k in sorted(counts or {}, key=str)}


def _limitations(facts: dict) -> list[str]:
    notes = []
    if any(s["contains_pii"] for s in facts["sources"]):
        notes.append(
            "PII redaction is automatic (Presidio); detection recall is below 100%, so "
            "residual personal data is possible. Treat the exports as internal data."
        )
    if facts["label_method"] == "rules":
        notes.append("Labels come from regular-expression rules, not human judgement.")
    distribution = facts["labels"]["distribution"]
    if len(distribution) >= 2:
        ratio = max(distribution.values()) / max(min(distribution.values()), 1)
        if ratio > IMBALANCE_RATIO:
            notes.append(
                f"Labels are imbalanced (largest/smallest = {ratio:.1f}); prefer macro "
                "metrics and consider re-weighting."
            )
    for name, value in facts["labels"]["agreement"].items():
        if isinstance(value, (int, float)) and value < AGREEMENT_BAR:
            notes.append(
                f"Annotator agreement {name} = {value:.2f} is below {AGREEMENT_BAR}; labels "
                "are noisy."
            )
    for split, n in facts["splits"]["counts"].items():
        if n < SMALL_SPLIT:
            notes.append(
                f"The {split} split has only {n} records; metrics on it are imprecise."
            )
    missing = [s for s in SPLITS if s not in facts["splits"]["counts"]]
    if missing:
        notes.append(f"No records in split(s): {', '.join(missing)}.")
    notes.append(
        "Records reflect the company's own sources at export time; topics, languages and "
        "customers under-represented there are under-represented here."
    )
    return notes


def _evaluation_lines(ev: dict) -> list[str]:
    """The recorded detection quality of the configuration that ran (or that there is none)."""
    if not ev:
        return []
    if ev.get("status") != "measured":
        return [f"Detection quality of this configuration (`{ev.get('detection_config')}`): "
                f"not evaluated ({ev.get('how', '')}).", ""]
    lines = [f"Detection quality of this configuration (`{ev['detection_config']}`), measured on "
             "independent data:", ""]
    rows = []
    for name, figures in sorted((ev.get("sets") or {}).items()):
        rows.append([name, ", ".join(f"{k} {v}" for k, v in sorted(figures.items()))])
    return lines + _table(["evaluation set", "figures"], rows)


def _facts(recipe, sources, stage_counts, label_stats, split_stats, redaction_stats, manifest,
           version=None):
    version = version or {}
    label_stats = label_stats or {}
    split_stats = split_stats or {}
    redaction_stats = redaction_stats or {}
    manifest = manifest or {}
    split_counts = split_stats.get("counts") or {}
    facts: dict[str, Any] = {
        "dataset": recipe.name,
        "description": recipe.description,
        "kind": recipe.kind,
        "config_hash": manifest.get("config_hash"),
        # what identifies this version: config, code and each input's data version (content
        # hashes, so the card stays byte-identical for identical inputs)
        "code_version": version.get("code_version"),
        "input_data_versions": dict(sorted((version.get("inputs") or {}).items())),
        "label_method": recipe.label.method,
        "sources": _source_rows(recipe, sources),
        "pii": {
            "engine": "Microsoft Presidio",
            "entity_types": list(recipe.redact.entities),
            "score_threshold": recipe.redact.score_threshold,
            "placeholder": recipe.redact.placeholder,
            "entities": _sorted_counts(redaction_stats.get("entities")),
            "operators": dict(sorted((redaction_stats.get("operators") or {}).items())),
            "evaluation": redaction_stats.get("evaluation") or {},
            "warnings": list(redaction_stats.get("warnings") or []),
            "other": {
                k: v
                for k, v in sorted(redaction_stats.items())
                if k != "entities" and isinstance(v, (int, float)) and not isinstance(v, bool)
            },
        },
        "stages": [
            {
                "stage": s.get("stage"),
                "rows_in": s.get("rows_in"),
                "rows_kept": s.get("rows_kept"),
                "rows_rejected": s.get("rows_rejected"),
                "drops": _sorted_counts(s.get("drops")),
            }
            for s in (stage_counts or [])
        ],
        "labels": {
            "label_set": list(recipe.label.label_set),
            "descriptions": recipe.label.descriptions,
            "teachers": dict(label_stats.get("teachers") or {}),
            "distribution": _sorted_counts(label_stats.get("distribution")),
            "agreement": _sorted_counts(label_stats.get("agreement")),
        },
        "splits": {
            "counts": {s: split_counts[s] for s in SPLITS if s in split_counts},
            "label_counts": {
                s: _sorted_counts((split_stats.get("label_counts") or {})[s])
                for s in SPLITS
                if s in (split_stats.get("label_counts") or {})
            },
        },
        "exports": [
            {k: f.get(k) for k in ("path", "format", "split", "records", "bytes", "sha256")}
            for f in sorted(manifest.get("files", []), key=lambda f: f.get("path", ""))
        ],
        "evaluation": EVALUATION[recipe.kind],
    }
    facts["split_report"] = split_stats.get("report") or {}
    if manifest.get("rlhf"):  # examples and formats per RLHF step
        facts["rlhf_exports"] = manifest["rlhf"]
    facts["limitations"] = _limitations(facts)
    return facts


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------


def _save(fig: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    # No "Software" text chunk (it carries the matplotlib version) and no timestamps: the
    # bytes depend only on the data.
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    path.write_bytes(buffer.getvalue())


def _split_plot(facts: dict, path: Path) -> None:
    counts = facts["splits"]["counts"]
    label_counts = facts["splits"]["label_counts"]
    splits = list(counts)
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    if facts["kind"] == "classification" and label_counts:
        labels = sorted({label for per in label_counts.values() for label in per})
        bottoms = [0] * len(splits)
        for i, label in enumerate(labels):
            heights = [label_counts.get(s, {}).get(label, 0) for s in splits]
            ax.bar(splits, heights, bottom=bottoms, label=label, color=f"C{i % 10}")
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        ax.legend(title="label", fontsize="small")
    else:
        ax.bar(splits, [counts[s] for s in splits], color="C0")
    ax.set_title(f"{facts['dataset']}: records per split")
    ax.set_ylabel("records")
    fig.tight_layout()
    _save(fig, path)


def _label_plot(facts: dict, path: Path) -> None:
    distribution = facts["labels"]["distribution"]
    labels = list(distribution)
    fig = Figure(figsize=(6, 1.5 + 0.35 * max(len(labels), 2)))
    ax = fig.add_subplot()
    colors = [f"C{i % 10}" for i in range(len(labels))]
    ax.barh(labels, [distribution[k] for k in labels], color=colors)
    ax.invert_yaxis()
    ax.set_title(f"{facts['dataset']}: records per label")
    ax.set_xlabel("records")
    fig.tight_layout()
    _save(fig, path)


# --------------------------------------------------------------------------------------------
# markdown
# --------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _share(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "—"


def _erasure_line(erasure: dict) -> str:
    line = (f"Erasure requests on these sources: {erasure.get('requests', 0)} "
            f"({erasure.get('fulfilled', 0)} fulfilled, {erasure.get('pending', 0)} pending).")
    if erasure.get("unkeyed"):
        line += (f" **{erasure['unkeyed']} identify their data subject by an UNKEYED hash** "
                 "(SHA-256, confirmable from a list of e-mails); re-request them with "
                 "`FTDATA_SUBJECT_HASH_KEY` set.")
    return line


def _markdown(facts: dict, plots: list[str]) -> str:
    kind = facts["kind"]
    lines = [
        "---",
        f"pretty_name: {facts['dataset']}",
        f"task_categories: [{HF_TASK[kind]}]",
        f"tags: [fine-tuning, {kind}]",
        "---",
        "",
        f"# Dataset card: {facts['dataset']}",
        "",
        facts["description"] or "_No description given in the recipe._",
        "",
        "## Summary",
        "",
    ]
    total = sum(facts["splits"]["counts"].values())
    lines += _table(
        ["field", "value"],
        [
            ["kind", kind],
            ["records", total],
            ["config hash", facts["config_hash"]],
            ["code version", facts.get("code_version")],
            *[[f"input data version: {src}", dv]
              for src, dv in facts.get("input_data_versions", {}).items()],
            ["export formats", ", ".join(sorted({f["format"] for f in facts["exports"]}))],
        ],
    )
    lines += ["## Sources", ""]
    lines += _table(
        ["source", "role", "owner", "licence", "classification", "contains PII",
         "retention (days)"],
        [
            [s["name"], s["role"], s["owner"], s["licence"], s["classification"],
             s["contains_pii"], s["retention_days"]]
            for s in facts["sources"]
        ],
    )
    pii = facts["pii"]
    lines += [
        "## PII handling",
        "",
        f"Text fields were scanned with {pii['engine']} for: {', '.join(pii['entity_types'])} "
        f"(score threshold {pii['score_threshold']}). Each detected span was replaced by the "
        "operator of its entity type, as listed below (types without an operator of their "
        f"own get the placeholder `{pii['placeholder']}`, where `{{entity}}` is the type, for "
        "example `" + pii["placeholder"].replace("{entity}", "EMAIL_ADDRESS") + "`).",
        "",
    ]
    if pii["entities"]:
        lines += _table(
            ["entity type", "operator applied", "spans replaced"],
            [[k, pii["operators"].get(k), v] for k, v in pii["entities"].items()],
        )
    else:
        lines += ["No PII spans were detected.", ""]
    lines += _evaluation_lines(pii["evaluation"])
    lines += [f"- warning: {w}" for w in pii["warnings"]] + ([""] if pii["warnings"] else [])
    if pii["other"]:
        lines += [f"- {k.replace('_', ' ')}: {v}" for k, v in pii["other"].items()] + [""]
    lines += ["## Records per stage", ""]
    if facts["stages"]:
        lines += _table(
            ["stage", "in", "kept", "rejected", "drop reasons"],
            [
                [s["stage"], s["rows_in"], s["rows_kept"], s["rows_rejected"],
                 ", ".join(f"{r}: {n}" for r, n in s["drops"].items()) or None]
                for s in facts["stages"]
            ],
        )
    else:
        lines += ["No stage counts recorded.", ""]
    labels = facts["labels"]
    if kind == "classification" or labels["distribution"]:
        lines += ["## Labels", ""]
        n_labels = sum(labels["distribution"].values())
        described = labels.get("descriptions") or {}
        lines += _table(
            ["label", "records", "share", *(["description"] if described else [])],
            [[k, v, _share(v, n_labels), *([described.get(k)] if described else [])]
             for k, v in labels["distribution"].items()],
        )
        if labels["agreement"]:
            lines += _table(
                ["agreement measure", "value"], [[k, v] for k, v in labels["agreement"].items()]
            )
        if LABEL_PLOT in plots:
            lines += [f"![Records per label]({LABEL_PLOT})", ""]
    if labels.get("teachers"):
        lines += ["## Teacher models", "",
                  "Every response was written by a teacher model (`teacher` in the export "
                  "provenance):", ""]  # fmt: skip
        lines += _table(["teacher (model@version)", "examples"],
                        [[t, n] for t, n in labels["teachers"].items()])  # fmt: skip
    lines += ["## Splits", ""]
    lines += _table(
        ["split", "records", "share"],
        [[s, n, _share(n, total)] for s, n in facts["splits"]["counts"].items()],
    )
    label_counts = facts["splits"]["label_counts"]
    if label_counts:
        all_labels = sorted({label for per in label_counts.values() for label in per})
        lines += _table(
            ["split", *all_labels],
            [[s, *(per.get(label, 0) for label in all_labels)] for s, per in label_counts.items()],
        )
    lines += [
        "Records sharing a conversation, a duplicate cluster or a content hash are kept in one "
        "split; so are those with the same first user turn or near-duplicate inputs, as far as "
        "the group size cap allows. What still crosses is listed under Leakage.",
        "",
        f"![Records per split]({SPLIT_PLOT})",
        "",
    ]
    lines += split_markdown(facts["split_report"], facts["recipe"], plots,
                            exported=facts.get("rlhf_exports"))
    lines += [
        "## Export files",
        "",
    ]
    lines += _table(
        ["path", "format", "split", "records", "bytes", "sha256"],
        [[f["path"], f["format"], f["split"], f["records"], f["bytes"], f"`{f['sha256']}`"]
         for f in facts["exports"]],
    )
    evaluation = facts["evaluation"]
    lines += [
        "## Lineage and erasure",
        "",
        "Every exported line carries its record `id` and provenance (`source`, `source_key`), in "
        "the line itself or in the line-aligned `<split>.provenance.jsonl` beside strict "
        "formats. `ftdata lineage <id>` traces a line back to its raw row and every stage's "
        "decision; `ftdata lineage --source <name> [--key <key>]` lists the export files "
        "holding a source's records. `ftdata erasure request` removes rows from the next "
        "materialization on (see the catalog's audit log: `ftdata catalog audit`).",
        "",
        _erasure_line(facts.get("erasure") or {}),
        "",
        "## Evaluation",
        "",
        f"Task: {evaluation['task']}. Suggested metrics: {', '.join(evaluation['metrics'])}.",
        "",
        evaluation["notes"],
        "",
        "## Known limitations",
        "",
    ]
    lines += [f"- {note}" for note in facts["limitations"]] + [""]
    return "\n".join(lines)


def render_card(
    recipe: RecipeConfig,
    sources: dict[str, SourceConfig],
    stage_counts: list[dict],
    label_stats: dict,
    split_stats: dict,
    redaction_stats: dict,
    manifest: dict,
    out_dir: Path,
    version: dict | None = None,
    erasure: dict | None = None,
) -> dict:
    """Write README.md, card.json and the plots into ``out_dir``; return their paths.

    ``erasure``: counts of the erasure requests on the card's sources (``requests``,
    ``pending``, ``fulfilled``, ``unkeyed``), from the catalog.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    facts = _facts(
        recipe, sources, stage_counts, label_stats, split_stats, redaction_stats, manifest,
        version,
    )
    facts["erasure"] = erasure or {"requests": 0, "pending": 0, "fulfilled": 0, "unkeyed": 0}
    plots = [SPLIT_PLOT]
    _split_plot(facts, out_dir / SPLIT_PLOT)
    if recipe.kind == "classification":
        plots.append(LABEL_PLOT)
        _label_plot(facts, out_dir / LABEL_PLOT)
    plots += split_plots(facts["split_report"], recipe, out_dir, _save)
    facts["plots"] = plots
    markdown_path = out_dir / MARKDOWN
    markdown_path.write_text(_markdown({**facts, "recipe": recipe}, plots), encoding="utf-8")
    json_path = out_dir / JSON
    json_path.write_text(json.dumps(facts, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return {"markdown": markdown_path, "json": json_path, "plots": [out_dir / p for p in plots]}
