"""Datasets that read a common source must split its records alike.

A record of a source that several recipes read is pinned (``split.shared_sources: pin``, the
default): its split is the hash of its group over the whole source, and both the hash and the
group depend on the recipe's split settings (seed, ratios, grouping). Recipes that differ in
one of them put the same record, or the same prompt, in different splits: a model trained on
one dataset is then tested on its own training data by the other. ``ftdata validate`` says so
before any run: as an error where one of the recipes makes the ``cross_dataset_splits`` check
blocking (a run would fail on it), else as a note. So does a recipe that lets stratification
move a shared source's records (``shared_sources: stratify``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ftdata_pipeline.config.models import ProjectConfig, SplitConfig

# The settings a pinned record's split depends on, by the recipe key that holds them.
PIN_SETTINGS: dict[str, Callable[[SplitConfig], Any]] = {
    "split.seed": lambda s: s.seed,
    "split.ratios": lambda s: {k: s.ratios[k] for k in sorted(s.ratios)},
    "split.group_prompts": lambda s: s.group_prompts,
    "split.group_near_duplicates": lambda s: s.group_near_duplicates,
    "split.max_group_fraction": lambda s: s.max_group_fraction,
    "split.leakage.shingle_words": lambda s: s.leakage.shingle_words,
}


def shared_split_problems(project: ProjectConfig) -> tuple[list[str], list[str]]:
    """(errors, notes): per shared source and setting, the pinning recipes that disagree."""
    errors: list[str] = []
    notes: list[str] = []
    for source, names in sorted(project.readers().items()):
        if len(names) < 2:
            continue
        readers = sorted(names)
        blocking = [n for n in readers
                    if project.recipes[n].split.leakage.cross_dataset == "block"]

        def report(message: str) -> None:
            if blocking:
                errors.append(f"{message} ({', '.join(blocking)} sets "
                              "split.leakage.cross_dataset: block, so a run would fail)")
            else:
                notes.append(message)

        free = [n for n in readers if project.recipes[n].split.shared_sources == "stratify"]
        if free:
            report(f"source {source!r} is read by datasets {', '.join(readers)}, and "
                   f"{', '.join(free)} set split.shared_sources: stratify: stratification "
                   "can move its records to other splits than the other datasets give them")
        pinned = [n for n in readers if n not in free]
        if len(pinned) < 2:
            continue
        for key, setting in PIN_SETTINGS.items():
            values = {n: setting(project.recipes[n].split) for n in pinned}
            if len({json.dumps(v) for v in values.values()}) == 1:
                continue
            shown = "; ".join(f"{n}: {json.dumps(values[n])}" for n in pinned)
            report(
                f"source {source!r} is read by datasets {', '.join(pinned)} "
                f"(split.shared_sources: pin) with different {key} ({shown}): the same record "
                f"or prompt can be train in one and test in another; give them the same {key}"
            )
    return errors, notes
