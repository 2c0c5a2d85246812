"""Cross-checks of partitioned sources against the recipes that read them.

A partitioned recipe runs its ``raw``, ``curated`` and ``redacted`` assets once per partition,
so every source it reads must be cut the same way: all partitioned or none, one partition kind,
and for ``by: file`` a single source (a file belongs to one source's folder; two folders have no
common partition keys). Errors name the recipe file and the config key.
"""

from __future__ import annotations

from pathlib import Path

from ftdata_pipeline.config.models import RecipeConfig


def partition_errors(file: Path, recipe: RecipeConfig, sources: dict) -> list[str]:
    known = [(i, s) for i, s in enumerate(recipe.sources) if s in sources]
    parted = [(i, s) for i, s in known if sources[s].partition is not None]
    if not parted:
        return _auxiliary_errors(file, recipe, sources)
    errors = []
    plain = [(i, s) for i, s in known if sources[s].partition is None]
    for i, src in plain:
        errors.append(
            f"{file}: sources.{i}: {src!r} is not partitioned, but "
            f"{', '.join(repr(s) for _, s in parted)} is (sources.<name>.partition); a recipe "
            "reads either only partitioned sources or none"
        )
    first = sources[parted[0][1]].partition
    for i, src in parted[1:]:
        other = sources[src].partition
        if other != first:
            errors.append(
                f"{file}: sources.{i}: {src!r} is partitioned {other.model_dump(mode='json')}, "
                f"but {parted[0][1]!r} {first.model_dump(mode='json')}; every partitioned "
                "source of a recipe needs the same partition setting"
            )
        elif other.by == "file":
            errors.append(
                f"{file}: sources.{i}: a recipe reads one source partitioned by file "
                f"({parted[0][1]!r} already is); its files are its partitions"
            )
    if first.by == "file" and recipe.schedule is not None:
        errors.append(
            f"{file}: schedule: a dataset partitioned by file runs when a file lands (its "
            "source's landing sensor), not on a schedule; remove 'schedule'"
        )
    return errors + _auxiliary_errors(file, recipe, sources)


def _auxiliary_errors(file: Path, recipe: RecipeConfig, sources: dict) -> list[str]:
    """Annotation, teacher and reference sources are read whole: they may not be partitioned."""
    errors = []
    aux = {
        "label.annotations": recipe.label.annotation_sources,
        "label.teacher.outputs": recipe.label.teacher_sources,
        "reference.source": [recipe.reference.source] if recipe.reference else [],
    }
    for key, names in aux.items():
        for src in names:
            if src in sources and sources[src].partition is not None:
                errors.append(f"{file}: {key}: {src!r} is partitioned; only a recipe's "
                              "record sources can be")
    return errors
