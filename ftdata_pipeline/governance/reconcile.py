"""Bring the catalog in line with the exports on disk after a run died before recording them.

An export is published (an atomic symlink swap) before the catalog records it; a run killed
between the two leaves an export the catalog does not know, and ``ftdata lineage`` would say a
record is "not in any current export" while a file holds it. :func:`reconcile_export` compares
the manifest at the published path with the catalog's latest version of the dataset and, when
they differ, records the export from disk: its files (from the manifest) and one lineage row
per line (from the provenance each export carries: inline ``id``/``source``/``source_key`` or
the line-aligned ``.provenance.jsonl`` sidecar). The audit log says it was reconciled.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ftdata_pipeline.formats.writer import EXTRA_SPLIT, MANIFEST, PROVENANCE_SUFFIX, verify_exports

RECOVERED_PREFIX = "recovered-"


def lineage_from_disk(out_dir: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """One lineage row per exported record, read back from one file of each split."""
    rows: list[dict[str, Any]] = []
    by_split: dict[str, list[str]] = {}
    for entry in manifest.get("files", []):
        if entry["split"] == EXTRA_SPLIT:  # a format's extra file (dataset_info.json), no records
            continue
        by_split.setdefault(entry["split"], []).append(entry["path"])
    for split, paths in sorted(by_split.items()):
        sidecars = [p for p in paths if p.endswith(PROVENANCE_SUFFIX)]
        # a sidecar holds exactly the provenance; a lenient format carries it inline
        path = sidecars[0] if sidecars else sorted(paths)[0]
        with open(out_dir / path, encoding="utf-8") as fh:
            for line, raw in enumerate(fh, start=1):
                obj = json.loads(raw)
                rows.append({"record_id": obj["id"], "source": obj["source"],
                             "source_key": obj["source_key"], "split": split, "line": line})
    return rows


def _files(manifest: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["path"], f["sha256"]) for f in manifest.get("files", [])}


def reconcile_export(catalog: Any, dataset: str, out_dir: Path) -> Any | None:
    """Record the export at ``out_dir`` when the catalog's latest version is not it.

    Returns the new dataset version, or None when the catalog already agrees (or there is no
    complete export on disk to record).
    """
    out_dir = Path(out_dir)
    manifest_path = out_dir / MANIFEST
    if not manifest_path.is_file() or verify_exports(out_dir):
        return None
    data = manifest_path.read_bytes()
    manifest = json.loads(data)
    latest = catalog.versions(dataset, limit=1)
    if latest and {(e.path, e.sha256) for e in latest[0].exports} == _files(manifest) \
            and latest[0].config_hash == manifest.get("config_hash"):
        return None
    lineage = lineage_from_disk(out_dir, manifest)
    return catalog.record_export(
        run_id=RECOVERED_PREFIX + hashlib.sha256(data).hexdigest()[:16],
        dataset=dataset,
        config_hash=manifest.get("config_hash", ""),
        code_version="unknown",
        manifest=manifest,
        lineage=lineage,
        sources=sorted({r["source"] for r in lineage}),
        action="reconcile",
    )


def reconcile_all(catalog: Any, exports_root: Path) -> list[str]:
    """Reconcile every dataset published under ``exports_root``; returns the datasets recorded."""
    done = []
    root = Path(exports_root)
    if not root.is_dir():
        return done
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not (entry / MANIFEST).is_file():
            continue
        if reconcile_export(catalog, entry.name, entry) is not None:
            done.append(entry.name)
    return done
