"""Export formats: one module per trainer family, one small class per format.

Every format registers itself with ``@export_format`` (see ``registry``); importing this package
imports every format module, so ``FORMATS_BY_NAME`` (and the config's list of formats, derived
from it) is complete.
"""

from __future__ import annotations

from ftdata_pipeline.formats import (  # noqa: F401 - imported to register their formats
    alpaca,
    bedrock,
    classification,
    feedback,
    openai,
    sharegpt,
    trl,
)
from ftdata_pipeline.formats.registry import REGISTRY, format_names

FORMATS_BY_NAME = REGISTRY
FORMAT_NAMES = format_names()
