"""PII evaluation on data the project did not write.

**Positive set.** Sentences from presidio-evaluator's own generator (``PresidioSentenceFaker``:
its ~200 templates, its 3,000 fake identities from FakeNameGenerator, its address and phone
providers over many national layouts), with a fixed seed. Gold types are mapped onto the
redactor's: ``GPE`` -> LOCATION, ``DOMAIN_NAME`` -> URL; types the redactor does not redact by
design (ORGANIZATION, TITLE, AGE, NRP, DATE_TIME, ZIP_CODE, US_DRIVER_LICENSE) are *ignored*:
neither gold to find nor a false positive when predicted. The generator writes an address as
several adjacent gold spans (building number, street, unit, postcode); spans of one type
separated only by spaces, commas or line breaks are merged into one, as a reader would see them.
The templates' literal ``\\n`` become real line breaks.

Two scores per entity type:
- **span overlap**: a gold span is found when a prediction of the same type overlaps it;
  a prediction is correct when it overlaps a gold span of its type (or an ignored one: then it
  is not counted);
- **leak**: the redacted text still holds the value, its digits (5 or more), or one of its
  words (3+ letters) that the rest of the sentence does not contain. This is what an attacker
  reads, whatever the type the redactor gave.

**Negative set.** Real text that holds no personal data: paragraphs and code blocks of the
installed Python packages' long descriptions (Markdown / reStructuredText with code in several
languages, tech vocabulary, product names; paragraphs naming people — authors, maintainers,
copyright, thanks, e-mail addresses or links — are left out), plus cloud regions, version
strings, timestamps, ids, log lines and short imperative subject lines. Scored by the share of
words left as they were and the share of records left untouched.
"""

from __future__ import annotations

import importlib.metadata
import random
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

# Gold spans are (type, start, end); the generator's types outside the scored set are IGNORED.
from ftdata_pipeline.stages.pii.evaluation import Example, SpanCounts, overlaps

SEED = 20261130
TYPE_MAP = {
    "PERSON": "PERSON",
    "STREET_ADDRESS": "STREET_ADDRESS",
    "GPE": "LOCATION",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "CREDIT_CARD": "CREDIT_CARD",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    "IBAN_CODE": "IBAN_CODE",
    "DOMAIN_NAME": "URL",
}
PATTERN_ENTITIES = (
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"
)
TARGETS = {
    "pattern_recall": 0.98,
    "pattern_type_recall": 0.95,
    "PERSON": 0.92,
    "STREET_ADDRESS": 0.90,
    "negative_words_kept": 0.98,
    "negative_records_untouched": 0.90,
}
IGNORED = "__ignored__"


def _unescape(text: str, spans: list[tuple[str, int, int]]):
    """Replace the templates' literal backslash-n by a line break, moving the spans."""
    if "\\n" not in text:
        return text, spans
    out, shift, pos = [], [0] * (len(text) + 1), 0
    removed = 0
    i = 0
    while i < len(text):
        shift[i] = removed
        if text.startswith("\\n", i):
            out.append("\n")
            shift[i + 1] = removed
            removed += 1
            i += 2
            continue
        out.append(text[i])
        i += 1
    shift[len(text)] = removed
    del pos
    return "".join(out), [(t, s - shift[s], e - shift[e]) for t, s, e in spans]


