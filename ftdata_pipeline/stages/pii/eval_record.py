"""Evaluation figures per detection configuration, recorded once and shown on every run.

Measuring takes minutes, so it is not repeated at each materialization: ``ftdata pii evaluate``
(or ``benchmarks/pii_evaluation.py``) measures a recipe's configuration on the independent sets
and records the figures here under the hash of its *detection* settings (language, entities,
threshold, allow list, recognizers, phone regions). The redacted stage looks its own
configuration up: the card then states the figures of the configuration that ran, or says
plainly that this configuration was not evaluated.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ftdata_pipeline.config.models import RedactConfig

RECORD = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "pii_evaluation.json"


def detection_hash(cfg: RedactConfig) -> str:
    from ftdata_pipeline.stages.pii.engine import detection_key

    return hashlib.sha256(detection_key(cfg).encode()).hexdigest()[:16]


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def lookup(cfg: RedactConfig, path: Path = RECORD) -> dict:
    key = detection_hash(cfg)
    found = _load(path).get(key)
    if found is None:
        return {
            "status": "not evaluated",
            "detection_config": key,
            "how": "run `ftdata pii evaluate --recipe <name>` to measure this configuration",
        }
    return {"status": "measured", "detection_config": key, **found}


def record(cfg: RedactConfig, figures: dict, path: Path = RECORD) -> str:
    """Store ``figures`` for this configuration (sorted keys: a stable, reviewable file)."""
    key = detection_hash(cfg)
    data = _load(path)
    data[key] = figures
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return key
