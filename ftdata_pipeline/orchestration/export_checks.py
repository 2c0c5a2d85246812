"""Blocking checks of the exports asset, run on the staged export *before* it is published.

- ``manifest_verified``: every file the manifest lists is there, with its sha256 and line count.
- ``format_valid``: every line of every data file, re-read from disk, passes its trainer's rules
  (the format's validator), independently of the writer that produced it.
- ``no_unexpected_shrink``: the export is not empty and has not lost more than the recipe's
  ``exports.max_drop_fraction`` of the published export's records (``formats.guard``).

When one fails, the staged export is discarded and the previous one stays at the published
path; the step then fails and the card is not rebuilt. Metadata holds counts and reasons that
name files, lines and keys, never content.
"""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey

from ftdata_pipeline.formats.guard import check_shrink
from ftdata_pipeline.formats.writer import (
    MANIFEST,
    StagedExport,
    read_manifest,
    validate_export_files,
    verify_exports,
)

MANIFEST_VERIFIED = "manifest_verified"
FORMAT_VALID = "format_valid"
NO_UNEXPECTED_SHRINK = "no_unexpected_shrink"


def export_check_specs(key: AssetKey) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(MANIFEST_VERIFIED, asset=key, blocking=True,
                       description="Files on disk match the manifest (sha256, line counts)"),
        AssetCheckSpec(FORMAT_VALID, asset=key, blocking=True,
                       description="Every exported line passes its trainer's rules"),
        AssetCheckSpec(NO_UNEXPECTED_SHRINK, asset=key, blocking=True,
                       description="Not empty, and not much smaller than the published export"),
    ]


def _published_records(staged: StagedExport) -> int | None:
    if not (staged.out_dir / MANIFEST).is_file():
        return None
    return sum(read_manifest(staged.out_dir).get("splits", {}).values())


def shrink_result(staged: StagedExport, dataset: str, max_drop_fraction: float | None):
    verdict = check_shrink(
        dataset, _published_records(staged), sum(staged.manifest["splits"].values()),
        max_drop_fraction,
    )
    return AssetCheckResult(
        check_name=NO_UNEXPECTED_SHRINK,
        passed=verdict.passed,
        severity=AssetCheckSeverity.ERROR,
        description=verdict.reason,
        metadata={
            "records_previous": verdict.previous if verdict.previous is not None else "none",
            "records_new": verdict.new,
            "drop_fraction": round(verdict.drop_fraction, 4)
            if verdict.drop_fraction is not None else "n/a",
            "max_drop_fraction": verdict.max_drop_fraction
            if verdict.max_drop_fraction is not None else "disabled",
            "overridden": verdict.overridden,
        },
    )


def export_check_results(
    staged: StagedExport, dataset: str, max_drop_fraction: float | None
) -> list[AssetCheckResult]:
    problems = verify_exports(staged.staging)
    validity = validate_export_files(staged.staging)
    rejected = staged.manifest.get("rejected", {})
    return [
        AssetCheckResult(
            check_name=MANIFEST_VERIFIED,
            passed=not problems,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(problems[:5]) or "every file matches the manifest",
            metadata={"files": len(staged.manifest.get("files", [])), "problems": len(problems)},
        ),
        AssetCheckResult(
            check_name=FORMAT_VALID,
            passed=validity["invalid"] == 0,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(validity["problems"]) or "every line passes its format's rules",
            metadata={
                "lines_checked": validity["lines"],
                "invalid_lines": validity["invalid"],
                # records the writer left out before writing (kept in the exports rejects)
                "records_rejected_before_writing": rejected.get("records", 0),
                **{f"rejected/{f}": n for f, n in rejected.get("by_format", {}).items()},
            },
        ),
        shrink_result(staged, dataset, max_drop_fraction),
    ]
