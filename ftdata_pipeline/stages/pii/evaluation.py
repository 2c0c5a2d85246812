"""A labelled PII test set generated with Faker, and per-entity recall / precision of a redactor.

The set is made here, deterministically (fixed seed, fixed Faker version), so detection quality
is measured on every change without shipping real personal data. Sentences come from support-
ticket-like templates; each holds one or two PII values whose character spans are known.
Negatives are sentences without PII but with look-alikes (versions, prices, error codes,
product names, order counts) that catch false positives.

Matching rule (documented in the report): a gold span is *found* when a predicted span of the
same entity type overlaps it by at least one character; a predicted span is *correct* when it
overlaps a gold span of the same type. Recall = found gold / all gold, precision = correct
predictions / all predictions, per entity type. Two privacy-oriented extras: *redacted* — the
gold span overlaps a prediction of any type (it did not stay readable as is), and *fully
covered* — every character of the gold span lies inside predictions.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from faker import Faker

SEED = 20261121
EVAL_ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
    "LOCATION",
)
PATTERN_ENTITIES = (
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"
)
TARGETS = {**dict.fromkeys(PATTERN_ENTITIES, 0.98), "PERSON": 0.90}

# Templates per entity; {X} is the value. Several carry a second entity to mix types.
TEMPLATES: dict[str, list[str]] = {
    "PERSON": [
        "Hi, my name is {PERSON} and I can't log in.",
        "Please forward this to {PERSON} in accounting.",
        "{PERSON} from our team reported the outage yesterday.",
        "Thanks for your help!\n\nBest regards,\n{PERSON}",
        "I spoke with {PERSON} on the phone but nothing changed.",
        "Can you add {PERSON} as an admin on our workspace?",
        "The invoice should be addressed to {PERSON}, not to me.",
        "Hello {PERSON}, your refund has been processed.",
        "My manager {PERSON} approved the upgrade.",
        "Dear {PERSON}, thank you for contacting support.",
    ],
    "EMAIL_ADDRESS": [
        "You can reach me at {EMAIL_ADDRESS} any time.",
        "Please change my login email to {EMAIL_ADDRESS}.",
        "Send the receipt to {EMAIL_ADDRESS} please.",
        "My colleague {PERSON} uses {EMAIL_ADDRESS} for billing.",
        "Contact: {EMAIL_ADDRESS}",
    ],
    "PHONE_NUMBER": [
        "Call me back at {PHONE_NUMBER} after 5pm.",
        "My phone number is {PHONE_NUMBER}.",
        "You can text {PHONE_NUMBER} if email fails.",
        "Our office line {PHONE_NUMBER} goes to voicemail.",
        "Please update the contact number to {PHONE_NUMBER}.",
        "{PERSON} can be reached on {PHONE_NUMBER}.",
    ],
    "CREDIT_CARD": [
        "Please refund to card {CREDIT_CARD}.",
        "I was charged twice on {CREDIT_CARD} this month.",
        "Update my payment method to {CREDIT_CARD}, expiry 09/28.",
        "The card ending in the number {CREDIT_CARD} was declined.",
        "Charge {CREDIT_CARD} for the annual plan.",
    ],
    "US_SSN": [
        "My SSN is {US_SSN} for the tax form.",
        "For verification, social security number {US_SSN}.",
        "The W-9 lists {US_SSN} as the taxpayer id.",
        "I entered {US_SSN} on the form by mistake.",
    ],
    "IBAN_CODE": [
        "Please wire the refund to IBAN {IBAN_CODE}.",
        "Our bank account is {IBAN_CODE}.",
        "Direct debit from {IBAN_CODE} failed again.",
        "Use {IBAN_CODE} for the SEPA transfer, reference {PERSON}.",
    ],
    "IP_ADDRESS": [
        "The login attempt came from {IP_ADDRESS}.",
        "Our server at {IP_ADDRESS} cannot reach the API.",
        "Please whitelist {IP_ADDRESS} for the VPN.",
        "Blocked requests from {IP_ADDRESS} last night.",
    ],
    "LOCATION": [
        "I moved to {LOCATION} last month.",
        "Ship the router to our office in {LOCATION}.",
        "The outage affects all users in {LOCATION}.",
        "We have a branch in {LOCATION} as well.",
    ],
}

NEGATIVES = [
    "My app crashes when I open Settings after updating to version 2.4.1.",
    "The total was $1,249.99 but I expected $999.00 for 12 seats.",
    "I get HTTP 502 Bad Gateway when syncing more than 500 files.",
    "We have about 48 users who would use scheduled backups.",
    "Order 3 items arrived but 2 are missing from the box.",
    "Please enable two-factor authentication for the whole team.",
    "Restarting the router did not help; the LED blinks orange.",
    "Can you switch our billing from monthly to annual?",
    "Uploads stall at 99% since the 3.2 release.",
    "Error code E1234 appears after 30 seconds.",
    "How do I export my data as CSV from Acme Analytics?",
    "The dashboard shows 0 GB used although we store 1.5 TB.",
    "Firmware 10.0.2 fixed the Wi-Fi drop for us.",
    "Thanks, that solved it. You can close the ticket.",
    "We would like a discount for 25 or more licences.",
    "The page loads in 4.5 seconds on average.",
]


@dataclass(frozen=True)
class Example:
    text: str
    spans: tuple[tuple[str, int, int], ...]  # (entity_type, start, end)


def _values(fake: Faker, intl: list[Faker], rng: random.Random):
    cards = ["visa16", "visa13", "mastercard", "amex", "discover", "jcb16", "diners"]

    def person() -> str:
        return fake.first_name() + " " + fake.last_name()

    def phone() -> str:
        if rng.random() < 0.25:
            # International numbers in '+CC' layouts (national-only layouts of other countries
            # are out of scope: without a country code they are ambiguous digit runs).
            while True:
                value = rng.choice(intl).phone_number()
                if value.startswith("+"):
                    return value
        return fake.phone_number()

    def card() -> str:
        number = fake.credit_card_number(card_type=rng.choice(cards))
        if rng.random() < 0.3 and len(number) == 16:
            number = " ".join(number[i : i + 4] for i in range(0, 16, 4))
        return number

    def iban() -> str:
        value = rng.choice(intl).iban()
        if rng.random() < 0.4:  # printed form, in groups of four
            value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    def ip() -> str:
        return fake.ipv6() if rng.random() < 0.2 else fake.ipv4()

    def location() -> str:
        return rng.choice([fake.city, fake.country, fake.state])()

    return {
        "PERSON": person,
        "EMAIL_ADDRESS": fake.email,
        "PHONE_NUMBER": phone,
        "CREDIT_CARD": card,
        "US_SSN": fake.ssn,
        "IBAN_CODE": iban,
        "IP_ADDRESS": ip,
        "LOCATION": location,
    }


def _fill(template: str, values) -> Example:
    text, spans, pos = [], [], 0
    rest = template
    while "{" in rest:
        before, _, after = rest.partition("{")
        entity, _, rest = after.partition("}")
        text.append(before)
        pos += len(before)
        value = values[entity]()
        spans.append((entity, pos, pos + len(value)))
        text.append(value)
        pos += len(value)
    text.append(rest)
    return Example("".join(text), tuple(spans))


def generate_examples(n: int = 1000, seed: int = SEED) -> list[Example]:
    """``n`` labelled sentences: the eight entity types in equal shares, ~10% negatives."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    intl = []
    for i, locale in enumerate(("de_DE", "en_GB", "fr_FR", "nl_NL", "es_ES")):
        f = Faker(locale)
        f.seed_instance(seed + i + 1)
        intl.append(f)
    values = _values(fake, intl, rng)
    n_neg = n // 10
    out = [Example(rng.choice(NEGATIVES), ()) for _ in range(n_neg)]
    for i in range(n - n_neg):
        entity = EVAL_ENTITIES[i % len(EVAL_ENTITIES)]
        out.append(_fill(rng.choice(TEMPLATES[entity]), values))
    rng.shuffle(out)
    return out


