"""The NER pipe with thinc's BLIS products against numpy's BLAS, in one process, one thread.

    python benchmarks/ner_blas_benchmark.py [--rounds 3]

The redacted stage runs spaCy's NER with numpy's BLAS (``engine._numpy_matmul``) instead of
thinc's default BLIS. This measures both on the same sentences, alternating rounds so that a
busy machine weighs on both alike: the distinct sentences (as the stage cuts them) of
presidio-evaluator's generated sentences, of the installed packages' long descriptions, and of
generated support tickets. It also checks that both give the same entities.

Writes benchmarks/results/ner_blas.md. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = ROOT / "benchmarks" / "results"


def corpora() -> dict[str, list[str]]:
    from generate_records import tickets

    from ftdata_pipeline.stages.pii import independent_eval
    from ftdata_pipeline.stages.pii.sentence_ner import sentences

    rows = list(tickets(1500))
    texts = {
        "presidio-evaluator sentences": [
            ex.text for ex in independent_eval.presidio_evaluator_examples(1500)],
        "package long descriptions": independent_eval.package_text_blocks(),
        "generated support tickets": [t for r in rows for t in (r["body"], r["agent_reply"]) if t],
    }
    return {
        name: list(dict.fromkeys(s for t in ts for _, s in sentences(t) if s.strip()))
        for name, ts in texts.items()
    }


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from thinc.api import NumpyOps

    from ftdata_pipeline.stages.pii.engine import multiply_with, nlp_engine, one_blas_thread

    nlp = nlp_engine("en").get_nlp("en")
    routes = {"BLIS (thinc's default)": NumpyOps(use_blis=True),
              "numpy BLAS (the stage's)": NumpyOps(use_blis=False)}
    rows = []
    for corpus, sents in corpora().items():
        seconds: dict[str, list[float]] = {name: [] for name in routes}
        found: dict[str, list] = {}
        with one_blas_thread():
            list(nlp.pipe(sents[:100]))  # warm both routes' caches alike
            for _ in range(args.rounds):
                for name, ops in routes.items():
                    multiply_with(nlp, ops)
                    start = time.perf_counter()
                    ents = [[(e.start_char, e.end_char, e.label_) for e in doc.ents]
                            for doc in nlp.pipe(sents, batch_size=128)]
                    seconds[name].append(time.perf_counter() - start)
                    found[name] = ents
        same = len({repr(v) for v in found.values()}) == 1
        base = statistics.median(seconds["BLIS (thinc's default)"])
        for name, secs in seconds.items():
            med = statistics.median(secs)
            rows.append((corpus, len(sents), name, med, len(sents) / med, base / med, same))
        print(corpus, {k: [round(x, 2) for x in v] for k, v in seconds.items()}, "same:", same)
    multiply_with(nlp, routes["numpy BLAS (the stage's)"])

    lines = [
        "# NER pipe: BLIS against numpy's BLAS",
        "",
        f"`python benchmarks/ner_blas_benchmark.py --rounds {args.rounds}` on "
        f"{_cpu()}, Python {platform.python_version()}; "
        "one process, one BLAS thread, median of the alternated rounds.",
        "",
        "| sentences of | distinct sentences | products by | seconds | sentences/s "
        "| speed-up | same entities |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for corpus, n, name, med, rate, speed, same in rows:
        lines.append(f"| {corpus} | {n:,} | {name} | {med:.2f} | {rate:,.0f} | {speed:.2f}x "
                     f"| {'yes' if same else 'NO'} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ner_blas.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
