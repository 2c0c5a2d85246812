"""PII detection quality on data the project did not write, beside a plain Presidio baseline.

    python benchmarks/pii_evaluation.py [--n 2000] [--neg 1000] [--recipe support_assistant ...]

Sets (see ``ftdata_pipeline/stages/pii/independent_eval.py``):
- presidio-evaluator: ``--n`` sentences from presidio-evaluator's generator (its templates and
  fake identities, fixed seed);
- project: the project's own generated set (``stages/pii/evaluation.py``), for comparison;
- negative: ``--neg`` records of real text without personal data (installed packages' long
  descriptions: prose and code) and look-alikes (regions, versions, timestamps, ids, subject
  lines).

Redactors, same sets, same run:
- **plain Presidio**: ``AnalyzerEngine.analyze`` + ``AnonymizerEngine.anonymize`` per text, the
  default recognizers, the same offline spaCy model and NER configuration, the recipe's entity
  list, threshold and allow list (``benchmarks/pii_benchmark.PlainPresidio``);
- **ours**: ``PiiRedactor`` with the recipe's settings (in-process, one worker, so the timing
  compares analysis work, not cores).

Writes benchmarks/results/pii_independent.md and records the figures of each recipe's
detection configuration in benchmarks/results/pii_evaluation.json (read by the redacted stage
for the card).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pii_benchmark import PlainPresidio  # noqa: E402

from ftdata_pipeline.config.loader import load_project  # noqa: E402
from ftdata_pipeline.stages.pii import independent_eval as ie  # noqa: E402
from ftdata_pipeline.stages.pii.eval_record import record  # noqa: E402
from ftdata_pipeline.stages.redact import PiiRedactor, clear_memos  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


class _Plain(PlainPresidio):
    def redact_texts(self, texts):
        out_texts, out_spans = [], []
        for text in texts:
            results = self._analyze(text)
            out_texts.append(self.anonymizer.anonymize(text, results, self.ops).text)
            out_spans.append([(r.entity_type, r.start, r.end, r.score) for r in results])
        return out_texts, out_spans


def run_sets(redactor, sets) -> dict:
    """Scores and seconds of one redactor on every set."""
    out = {}
    for name, data in sets.items():
        t0 = time.perf_counter()
        if name == "negative":
            _, spans = redactor.redact_texts(data)
            secs = time.perf_counter() - t0
            out[name] = (ie.score_negative(data, spans), secs, len(data))
        else:
            redacted, spans = redactor.redact_texts([ex.text for ex in data])
            secs = time.perf_counter() - t0
            out[name] = (ie.score(data, spans, redacted), secs, len(data))
    return out


def figures(results: dict) -> dict:
    """The summary figures recorded for the card."""
    out = {}
    for name, (sc, _, n) in results.items():
        if name == "negative":
            out[name] = {"records": n, "words_kept": round(sc.words_kept_share, 3),
                         "records_untouched": round(sc.untouched_share, 3)}
        else:
            row = {"sentences": n, "pattern_recall": round(sc.recall(ie.PATTERN_ENTITIES), 3),
                   "pattern_leak_free": round(sc.leak_free(ie.PATTERN_ENTITIES), 3)}
            for t in ("PERSON", "STREET_ADDRESS"):
                if t in sc.per_type and sc.per_type[t].gold:
                    row[f"{t}_recall"] = round(sc.per_type[t].recall, 3)
                    row[f"{t}_precision"] = round(sc.per_type[t].precision, 3)
                    row[f"{t}_leak_free"] = round(sc.per_type[t].leak_free, 3)
            out[name] = row
    return out


def _type_table(name: str, ours, plain) -> list[str]:
    lines = [
        f"### {name}: per entity type (ours / plain Presidio)",
        "",
        "| entity | gold | recall | precision | leak-free | plain recall | plain precision "
        "| plain leak-free |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t, s in ours.per_type.items():
        p = plain.per_type.get(t, ie.TypeScore())
        if not s.gold and not s.predicted:
            continue
        gold = f"{s.gold}" if s.gold else "0"
        rec = f"{s.recall:.3f}" if s.gold else "-"
        leak = f"{s.leak_free:.3f}" if s.gold else "-"
        prec = f"{s.precision:.3f} ({s.predicted})"
        p_rec = f"{p.recall:.3f}" if p.gold else "-"
        p_leak = f"{p.leak_free:.3f}" if p.gold else "-"
        lines.append(f"| {t} | {gold} | {rec} | {prec} | {leak} | {p_rec} | "
                     f"{p.precision:.3f} ({p.predicted}) | {p_leak} |")
    extra = [t for t in plain.per_type if t not in ours.per_type and plain.per_type[t].predicted]
    for t in extra:
        p = plain.per_type[t]
        lines.append(f"| {t} | {p.gold} | - | - | - | {p.recall:.3f} | {p.precision:.3f} "
                     f"({p.predicted}) | - |")
    return lines + [""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="presidio-evaluator sentences")
    parser.add_argument("--project-n", type=int, default=1000, help="project set sentences")
    parser.add_argument("--neg", type=int, default=1000, help="negative records")
    parser.add_argument("--recipe", action="append", default=None,
                        help="recipe(s) whose redact settings are evaluated")
    args = parser.parse_args()
    recipes = args.recipe or ["support_assistant"]
    project = load_project()

    sets = {
        "presidio-evaluator": ie.presidio_evaluator_examples(args.n),
        "project": ie.project_examples(args.project_n),
        "negative": ie.negative_examples(args.neg),
    }
    lines = [
        "# PII detection on independent data",
        "",
        f"`python benchmarks/pii_evaluation.py --n {args.n} --project-n {args.project_n} "
        f"--neg {args.neg}` on {platform.machine()}, Python {platform.python_version()}.",
        "",
        f"- **presidio-evaluator**: {args.n} sentences from presidio-evaluator 0.3.2's own "
        f"generator, templates and fake identities (seed {ie.SEED});",
        f"- **project**: {args.project_n} sentences of the project's own generated set;",
        f"- **negative**: {args.neg} records without personal data: paragraphs and code blocks "
        "of the installed packages' long descriptions (~70%) and regions, versions, "
        "timestamps, ids, log lines, subject lines (~30%).",
        "",
        "Span overlap: a gold span is found when a prediction of its type overlaps it. Leak-free: "
        "the redacted text no longer holds the value, its digits or its distinctive words. "
        "Plain Presidio: `AnalyzerEngine.analyze` per text with the default recognizers, the "
        "same spaCy model, entity list, threshold and allow list. Both run in one process; "
        "texts/s compares the analysis work (the pipeline also spreads it over cores).",
        "",
    ]
    done: dict[str, str] = {}
    for name in recipes:
        cfg = project.recipes[name].redact.model_copy(update={"workers": 1})
        clear_memos()
        ours_redactor = PiiRedactor(cfg)
        ours_redactor.redact_texts(["warm-up text, Jan at 0612 345 67 89"])  # models, lexicons
        ours = run_sets(ours_redactor, sets)
        # the same settings with the other NER scope: what reading sentences costs in recall
        alt_scope = "text" if cfg.ner_scope == "sentence" else "sentence"
        clear_memos()
        alt_redactor = PiiRedactor(cfg.model_copy(update={"ner_scope": alt_scope}))
        alt_redactor.redact_texts(["warm-up text, Jan at 0612 345 67 89"])
        alt = run_sets(alt_redactor, sets)
        plain_redactor = _Plain(cfg)
        plain_redactor.redact_texts(["warm-up text"])
        plain = run_sets(plain_redactor, sets)
        key = record(project.recipes[name].redact, {
            "sets": figures(ours),
            "measured_with": f"benchmarks/pii_evaluation.py --n {args.n} --neg {args.neg}",
        })
        if key in done:
            lines += [f"Recipe `{name}`: same detection configuration as `{done[key]}`.", ""]
            continue
        done[key] = name
        lines += [f"## Recipe `{name}` (detection configuration `{key}`)", ""]
        lines += [
            "| set | redactor | pattern recall | PERSON recall | STREET_ADDRESS recall "
            "| pattern leak-free | texts/s |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for set_name in ("presidio-evaluator", "project"):
            for who, res in ((f"ours (ner_scope: {cfg.ner_scope})", ours),
                             (f"ours, ner_scope: {alt_scope}", alt), ("plain Presidio", plain)):
                sc, secs, n = res[set_name]
                person = sc.per_type.get("PERSON", ie.TypeScore())
                street = sc.per_type.get("STREET_ADDRESS", ie.TypeScore())
                street_recall = f"{street.recall:.3f}" if street.gold else "-"
                lines.append(
                    f"| {set_name} | {who} | {sc.recall(ie.PATTERN_ENTITIES):.3f} | "
                    f"{person.recall:.3f} | {street_recall} | "
                    f"{sc.leak_free(ie.PATTERN_ENTITIES):.3f} | {n / secs:.0f} |"
                )
        lines += ["", "| negative set | redactor | words kept | records untouched | "
                  "placeholders by type | texts/s |", "|---|---|---:|---:|---|---:|"]
        for who, res in ((f"ours (ner_scope: {cfg.ner_scope})", ours),
                         (f"ours, ner_scope: {alt_scope}", alt), ("plain Presidio", plain)):
            sc, secs, n = res["negative"]
            types = ", ".join(f"{t} {c}" for t, c in sc.placeholders.items()) or "none"
            lines.append(f"| negative | {who} | {sc.words_kept_share:.3f} | "
                         f"{sc.untouched_share:.3f} | {types} | {n / secs:.0f} |")
        fails = ours["presidio-evaluator"][0].failures() + ours["negative"][0].failures()
        lines += ["", "Targets (presidio-evaluator: pattern recall >= 0.98, each pattern type "
                  ">= 0.95, PERSON >= 0.92, STREET_ADDRESS >= 0.90; negative: words kept >= "
                  "0.98, records untouched >= 0.90): "
                  + ("met." if not fails else "missed: " + "; ".join(fails) + "."), ""]
        for set_name in ("presidio-evaluator", "project"):
            lines += _type_table(set_name, ours[set_name][0], plain[set_name][0])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pii_independent.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
