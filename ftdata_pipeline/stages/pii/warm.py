"""Warm-up run once by the PII worker pool's fork server, before any worker starts.

Workers are forked from that server, so each one starts with the spaCy model, the name and word
lists and the lazily loaded metadata (phone numbering plans, the public-suffix list) already in
memory, shared copy-on-write, instead of loading them itself: about 3 s of CPU per worker per
step, which on a two-core machine is a large part of a pool's gain on a few thousand texts.
"""

from __future__ import annotations

from ftdata_pipeline.config.models import RedactConfig
from ftdata_pipeline.stages.pii.engine import Detector

# One text that reaches every recognizer: a name after a greeting and in a sign-off, an e-mail,
# a phone with and without a country code, a card, an IBAN, an IP, a URL, a street address, a
# postcode with its city and a date of birth.
SAMPLE = (
    "Hi Jan Novák, mail jane.doe@example.com, call +44 20 7946 0958 or 0612 345 678. "
    "Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, host 10.0.0.1, "
    "https://example.org/a. Ship to 12 Main Street, Apt 4, Springfield, IL 62704; "
    "75008 Paris. Date of birth: 1984-03-12.\nBest regards,\nMaría López"
)

WARM = False
try:
    Detector(RedactConfig()).spans([SAMPLE])
    WARM = True
except Exception:  # noqa: BLE001 - a failed warm-up costs start-up time only: each worker
    # then loads what it needs itself, and any real error surfaces there, with its cause.
    pass
