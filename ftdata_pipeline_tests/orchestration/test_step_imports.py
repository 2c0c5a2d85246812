"""Processes that load the code location (the run's coordinator, every step process, the
webserver's code server) import only what every step needs: the redaction stack (Presidio,
spaCy) and scikit-learn are imported by the steps that use them."""

from __future__ import annotations

import json
import subprocess
import sys

_HEAVY = ("presidio_analyzer", "presidio_anonymizer", "spacy", "sklearn")

_LOADED = """
import json, sys
import ftdata_pipeline.definitions as d
assert d.defs.resolve_asset_graph() is not None
print(json.dumps({m: m in sys.modules for m in %r}))
""" % (_HEAVY,)


def test_loading_the_code_location_leaves_the_redaction_stack_unloaded() -> None:
    done = subprocess.run([sys.executable, "-c", _LOADED], capture_output=True, text=True,
                          timeout=300, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == dict.fromkeys(_HEAVY, False), loaded