@dataclass
class SpanCounts:
    """Gold spans found and predicted spans correct, of one entity type."""

    gold: int = 0
    found: int = 0
    predicted: int = 0
    correct: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.gold if self.gold else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0


@dataclass
class EntityScore(SpanCounts):
    redacted: int = 0
    covered: int = 0


@dataclass
class Evaluation:
    examples: int
    per_entity: dict[str, EntityScore] = field(default_factory=dict)

    def failures(self) -> list[str]:
        """Entity types below their recall target, as 'TYPE recall < target' strings."""
        return [
            f"{e} recall {self.per_entity[e].recall:.3f} < {t}"
            for e, t in TARGETS.items()
            if e in self.per_entity and self.per_entity[e].recall < t
        ]


def overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


def evaluate(redactor, examples: list[Example]) -> Evaluation:
    """Score ``redactor.spans`` (entity_type, start, end, score) against the gold spans."""
    predicted = redactor.spans([ex.text for ex in examples])
    scores: dict[str, EntityScore] = defaultdict(EntityScore)
    for ex, preds in zip(examples, predicted, strict=True):
        for etype, g0, g1 in ex.spans:
            s = scores[etype]
            s.gold += 1
            s.found += any(p[0] == etype and overlaps(g0, g1, p[1], p[2]) for p in preds)
            s.redacted += any(overlaps(g0, g1, p[1], p[2]) for p in preds)
            s.covered += all(any(p[1] <= c < p[2] for p in preds) for c in range(g0, g1))
        for ptype, p0, p1, _ in preds:
            s = scores[ptype]
            s.predicted += 1
            s.correct += any(g[0] == ptype and overlaps(p0, p1, g[1], g[2]) for g in ex.spans)
    ordered = {e: scores[e] for e in EVAL_ENTITIES if e in scores}
    ordered.update({e: scores[e] for e in sorted(scores) if e not in ordered})
    return Evaluation(examples=len(examples), per_entity=ordered)