def _merge(text: str, spans: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    spans = sorted(spans, key=lambda s: (s[1], s[2]))
    merged: list[tuple[str, int, int]] = []
    for t, s, e in spans:
        if merged:
            pt, ps, pe = merged[-1]
            if pt == t and t != IGNORED and s >= pe and re.fullmatch(r"[\s,]*", text[pe:s]):
                merged[-1] = (t, ps, max(pe, e))
                continue
        merged.append((t, s, e))
    return merged


def presidio_evaluator_examples(n: int = 2000, seed: int = SEED) -> list[Example]:
    """``n`` sentences from presidio-evaluator's generator (its templates and identities)."""
    import contextlib
    import io
    import warnings

    from presidio_evaluator.data_generator import PresidioSentenceFaker

    # The generator prints progress and warns that it cannot download a hospital list (that
    # entity is not used here); neither is an error.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        random.seed(seed)
        faker = PresidioSentenceFaker("en_US", lower_case_ratio=0.05, random_seed=seed)
        samples = faker.generate_new_fake_sentences(n)
    out = []
    for sample in samples:
        spans = [
            (TYPE_MAP.get(sp.entity_type, IGNORED), sp.start_position, sp.end_position)
            for sp in sample.spans
        ]
        text, spans = _unescape(sample.full_text, spans)
        out.append(Example(text, tuple(_merge(text, spans))))
    return out


def project_examples(n: int = 1000) -> list[Example]:
    """The project's own generated set, in the same form (for the side-by-side report)."""
    from ftdata_pipeline.stages.pii.evaluation import generate_examples

    return generate_examples(n)


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------


@dataclass
class TypeScore(SpanCounts):
    leaked: int = 0

    @property
    def leak_free(self) -> float:
        """Share of gold values whose content no longer appears in the redacted text."""
        return 1 - self.leaked / self.gold if self.gold else 1.0


@dataclass
class Scores:
    examples: int
    per_type: dict[str, TypeScore] = field(default_factory=dict)

    def recall(self, types) -> float:
        gold = sum(self.per_type[t].gold for t in types if t in self.per_type)
        found = sum(self.per_type[t].found for t in types if t in self.per_type)
        return found / gold if gold else 1.0

    def leak_free(self, types) -> float:
        gold = sum(self.per_type[t].gold for t in types if t in self.per_type)
        leaked = sum(self.per_type[t].leaked for t in types if t in self.per_type)
        return 1 - leaked / gold if gold else 1.0

    def failures(self) -> list[str]:
        """Targets missed, as readable strings (empty when all are met)."""
        out = []
        pr = self.recall(PATTERN_ENTITIES)
        if pr < TARGETS["pattern_recall"]:
            out.append(f"pattern-entity recall {pr:.3f} < {TARGETS['pattern_recall']}")
        for t in PATTERN_ENTITIES:
            s = self.per_type.get(t)
            if s and s.gold and s.recall < TARGETS["pattern_type_recall"]:
                out.append(f"{t} recall {s.recall:.3f} < {TARGETS['pattern_type_recall']}")
        for t in ("PERSON", "STREET_ADDRESS"):
            s = self.per_type.get(t)
            if s and s.gold and s.recall < TARGETS[t]:
                out.append(f"{t} recall {s.recall:.3f} < {TARGETS[t]}")
        return out


_STOP = frozenset(
    "the and for with from street st road rd avenue ave suite apt unit box drive lane".split()
)


def leaked(text: str, start: int, end: int, redacted: str) -> bool:
    """Whether the gold value text[start:end] can still be read in ``redacted``."""
    value = text[start:end].strip()
    if not value:
        return False
    if value.casefold() in redacted.casefold():
        return True
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 5 and digits in re.sub(r"\D", "", redacted):
        return True
    rest = (text[:start] + " " + text[end:]).casefold()
    out_words = set(re.findall(r"[^\W\d_]+", redacted.casefold()))
    for word in re.findall(r"[^\W\d_]{3,}", value.casefold()):
        if word in _STOP or re.search(rf"\b{re.escape(word)}\b", rest):
            continue
        if word in out_words:
            return True
    return False


def score(examples: list[Example], spans, redacted: list[str]) -> Scores:
    """Span-overlap and leak scores of predicted ``spans`` / ``redacted`` texts per example."""
    per: dict[str, TypeScore] = defaultdict(TypeScore)
    for ex, preds, red in zip(examples, spans, redacted, strict=True):
        gold = [g for g in ex.spans if g[0] != IGNORED]
        ignored = [g for g in ex.spans if g[0] == IGNORED]
        for t, g0, g1 in gold:
            s = per[t]
            s.gold += 1
            s.found += any(p[0] == t and overlaps(g0, g1, p[1], p[2]) for p in preds)
            s.leaked += leaked(ex.text, g0, g1, red)
        for pt, p0, p1, *_ in preds:
            if any(g[0] == pt and overlaps(p0, p1, g[1], g[2]) for g in gold):
                per[pt].predicted += 1
                per[pt].correct += 1
            elif any(overlaps(p0, p1, g[1], g[2]) for g in ignored):
                continue  # e.g. an organization or a date: not scored either way
            else:
                per[pt].predicted += 1
    order = [*PATTERN_ENTITIES, "PERSON", "STREET_ADDRESS", "LOCATION", "URL"]
    ordered = {t: per[t] for t in order if t in per}
    ordered.update({t: per[t] for t in sorted(per) if t not in ordered})
    return Scores(len(examples), ordered)


# --------------------------------------------------------------------------------------------
# negative set
# --------------------------------------------------------------------------------------------

_PEOPLE_OR_LINKS = re.compile(
    r"(?i)@|://|www\.|copyright|\(c\)|©|author|maintain|contribut|thank|credit|sponsor|"
    r"written by|created by|developed by|founded|team|acknowledg|citation|cite|bibtex|"
    r"et al|mailto|github\.com|twitter|mastodon|funded|grant|university|institute|"
    r"[A-Z][a-z]+ [A-Z]\. [A-Z][a-z]+"
)
_BLOCK = re.compile(r"```.*?```|~~~.*?~~~|(?:[^\n]+\n?)+", re.S)


def package_text_blocks() -> list[str]:
    """Paragraphs and code blocks of installed packages' long descriptions, without people."""
    blocks: list[str] = []
    dists = sorted(importlib.metadata.distributions(), key=lambda d: (d.metadata["Name"] or ""))
    seen = set()
    for dist in dists:
        name = dist.metadata["Name"] or ""
        if name.casefold() in seen or name.casefold().startswith("ftdata"):
            continue
        seen.add(name.casefold())
        body = dist.metadata.get_payload() or dist.metadata.get("Description") or ""
        for m in _BLOCK.finditer(body):
            block = m.group().strip()
            if 40 <= len(block) <= 800 and not _PEOPLE_OR_LINKS.search(block):
                blocks.append(block)
    return blocks


_REGIONS = (
    "us-east-1 us-east-2 us-west-1 us-west-2 eu-central-1 eu-west-1 eu-west-2 eu-west-3 "
    "eu-north-1 eu-south-1 ap-southeast-1 ap-southeast-2 ap-northeast-1 ap-south-1 "
    "sa-east-1 ca-central-1 me-south-1 af-south-1 europe-west1 europe-west4 us-central1 "
    "asia-southeast1 asia-northeast1 australia-southeast1 westeurope northeurope eastus "
    "eastus2 westus2 centralus uksouth ukwest francecentral germanywestcentral "
    "japaneast southeastasia brazilsouth"
).split()
_VERBS = (
    "Switch Update Cancel Add Remove Fix Upgrade Downgrade Enable Disable Reset Change Move "
    "Export Import Restore Refund Merge Split Rename Delete Archive Renew Pause Resume Close "
    "Reopen Migrate Sync Connect Disconnect Verify Confirm Report Request Review Schedule"
).split()
_OBJECTS = (
    "to annual billing|my payment method|the subscription|a second seat|the old invoice|"
    "two-factor authentication|the shared folder|dark mode|my workspace|the API token|"
    "the backup schedule|email notifications|the team plan|the webhook|the export job|"
    "SSO for our domain|the mobile app|the sync client|the firewall rule|the DNS record|"
    "the staging cluster|the nightly build|the release branch|the data retention policy"
).split("|")
_COMPLAINTS = (
    "Broken on arrival|Not working since update|Charged twice|Still waiting for refund|"
    "Login loop on Safari|Slow uploads again|Wrong size delivered|Missing parts in box|"
    "App crashes on start|Cannot reset password|Sync stuck at 99%|Invoice total looks wrong|"
    "Feature request: bulk edit|Question about pricing|Upgrade failed halfway|"
    "Screen flickers after firmware update|Battery drains overnight|Order arrived damaged"
).split("|")


def synthetic_negatives(n: int, seed: int = SEED) -> list[str]:
    """Regions, versions, timestamps, ids, log lines and subject lines (no personal data)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = i % 7
        if kind == 0:
            out.append(f"Deploy the service to {rng.choice(_REGIONS)} and fail over to "
                       f"{rng.choice(_REGIONS)} if the health check fails.")
        elif kind == 1:
            v = f"{rng.randint(0, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 40)}"
            out.append(rng.choice([
                f"Upgrade to v{v} fixed it.", f"Pinned to {v}; {v}-rc.{rng.randint(1, 4)} "
                f"breaks the build.", f"Requires Python >= 3.{rng.randint(8, 13)} and "
                f"numpy {v}."]))
        elif kind == 2:
            h, m, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
            us = rng.randint(0, 999999)
            out.append(f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{h:02d}:{m:02d}:"
                       f"{s:02d}.{us:06d}Z INFO worker-{rng.randint(1, 9)} job finished in "
                       f"{rng.random() * 10:.2f}s ({rng.randint(100, 99999)} rows)")
        elif kind == 3:
            u = uuid.UUID(int=rng.getrandbits(128), version=4)
            out.append(rng.choice([
                f"Request id {u} returned 503 after {rng.randint(1, 60)} s.",
                f"Commit {u.hex[:12]} reverted the cache change; build #{rng.randint(1, 99999)}.",
                f"Order ref {rng.randint(10**7, 10**8)} shows status {rng.choice(['PENDING','OK'])}."]))
        elif kind == 4:
            out.append(f"{rng.choice(_VERBS)} {rng.choice(_OBJECTS)}")
        elif kind == 5:
            out.append(rng.choice(_COMPLAINTS))
        else:
            out.append(f"{h:02d}:{m:02d}:{s:02d}.{us:06d} WARN retry {rng.randint(1, 5)}/5 for "
                       f"GET /api/v{rng.randint(1, 3)}/items?page={rng.randint(1, 400)}")
    return out


def negative_examples(n: int = 1000, seed: int = SEED) -> list[str]:
    """About 70% package text blocks (a fixed-seed sample), 30% synthetic look-alikes."""
    rng = random.Random(seed)
    blocks = package_text_blocks()
    real = rng.sample(blocks, min(len(blocks), int(n * 0.7)))
    return real + synthetic_negatives(n - len(real), seed)


@dataclass
class NegativeScore:
    records: int
    untouched: int
    words: int
    words_kept: int
    placeholders: dict[str, int]

    @property
    def words_kept_share(self) -> float:
        return self.words_kept / self.words if self.words else 1.0

    @property
    def untouched_share(self) -> float:
        return self.untouched / self.records if self.records else 1.0

    def failures(self) -> list[str]:
        out = []
        if self.words_kept_share < TARGETS["negative_words_kept"]:
            out.append(f"negative words kept {self.words_kept_share:.3f} < "
                       f"{TARGETS['negative_words_kept']}")
        if self.untouched_share < TARGETS["negative_records_untouched"]:
            out.append(f"negative records untouched {self.untouched_share:.3f} < "
                       f"{TARGETS['negative_records_untouched']}")
        return out


def score_negative(texts: list[str], spans) -> NegativeScore:
    words = kept = untouched = 0
    types: dict[str, int] = defaultdict(int)
    for text, preds in zip(texts, spans, strict=True):
        untouched += not preds
        for p in preds:
            types[p[0]] += 1
        for m in re.finditer(r"\S+", text):
            words += 1
            kept += not any(overlaps(m.start(), m.end(), p[1], p[2]) for p in preds)
    return NegativeScore(len(texts), untouched, words, kept, dict(sorted(types.items())))
