"""Dataset card sections about the split stage's measurements.

Ratios (configured vs actual), RLHF steps, leakage, tokens, size targets, representativeness against
production and bias. Each section is a function of the split stage's stats (``report``) and
returns Markdown lines; plots are written beside the card.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ftdata_pipeline.config.models import RLHF_STEPS, RecipeConfig
from ftdata_pipeline.records import SPLITS


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def small_splits(report: dict, recipe: RecipeConfig) -> list[str]:
    """Validation/test splits too small for their metric (records or groups)."""
    cfg = recipe.split
    flags = []
    for name in ("validation", "test"):
        if cfg.ratios.get(name, 0) == 0:
            continue
        n = (report.get("records") or {}).get(name, 0)
        preference = recipe.kind == "preference"
        groups = (report.get("prompts" if preference else "groups") or {}).get(name, 0)
        unit = "prompts" if preference else "groups"
        if n < cfg.min_eval_records:
            flags.append(f"{name}: {n} records < {cfg.min_eval_records}")
        if groups < cfg.min_eval_groups:
            flags.append(f"{name}: {groups} {unit} < {cfg.min_eval_groups}")
    return flags


def ratio_section(report: dict, recipe: RecipeConfig) -> list[str]:
    ratios = report.get("ratios")
    if not ratios:
        return []
    lines = ["### Configured vs actual split", ""]
    lines += table(
        ["split", "configured", "actual", "records", "groups"],
        [[s, _pct(ratios["configured"][s]), _pct(ratios["actual"][s]),
          (report.get("records") or {}).get(s, 0), (report.get("groups") or {}).get(s, 0)]
         for s in SPLITS],
    )
    strata = report.get("stratify_by") or []
    lines += [
        f"Largest deviation {_pct(ratios['max_deviation'])} (tolerance "
        f"{_pct(ratios['tolerance'])}: {'within' if ratios['within_tolerance'] else 'OUTSIDE'}). "
        f"Stratified by: {', '.join(strata) if strata else 'nothing (one stratum)'}; "
        f"{report.get('pinned_records', 0)} record(s) of sources other datasets read keep "
        "their hash split, so they fall in the same split in every dataset.",
        "",
    ]
    flags = small_splits(report, recipe)
    if flags:
        lines += ["Too small for a reliable metric: " + "; ".join(flags) + ".", ""]
    return lines


def rlhf_section(report: dict | None, exported: dict | None = None) -> list[str]:
    """The RLHF steps: prompts, configured vs actual prompt share, pairs per split and, once
    exported, examples per split and formats (``exported``: the manifest's ``rlhf``)."""
    if not report:
        return []
    steps = report["steps"]
    split_cells = " / ".join(SPLITS)
    headers = ["step", "prompts", "configured share", "actual share", f"pairs ({split_cells})"]
    if exported is not None:
        headers += [f"examples ({split_cells})", "formats"]
    rows = []
    for step in [s for s in RLHF_STEPS if s in steps]:  # stored stats come back key-sorted
        c = steps[step]
        row = [step, c["prompts"], _pct(c["configured_share"]), _pct(c["actual_share"]),
               " / ".join(str(c["pairs"][s]) for s in SPLITS)]
        if exported is not None:
            done = exported.get(step) or {}
            row += [" / ".join(str((done.get("examples") or {}).get(s, 0)) for s in SPLITS),
                    ", ".join(done.get("formats") or []) or "—"]
        rows.append(row)
    leaks = report.get("leaks") or {}
    lines = ["### RLHF steps", "",
             "Each prompt, with every prompt of its split group, is in exactly one step: "
             "SFT (prompt and best response as a chat example), reward (the pairs, for a "
             "reward model or DPO), RL (the prompt alone, for PPO/GRPO). Inside each step the "
             "train/validation/test split applies.", ""]
    lines += table(headers, rows)
    lines += [
        f"Largest share deviation {_pct(report['max_deviation'])} (tolerance "
        f"{_pct(report['tolerance'])}: "
        f"{'within' if report['within_tolerance'] else 'OUTSIDE'}). Keys in two steps: "
        f"{sum(leaks.values())} ({', '.join(f'{k} {v}' for k, v in leaks.items())}).",
        "",
    ]
    return lines


def leakage_section(report: dict) -> list[str]:
    near = report.get("near_duplicates")
    if near is None:
        return []
    prompts = report.get("prompt_leakage") or {}
    grouping = report.get("grouping") or {}
    cross = report.get("cross_dataset") or {}
    held = near.get("eval_with_train_neighbour") or {}
    lines = ["### Leakage", ""]
    lines += table(
        ["check", "finding"],
        [
            ["shared conversation / duplicate cluster / content hash across splits",
             sum((report.get("leakage") or {}).values())],
            [f"train / held-out pairs at Jaccard >= {near['threshold']} "
             f"(word {near['shingle_words']}-shingles"
             f"{'; LSH candidates, a lower bound' if near.get('search') == 'lsh' else ''})",
             near["pairs"]],
            *[[f"{s} examples with such a train neighbour", n] for s, n in held.items()],
            ["first user turns in train and held out with different answers",
             prompts.get("prompts", 0)],
            ["groups merged by same prompt or similarity"
             + (" (near duplicates from LSH candidates)"
                if grouping.get("near_duplicate_search") == "lsh" else ""),
             grouping.get("merged", 0)],
            ["similar pairs left apart (group size cap / pinned to different splits)",
             f"{grouping.get('left_apart_by_size_cap', 0)} / "
             f"{grouping.get('left_apart_by_pinned_split', 0)}"],
            *[[f"records shared with {d} in another split (train/test)",
               f"{v['different_split']} of {v['shared_records']} ({v['train_test']})"]
              for d, v in sorted(cross.items())],
        ],
    )
    return lines


def token_section(report: dict) -> list[str]:
    tokens = report.get("tokens")
    if not tokens:
        return []
    lines = ["## Tokens", "",
             f"Counted with `{tokens['tokenizer']}`, including the chat template's tokens for "
             "chat examples (a preference pair counts both sequences).", ""]
    per = tokens["per_split"]
    lines += table(
        ["split", "examples", "tokens", "mean", "median", "p95", "max"],
        [[s, per[s]["examples"], per[s]["total"], per[s]["mean"], per[s]["p50"], per[s]["p95"],
          per[s]["max"]] for s in SPLITS if s in per],
    )
    if tokens.get("max_tokens"):
        lines += [f"Limit: {tokens['max_tokens']} tokens per example, policy "
                  f"`{tokens['policy']}`: {tokens['over_limit']} over the limit, "
                  f"{tokens['truncated']} truncated, {tokens['dropped']} dropped.", ""]
    lines += [f"**Training cost:** {per.get('train', {}).get('total', 0):,} train tokens × "
              f"{tokens['epochs']} epochs = {tokens['training_tokens']:,} tokens.", ""]
    return lines


def size_section(report: dict) -> list[str]:
    size = report.get("size")
    if not size:
        return []
    lines = ["### Size target", ""]
    bounds = (f"min_records {_cell(size['min_records'])}, "
              f"max_records {_cell(size['max_records'])}")
    if size["shortfall"]:
        lines += [f"**{size['records']} examples: {size['shortfall']} short of the minimum** "
                  f"({bounds}); the blocking size_target check failed.", ""]
    else:
        lines += [f"{size['records']} examples ({bounds}).", ""]
    down = size.get("downsampling")
    if down:
        lines += [f"Downsampled by {', '.join(down['attributes']) or 'hash order'}: "
                  f"{down['dropped']} records dropped (rule size_target).", ""]
        lines += table(
            ["slice", "before", "target", "after"],
            [[c, _pct(v["before"]), _pct(v["target"]), _pct(v["after"])]
             for c, v in down["proportions"].items()],
        )
    return lines


REPRESENTATIVENESS_PLOT = "representativeness.png"


def representativeness_section(report: dict, plots: list[str]) -> list[str]:
    rep = report.get("representativeness")
    if not rep:
        return []
    lines = ["## Representativeness", "",
             f"Compared with the reference sample of production inputs `{rep['source']}` "
             "(PSI: population stability index; JS: Jensen-Shannon divergence in bits).", ""]
    lines += table(
        ["attribute", "split", "PSI", "JS", "status"],
        [[r["attribute"], r["split"], r["psi"], r["js"], r["status"]]
         for r in rep["distribution"]],
    )
    if REPRESENTATIVENESS_PLOT in plots:
        lines += [f"![Dataset vs production]({REPRESENTATIVENESS_PLOT})", ""]
    cover = rep["coverage"]
    lines += ["### Coverage", "",
              f"{_pct(cover['coverage'])} of {cover['reference']} production inputs have a "
              f"train example at TF-IDF cosine >= {cover['threshold']} (mean best similarity "
              f"{cover.get('mean_best_similarity', 0)}). Least covered:", ""]
    lines += table(["production input id", "best similarity"],
                   [[c["id"], c["similarity"]] for c in cover["least_covered"]])
    if rep["edge_cases"]:
        lines += ["### Edge cases", ""]
        lines += table(
            ["edge case", "train examples", "train share", "production share", "minimum", "ok"],
            [[e["name"], e["train"], _pct(e["train_share"]), _pct(e["reference_share"]),
              _pct(e["min_share"]), e["ok"]] for e in rep["edge_cases"]],
        )
    return lines


def bias_section(report: dict) -> list[str]:
    bias = report.get("bias")
    if not bias:
        return []
    lines = ["## Bias", "",
             "Examples mentioning each group of a sensitive attribute (input or answer), per "
             "split; the ratio of the most to the least mentioned group is judged against "
             "max_ratio when enough examples mention one.", ""]
    for attr, spec in bias.items():
        groups = sorted(next(iter(spec["splits"].values()))["mentions"])
        lines += [f"**{attr}** (max ratio {spec['max_ratio']}, judged from "
                  f"{spec['min_mentions']} mentioning examples)", ""]
        lines += table(
            ["split", "examples", *groups, "ratio", "status"],
            [[s, v["examples"], *(f"{v['mentions'][g]} ({_pct(v['shares'][g])})" for g in groups),
              v["ratio"], v["status"]]
             for s, v in sorted(spec["splits"].items(), key=lambda kv: SPLITS.index(kv[0]))],
        )
    return lines


def split_markdown(report: dict, recipe: RecipeConfig, plots: list[str] | None = None, *,
                   exported: dict | None = None) -> list[str]:
    """Every split-stage section of the card, in order (``exported``: the manifest's
    ``rlhf``, examples and formats per RLHF step)."""
    lines: list[str] = []
    for section in (ratio_section(report, recipe), rlhf_section(report.get("rlhf"), exported),
                    size_section(report),
                    leakage_section(report), token_section(report),
                    representativeness_section(report, plots or []), bias_section(report)):
        lines += section
    return lines


def split_plots(report: dict, recipe: RecipeConfig, out_dir: Path,
                save: Callable[[Figure, Path], None]) -> list[str]:
    """Plots of the split-stage sections written into ``out_dir`` with ``save`` (file names)."""
    rep = report.get("representativeness")
    if not rep or not rep["distribution"]:
        return []
    attributes = list(dict.fromkeys(r["attribute"] for r in rep["distribution"]))
    fig = Figure(figsize=(7, 2.8 * len(attributes)))
    for i, attr in enumerate(attributes):
        ax = fig.add_subplot(len(attributes), 1, i + 1)
        rows = [r for r in rep["distribution"] if r["attribute"] == attr]
        bins = list(rows[0]["reference"])
        series = [("production", rows[0]["reference"])] + [(r["split"], r["dataset"]) for r in rows]
        width = 0.8 / len(series)
        for j, (name, dist) in enumerate(series):
            ax.bar([k + j * width for k in range(len(bins))], [dist.get(b, 0) for b in bins],
                   width=width, label=name, color=f"C{j}")
        ax.set_xticks([k + 0.4 - width / 2 for k in range(len(bins))], bins, rotation=30,
                      ha="right", fontsize="small")
        psi_text = ", ".join(f"{r['split']} PSI {r['psi']:.2f} JS {r['js']:.2f}" for r in rows)
        ax.set_title(f"{attr}: {psi_text}", fontsize="small")
        ax.set_ylabel("share")
        ax.legend(fontsize="small")
    fig.suptitle(f"{recipe.name} vs production ({rep['source']})")
    fig.tight_layout()
    save(fig, out_dir / REPRESENTATIVENESS_PLOT)
    return [REPRESENTATIVENESS_PLOT]