def render_report(ev: Evaluation, settings: str) -> str:
    lines = [
        "# PII detection: evaluation on a generated, labelled test set",
        "",
        f"{ev.examples} sentences generated by `ftdata_pipeline.stages.pii.evaluation` "
        f"(Faker, seed {SEED}; ~10% negatives with look-alikes such as versions, prices and "
        "error codes). Redactor settings: " + settings + ".",
        "",
        "Matching: a gold span is found when a prediction of the same type overlaps it by at "
        "least one character; a prediction is correct when it overlaps a gold span of its type. "
        "*Redacted*: the gold span overlaps a prediction of any type. *Fully covered*: every "
        "character of the gold span is inside predictions. Types without gold spans (URL, "
        "DATE_TIME ...) show predictions only; each one there is a false positive.",
        "",
        "| entity | gold | recall | precision | redacted (any type) | fully covered "
        "| target recall |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for entity, s in ev.per_entity.items():
        target = TARGETS.get(entity)
        if s.gold:
            lines.append(
                f"| {entity} | {s.gold} | {s.recall:.3f} | {s.precision:.3f} | "
                f"{s.redacted / s.gold:.3f} | {s.covered / s.gold:.3f} | "
                f"{'' if target is None else f'>= {target}'} |"
            )
        else:
            lines.append(
                f"| {entity} | 0 | - | {s.precision:.3f} ({s.predicted} predictions) | - | - | |"
            )
    fails = ev.failures()
    lines += ["", "Targets met." if not fails else "Below target: " + "; ".join(fails) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Generate the set, evaluate the default redactor, write the Markdown report."""
    import argparse
    from pathlib import Path

    from ftdata_pipeline.config.loader import load_project
    from ftdata_pipeline.config.models import RedactConfig
    from ftdata_pipeline.stages.redact import get_redactor

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--recipe", default=None, help="use this recipe's redact settings")
    parser.add_argument("--out", default="benchmarks/results/pii_evaluation.md")
    args = parser.parse_args(argv)
    if args.recipe:
        cfg = load_project().recipes[args.recipe].redact
        settings = f"recipe `{args.recipe}`"
    else:
        cfg = RedactConfig()
        settings = "`RedactConfig()` defaults"
    settings += f" (threshold {cfg.score_threshold}, entities {', '.join(cfg.all_entities)})"
    ev = evaluate(get_redactor(cfg), generate_examples(args.n))
    report = render_report(ev, settings)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(report)
    return 1 if ev.failures() else 0


if __name__ == "__main__":
    raise SystemExit(main())
