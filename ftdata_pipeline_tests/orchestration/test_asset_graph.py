"""Snapshot of the whole asset graph: a YAML edit that changes the graph shows up as a diff.

Regenerate after an intended change with ``FTDATA_UPDATE_SNAPSHOTS=1 make test``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ftdata_pipeline.definitions import build_definitions

SNAPSHOT = Path(__file__).parents[1] / "snapshots" / "asset_graph.json"


def graph_snapshot(defs) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "checks": sorted(c.name for c in node.check_keys),
            "kinds": sorted(node.kinds),
            "zone": node.metadata.get("ftdata/zone"),
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in defs.jobs or []),
        "sensors": sorted(s.name for s in defs.sensors or []),
        "schedules": sorted(
            f"{s.name}: {s.cron_schedule} {s.execution_timezone}" for s in defs.schedules or []
        ),
    }


def check_snapshot(snapshot: dict, path: Path) -> None:
    """Compare with the stored snapshot; write it only when FTDATA_UPDATE_SNAPSHOTS is set (a
    missing file is a failure, not a fresh snapshot compared with itself)."""
    rendered = json.dumps(snapshot, indent=2, sort_keys=True) + "\n"
    if os.environ.get("FTDATA_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered)
    assert path.exists(), f"{path} is missing: run with FTDATA_UPDATE_SNAPSHOTS=1 to write it"
    assert json.loads(path.read_text()) == snapshot


def test_asset_graph_matches_snapshot(tmp_path):
    check_snapshot(graph_snapshot(build_definitions(home=str(tmp_path))), SNAPSHOT)


def test_missing_snapshot_fails_unless_updating(tmp_path, monkeypatch):
    monkeypatch.delenv("FTDATA_UPDATE_SNAPSHOTS", raising=False)
    missing = tmp_path / "none.json"
    with pytest.raises(AssertionError, match="is missing"):
        check_snapshot({"assets": {}}, missing)
    assert not missing.exists()
    monkeypatch.setenv("FTDATA_UPDATE_SNAPSHOTS", "1")
    check_snapshot({"assets": {}}, missing)
    assert json.loads(missing.read_text()) == {"assets": {}}


def test_graph_has_the_designed_shape(tmp_path):
    snapshot = graph_snapshot(build_definitions(home=str(tmp_path)))["assets"]
    datasets = {k.split("/")[0] for k in snapshot if not k.startswith("raw/")}
    assert len(datasets) == 7
    for ds in datasets:
        assert snapshot[f"{ds}/redacted"]["deps"] == [f"{ds}/curated"]
        assert f"{ds}/redacted" in snapshot[f"{ds}/labeled"]["deps"]
        # the split also reads the recipe's reference sample of production inputs, if any
        assert f"{ds}/labeled" in snapshot[f"{ds}/split"]["deps"]
        assert all(d == f"{ds}/labeled" or d.startswith("raw/")
                   for d in snapshot[f"{ds}/split"]["deps"])
        assert snapshot[f"{ds}/exports"]["deps"] == [f"{ds}/split"]
        assert snapshot[f"{ds}/card"]["deps"] == [f"{ds}/exports"]
        assert snapshot[f"{ds}/rejected"]["deps"] == sorted(
            f"{ds}/{s}" for s in ("curated", "redacted", "labeled", "split")
        )
        assert all(d.startswith("raw/") for d in snapshot[f"{ds}/curated"]["deps"])
        assert snapshot[f"{ds}/curated"]["zone"] == "restricted"
        assert snapshot[f"{ds}/redacted"]["zone"] == "open"
        assert "no_residual_pii" in snapshot[f"{ds}/redacted"]["checks"]
        assert "splits_disjoint" in snapshot[f"{ds}/split"]["checks"]
