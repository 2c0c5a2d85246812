"""Generate the deterministic demo data set of the fictional company Acme Cloud.

Run ``python -m ftdata_pipeline.demo.generate --out demo_data``. Faker and ``random.Random``
are seeded and dates are relative to a fixed anchor, so the same seed writes byte-identical
files. Every name, number and address is synthetic; card numbers are published test numbers.
The generated README.md lists the files, their fields and the planted problems with counts.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sqlite3
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from faker import Faker

from ftdata_pipeline.demo import feedback as F
from ftdata_pipeline.demo import phrases as P

ANCHOR = datetime(2026, 10, 1, tzinfo=UTC)  # "now" for the demo: all dates lie before it
DEFAULT_SEED = 20261001
ANNOTATORS = ("ann_a", "ann_b", "ann_c")

# Ticket mix. Planted problems are counted in the README, so tests can rely on them.
N_TICKETS = 2000
N_EXACT_DUPS = 100
N_NEAR_DUPS = 100
N_EMPTY, N_SHORT, N_BOILERPLATE = 15, 25, 25
N_FOREIGN_PER_LANGUAGE = 15
N_HTML, N_ODD_UNICODE = 15, 15
N_EVAL_VERBATIM, N_EVAL_NEAR = 12, 8
N_CONVERSATIONS, N_DUP_CONVERSATIONS = 400, 8
N_PROMPTS = 250
N_ARTICLES, N_DUP_ARTICLES, N_EMPTY_ARTICLES = 300, 6, 5
N_QUERIES = 500
N_EVAL = 100

TICKET_WEIGHTS = {
    "billing": 18,
    "technical_issue": 20,
    "account_access": 15,
    "shipping": 12,
    "cancellation": 10,
    "feature_request": 7,
    "bug_report": 10,
    "security": 8,
}
# What a tired annotator picks instead of the right intent.
CONFUSABLE = {
    "billing": "cancellation",
    "technical_issue": "bug_report",
    "account_access": "security",
    "shipping": "billing",
    "cancellation": "billing",
    "feature_request": "bug_report",
    "bug_report": "technical_issue",
    "security": "account_access",
}
ACCENTED_NAMES = (
    "José Martínez",
    "Zoë Lefèvre",
    "Renée Dubois",
    "Jürgen Schäfer",
    "Françoise Besson",
)
EMAIL_DOMAINS = ("example.com", "example.org", "mail.example.net", "corp.example.com")
TICKET_FIELDS = (
    "ticket_id",
    "created_at",
    "channel",
    "product",
    "subject",
    "body",
    "agent_reply",
    "customer_email",
)
JUNK_REPLY = "Hi, could you tell us a bit more about the problem so we can help?"
KB_EMPTY_BODIES = ("", "TBD", "Content coming soon.", "<p></p>", "TODO")


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class Slots:
    """Fills ``{slot}`` templates; a context dict keeps one example's values consistent."""

    def __init__(self, rng: random.Random, seed: int) -> None:
        self.rng = rng
        self.fakers = {}
        for i, loc in enumerate(("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "nl_NL")):
            fake = Faker(loc)
            fake.seed_instance(seed * 10 + i)
            self.fakers[loc] = fake
        self.us = self.fakers["en_US"]
        r = rng
        self._makers: dict[str, Callable[[], str]] = {
            "agent": self.us.first_name,
            "name2": self.us.name,
            "email2": lambda: self.us.email(),
            "phone": self._phone,
            "expiry": lambda: f"{r.randint(1, 12):02d}/{r.randint(27, 31)}",
            "address": lambda: self.us.address().replace("\n", ", "),
            "iban": self._iban,
            "ssn": self.us.ssn,
            "ip": lambda: self.us.ipv4_public() if r.random() < 0.9 else self.us.ipv6(),
            "product2": lambda: r.choice(P.HARDWARE_PRODUCTS),
            "plan": lambda: r.choice(P.PLANS),
            "region": lambda: r.choice(P.REGIONS),
            "carrier": lambda: r.choice(P.CARRIERS),
            "browser": lambda: r.choice(P.BROWSERS),
            "os": lambda: r.choice(P.SYSTEMS),
            "error": lambda: r.choice(P.ERRORS),
            "feature": lambda: r.choice(P.FEATURES),
            "version": lambda: f"{r.randint(2, 5)}.{r.randint(0, 9)}.{r.randint(0, 20)}",
            "order": lambda: f"ACM-{r.randint(100000, 999999)}",
            "invoice": lambda: f"INV-2026-{r.randint(1, 99999):05d}",
            "amount": self._amount,
            "amount2": self._amount,
            "count": lambda: str(r.randint(3, 60)),
            "count2": lambda: str(r.randint(1, 2)),
            "days": lambda: str(r.randint(2, 21)),
            "date": lambda: (ANCHOR - timedelta(days=r.randint(1, 60))).strftime("%B %d"),
            "tracking": lambda: "1Z"
            + "".join(r.choices(string.ascii_uppercase + string.digits, k=16)),
        }

    def person(self, locale: str = "en_US") -> dict[str, str]:
        fake = self.fakers[locale]
        first, last = fake.first_name(), fake.last_name()
        user = f"{_ascii(first)}.{_ascii(last)}".replace(" ", "")
        email = f"{user}{self.rng.randint(1, 99)}@{self.rng.choice(EMAIL_DOMAINS)}"
        return {"first": first, "name": f"{first} {last}", "email": email}

    def pick_product(self, ctx: dict[str, str], *templates: str) -> str:
        """Choose the example's product from the line its templates ask for ({hw}/{saas})."""
        if "product" not in ctx:
            text = "".join(templates)
            if "{hw}" in text:
                line = P.HARDWARE_PRODUCTS
            elif "{saas}" in text:
                line = P.SAAS_PRODUCTS
            else:
                line = P.SAAS_PRODUCTS + P.HARDWARE_PRODUCTS
            ctx["product"] = self.rng.choice(line)
        ctx.setdefault("hw", ctx["product"])
        ctx.setdefault("saas", ctx["product"])
        return ctx["product"]

    def fill_one(self, template: str) -> str:
        ctx: dict[str, str] = {}
        self.pick_product(ctx, template)
        return self.fill(template, ctx)

    def fill(self, template: str, ctx: dict[str, str]) -> str:
        for _, field, _, _ in string.Formatter().parse(template):
            if field in ("card", "card_last4") and field not in ctx:
                ctx["card"], ctx["card_last4"] = self._card()  # one card per example
            elif field and field not in ctx:
                ctx[field] = self._makers[field]()
        return template.format(**ctx)

    def _phone(self) -> str:
        r = self.rng
        style = r.randrange(5)
        if style == 0:
            return f"({r.randint(201, 989)}) 555-{r.randint(100, 199):04d}"
        if style == 1:
            return f"+1 {r.randint(201, 989)}-{r.randint(200, 999)}-{r.randint(1000, 9999)}"
        if style == 2:
            return self.us.numerify("###-###-####")
        loc = r.choice(("en_GB", "de_DE", "fr_FR"))
        return self.fakers[loc].phone_number()

    def _card(self) -> tuple[str, str]:
        number = self.rng.choice(P.TEST_CARDS)
        style = self.rng.randrange(3)
        if style == 1:
            number = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        elif style == 2:
            number = "-".join(number[i : i + 4] for i in range(0, len(number), 4))
        return number, number[-4:]

    def _iban(self) -> str:
        iban = self.fakers[self.rng.choice(("de_DE", "fr_FR", "es_ES", "en_GB", "nl_NL"))].iban()
        if self.rng.random() < 0.5:
            return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
        return iban

    def _amount(self) -> str:
        r = self.rng
        return f"${r.choice((9, 19, 29, 49, 99, 149, 249, 499))}.{r.choice(('00', '99', '50'))}"


# ------------------------------------------------------------------------------------------
# support tickets and their labels
# ------------------------------------------------------------------------------------------


def _ticket_body(s: Slots, cat: str, ctx: dict, core: str) -> str:
    r = s.rng
    sentences = [core]
    sentences += [s.fill(d, ctx) for d in r.sample(P.DETAILS[cat], r.randint(0, 2))]
    if r.random() < 0.7:
        kind = r.choice(P.PII_BY_CATEGORY[cat])
        sentences.append(s.fill(r.choice(P.PII_SENTENCES[kind]), ctx))
    greeting, closing = r.choice(P.GREETINGS), r.choice(P.CLOSINGS)
    signoff = r.choices((ctx["name"], ctx["first"], ""), weights=(70, 15, 15))[0]
    blocks = [greeting, " ".join(sentences), "\n".join(x for x in (closing, signoff) if x)]
    return "\n\n".join(b for b in blocks if b)


def _new_ticket(s: Slots, cat: str, kind: str = "normal", core: str | None = None) -> dict:
    r = s.rng
    ctx = s.person()
    subjects, cores, reply = r.choice(P.SCENARIOS[cat])
    subject, core_template = r.choice(subjects), r.choice(cores)
    s.pick_product(ctx, subject, core_template, reply, *P.DETAILS[cat])
    return {
        "kind": kind,
        "category": cat,
        "ts": ANCHOR - timedelta(seconds=r.randint(3600, 180 * 86400)),
        "channel": r.choice(P.CHANNELS),
        "product": ctx["product"],
        "subject": s.fill(subject, ctx),
        "body": _ticket_body(s, cat, ctx, core if core is not None else s.fill(core_template, ctx)),
        "agent_reply": s.fill(reply, ctx),
        "customer_email": ctx["email"],
    }


def _as_html(body: str, rng: random.Random) -> str:
    paras = [p.replace("\n", "<br>") for p in body.split("\n\n")]
    html = "".join(f"<p>{p}</p>" for p in paras)
    html = html.replace(". ", ".&nbsp; ", 1).replace(" and ", " &amp; ", 1)
    if rng.random() < 0.5:
        html = f'<div style="font-family:Arial">{html}<br><br><i>Sent via web form</i></div>'
    return html


def _odd_unicode(body: str, rng: random.Random) -> str:
    name = unicodedata.normalize("NFD", rng.choice(ACCENTED_NAMES))  # decomposed accents
    text = body.replace(". ", ".\u00a0 ", 2).replace(", ", ",  ", 1)
    text = text.replace("\n\n", " \r\n\r\n\t", 1)
    return f"  {text}\u00a0\n\nThanks,\u00a0 {name}  "


def _near_duplicate(body: str, rng: random.Random) -> str:
    swaps = [sw for sw in P.NEAR_DUP_SWAPS if sw[0] in body]
    edited = body
    for old, new in rng.sample(swaps, min(len(swaps), rng.randint(1, 2))):
        edited = edited.replace(old, new, 1)
    if edited == body or rng.random() < 0.5:
        edited = f"{edited}\n\n{rng.choice(P.NEAR_DUP_ADDITIONS)}"
    return edited


def _near_prompt(prompt: str) -> str:
    return prompt[0].lower() + prompt[1:].rstrip("?") + ", any idea?"


def build_tickets(seed: int, eval_rows: list[dict]) -> list[dict]:
    """All tickets in ticket_id order, each with its hidden category and planted kind."""
    s = Slots(random.Random(f"{seed}-tickets"), seed + 1)
    r = s.rng
    n_foreign = N_FOREIGN_PER_LANGUAGE * len(P.FOREIGN)
    n_junk = N_EMPTY + N_SHORT + N_BOILERPLATE
    n_base = N_TICKETS - N_EXACT_DUPS - N_NEAR_DUPS - n_junk - n_foreign
    base = [_new_ticket(s, _weighted(r, TICKET_WEIGHTS)) for _ in range(n_base)]

    # Decontamination targets: eval prompts pasted verbatim or nearly into tickets.
    planted = r.sample(eval_rows, N_EVAL_VERBATIM + N_EVAL_NEAR)
    for i, row in enumerate(planted):
        core = row["prompt"] if i < N_EVAL_VERBATIM else _near_prompt(row["prompt"])
        kind = "eval_verbatim" if i < N_EVAL_VERBATIM else "eval_near"
        ticket = _new_ticket(s, row["category"], kind, core)
        ticket["eval_id"] = row["id"]
        base[i] = ticket  # replaces an ordinary ticket; base order is random anyway

    free = list(range(len(planted), len(base)))
    r.shuffle(free)
    picks = iter(free)
    for _ in range(N_HTML):
        t = base[next(picks)]
        t["body"], t["kind"] = _as_html(t["body"], r), "html"
    for _ in range(N_ODD_UNICODE):
        t = base[next(picks)]
        t["body"], t["kind"] = _odd_unicode(t["body"], r), "odd_unicode"
    dups = []
    for _ in range(N_EXACT_DUPS):
        orig = base[next(picks)]
        later = orig["ts"] + timedelta(seconds=r.randint(600, 3 * 86400))
        dups.append({**orig, "kind": "exact_dup", "ts": min(later, ANCHOR - timedelta(seconds=1))})
    for _ in range(N_NEAR_DUPS):
        orig = base[next(picks)]
        later = orig["ts"] + timedelta(seconds=r.randint(600, 5 * 86400))
        subject = orig["subject"] if r.random() < 0.6 else f"Re: {orig['subject']}"
        dups.append(
            {
                **orig,
                "kind": "near_dup",
                "ts": min(later, ANCHOR - timedelta(seconds=1)),
                "subject": subject,
                "body": _near_duplicate(orig["body"], r),
            }
        )

    junk = []
    for kind, n, bodies in (
        ("junk_empty", N_EMPTY, ("", "", " ", "\n")),
        ("junk_short", N_SHORT, P.TOO_SHORT),
        ("junk_boilerplate", N_BOILERPLATE, P.BOILERPLATE),
    ):
        for _ in range(n):
            t = _new_ticket(s, _weighted(r, TICKET_WEIGHTS), kind)
            t.update(category=None, subject=r.choice(P.JUNK_SUBJECTS), body=r.choice(bodies))
            # Nobody answers junk with a real solution: a request for details, or nothing.
            t["agent_reply"] = r.choice((JUNK_REPLY, ""))
            junk.append(t)

    foreign = []
    for lang, rows in P.FOREIGN.items():
        for _ in range(N_FOREIGN_PER_LANGUAGE):
            cat, subject, body, reply = r.choice(rows)
            ctx = s.person(P.FOREIGN_LOCALES[lang])
            ctx["address"] = s.fakers[P.FOREIGN_LOCALES[lang]].address().replace("\n", ", ")
            t = _new_ticket(s, cat, f"foreign_{lang}")
            s.pick_product(ctx, body)
            t.update(
                subject=s.fill(subject, ctx),
                body=s.fill(body, ctx),
                agent_reply=s.fill(reply, ctx),
                customer_email=ctx["email"],
                product=ctx["product"],
            )
            foreign.append(t)

    tickets = base + dups + junk + foreign
    order = sorted(range(len(tickets)), key=lambda i: (tickets[i]["ts"], i))
    out = []
    for n, i in enumerate(order, start=1):
        out.append({**tickets[i], "ticket_id": f"T-{n:06d}"})
    return out


def build_labels(seed: int, tickets: list[dict]) -> tuple[list[tuple[str, str, str]], Counter]:
    """Three annotators label every non-junk ticket, with planted disagreement and gaps."""
    r = random.Random(f"{seed}-labels")
    rows, stats = [], Counter()
    for t in tickets:
        cat = t["category"]
        if cat is None:
            continue
        labels = dict.fromkeys(ANNOTATORS, cat)
        u = r.random()
        if u < 0.03:
            keep = r.sample(ANNOTATORS, r.randint(1, 2))
            labels = {a: cat for a in sorted(keep)}
            stats["partial"] += 1
        elif u < 0.05:
            others = r.sample([c for c in P.CATEGORIES if c != cat], 2)
            votes = [cat, *others]
            r.shuffle(votes)
            labels = dict(zip(ANNOTATORS, votes, strict=True))
            stats["three_way"] += 1
        elif u < 0.20:
            labels[r.choice(ANNOTATORS)] = CONFUSABLE[cat]
            stats["one_disagrees"] += 1
        else:
            stats["unanimous"] += 1
        rows += [(t["ticket_id"], a, lab) for a, lab in labels.items()]
    return rows, stats


# ------------------------------------------------------------------------------------------
# chat transcripts
# ------------------------------------------------------------------------------------------

TURN_WEIGHTS = {2: 14, 3: 6, 4: 30, 5: 5, 6: 25, 7: 4, 8: 16}


def build_conversations(seed: int) -> list[dict]:
    s = Slots(random.Random(f"{seed}-chats"), seed + 2)
    r = s.rng
    convs = []
    for _ in range(N_CONVERSATIONS - N_DUP_CONVERSATIONS):
        cat = _weighted(r, TICKET_WEIGHTS)
        ctx = s.person()
        subjects, cores, reply = r.choice(P.SCENARIOS[cat])
        subject = r.choice(subjects).lower()
        opener = r.choice((subject, f"hi, {subject}", r.choice(cores)))
        s.pick_product(ctx, opener, reply)
        ask, answer = r.choice(P.CHAT_DETAILS)
        follow_up, follow_answer = r.choice(P.CHAT_FOLLOWUPS)
        script = [
            ("customer", opener),
            ("agent", ask),
            ("customer", answer),
            ("agent", reply),
            ("customer", follow_up),
            ("agent", follow_answer),
            ("customer", r.choice(P.CUSTOMER_ENDS)),
            ("agent", "Thanks for chatting with Acme Cloud. Have a great day!"),
        ]
        n = r.choices(list(TURN_WEIGHTS), weights=list(TURN_WEIGHTS.values()))[0]
        turns = [(role, s.fill(text, ctx)) for role, text in script[:n]]
        if r.random() < 0.12:
            turns.insert(0, ("system", s.fill(r.choice(P.SYSTEM_TURNS), ctx)))
        start = ANCHOR - timedelta(seconds=r.randint(3600, 120 * 86400))
        convs.append({"start": start, "turns": turns, "duplicate": False, "category": cat})
    for orig in r.sample(convs, N_DUP_CONVERSATIONS):
        later = orig["start"] + timedelta(seconds=r.randint(600, 86400))
        convs.append({**orig, "start": min(later, ANCHOR - timedelta(hours=1)), "duplicate": True})
    order = sorted(range(len(convs)), key=lambda i: (convs[i]["start"], i))
    out = []
    for n, i in enumerate(order, start=1):
        c = convs[i]
        stamps, ts = [], c["start"]
        for _ in c["turns"]:
            stamps.append(_iso(ts))
            ts += timedelta(seconds=r.randint(20, 240))
        out.append({**c, "conversation_id": f"C-{n:06d}", "stamps": stamps})
    return out


# ------------------------------------------------------------------------------------------
# rankings, knowledge base, production queries, evaluation set
# ------------------------------------------------------------------------------------------


def _unique_questions(
    s: Slots, n: int, weights: dict[str, int], parity: int
) -> list[tuple[str, str]]:
    """n distinct (category, question); eval and rankings use disjoint templates (parity)."""
    seen, out = set(), []
    while len(out) < n:
        cat = _weighted(s.rng, weights)
        templates = P.QUESTIONS[cat][parity::2]
        q = s.fill_one(s.rng.choice(templates))
        if q not in seen:
            seen.add(q)
            out.append((cat, q))
    return out


def build_eval(seed: int) -> list[dict]:
    s = Slots(random.Random(f"{seed}-eval"), seed + 3)
    questions = _unique_questions(s, N_EVAL, TICKET_WEIGHTS, parity=0)
    return [
        {"id": f"E-{i:04d}", "prompt": q, "expected": P.EVAL_ANSWERS[cat], "category": cat}
        for i, (cat, q) in enumerate(questions, start=1)
    ]


def build_rankings(seed: int) -> tuple[list[dict], Counter]:
    s = Slots(random.Random(f"{seed}-rankings"), seed + 4)
    r = s.rng
    rows, stats = [], Counter()
    for i, (cat, prompt) in enumerate(_unique_questions(s, N_PROMPTS, TICKET_WEIGHTS, parity=1), 1):
        area, step = P.RESPONSE_AREAS[cat]
        ctx = {"area": area, "step": step, "step_lower": step[0].lower() + step[1:]}
        s.pick_product(ctx, prompt)
        responses = [s.fill(r.choice(tier), ctx) for tier in P.RESPONSE_TIERS]
        ranks = [1, 2, 3, 4]
        u = r.random()
        if u < 0.05:
            j = r.randrange(3)
            ranks[j + 1] = ranks[j]  # a tie: competition ranking, e.g. 1, 2, 2, 4
            stats["ties"] += 1
        elif u < 0.13:
            ranks[1], ranks[2] = ranks[2], ranks[1]  # annotator preferred the vaguer answer
            stats["swapped_middle"] += 1
        annotator = r.choice(ANNOTATORS)
        order = list(range(4))
        r.shuffle(order)
        for k, tier in enumerate(order, start=1):
            rows.append(
                {
                    "prompt_id": f"P-{i:04d}",
                    "prompt": prompt,
                    "response_id": f"P-{i:04d}-R{k}",
                    "response": responses[tier],
                    "rank": ranks[tier],
                    "annotator": annotator,
                }
            )
    return rows, stats


def _kb_body(s: Slots, title: str, cat: str, ctx: dict) -> str:
    r = s.rng
    area, step = P.RESPONSE_AREAS[cat]
    ctx.update(area=area, step=step, topic_lower=title[0].lower() + title[1:])
    rest = sorted(r.sample(range(1, len(P.KB_PARAGRAPHS)), r.randint(3, 6)))
    paras = [s.fill(P.KB_PARAGRAPHS[i], ctx) for i in [0, *rest]]
    style = r.choices(("plain", "html", "markdown"), weights=(50, 25, 25))[0]
    steps = ["Sign in to the console.", f"Open Settings > {area}.", step]
    if style == "html":
        items = "".join(f"<li>{x}</li>" for x in steps)
        body = "".join(f"<p>{p}</p>\n" for p in paras)
        return f"<h2>{title}</h2>\n{body}<h3>Steps</h3>\n<ol>{items}</ol>"
    if style == "markdown":
        items = "\n".join(f"{n}. {x}" for n, x in enumerate(steps, start=1))
        note = "**Note:** keep your client up to date."
        return f"## {title}\n\n" + "\n\n".join(paras) + f"\n\n### Steps\n\n{items}\n\n{note}"
    return "\n\n".join(paras)


def build_articles(seed: int) -> list[dict]:
    s = Slots(random.Random(f"{seed}-kb"), seed + 5)
    r = s.rng
    arts = []
    for _ in range(N_ARTICLES - N_DUP_ARTICLES):
        cat = _weighted(r, TICKET_WEIGHTS)
        ctx: dict[str, str] = {}
        topic = r.choice(P.KB_TOPICS[cat])
        s.pick_product(ctx, topic, "{hw}" if cat == "shipping" else "")
        title = s.fill(topic, ctx)
        updated = ANCHOR - timedelta(seconds=r.randint(86400, 720 * 86400))
        body = _kb_body(s, title, cat, ctx)
        arts.append({"title": title, "body": body, "updated_at": updated, "kind": "normal"})
    for i in r.sample(range(len(arts)), N_EMPTY_ARTICLES):
        arts[i].update(body=r.choice(KB_EMPTY_BODIES), kind="near_empty")
    normal = [a for a in arts if a["kind"] == "normal"]
    arts += [{**a, "kind": "duplicate"} for a in r.sample(normal, N_DUP_ARTICLES)]
    r.shuffle(arts)
    return [{**a, "article_id": f"KB-{n:04d}"} for n, a in enumerate(arts, start=1)]


def build_queries(seed: int) -> list[dict]:
    s = Slots(random.Random(f"{seed}-queries"), seed + 6)
    r = s.rng
    rows = []
    for i in range(1, N_QUERIES + 1):
        cat = _weighted(r, P.PRODUCTION_WEIGHTS)
        text = s.fill_one(r.choice(P.PRODUCTION_QUERIES[cat]))
        if r.random() < 0.3:
            text = f"acme {text}" if r.random() < 0.5 else f"{text}?"
        rows.append({"query_id": f"Q-{i:05d}", "text": text, "category": cat})
    return rows


# ------------------------------------------------------------------------------------------
# writers
# ------------------------------------------------------------------------------------------


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_sqlite(path: Path, conversations: list[dict]) -> None:
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    try:
        con.execute(
            "CREATE TABLE chat_turns (conversation_id TEXT NOT NULL, turn_index INTEGER NOT NULL,"
            " role TEXT NOT NULL, content TEXT NOT NULL, created_at TEXT NOT NULL,"
            " PRIMARY KEY (conversation_id, turn_index))"
        )
        con.executemany(
            "INSERT INTO chat_turns VALUES (?, ?, ?, ?, ?)",
            [
                (c["conversation_id"], i, role, text, c["stamps"][i])
                for c in conversations
                for i, (role, text) in enumerate(c["turns"])
            ],
        )
        con.commit()
    finally:
        con.close()


def _write_parquet(path: Path, articles: list[dict]) -> None:
    schema = pa.schema(
        [
            ("article_id", pa.string()),
            ("title", pa.string()),
            ("body", pa.string()),
            ("updated_at", pa.timestamp("us", tz="UTC")),
        ]
    )
    table = pa.Table.from_pylist(
        [{k: a[k] for k in schema.names} for a in articles], schema=schema
    )
    pq.write_table(table, path, compression="zstd")


def generate(out_dir: Path | str, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Write every demo file into ``out_dir``; return the planted counts shown in the README."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    eval_rows = build_eval(seed)
    tickets = build_tickets(seed, eval_rows)
    labels, label_stats = build_labels(seed, tickets)
    convs = build_conversations(seed)
    rankings, rank_stats = build_rankings(seed)
    articles = build_articles(seed)
    queries = build_queries(seed)
    ratings, rating_stats = F.build_ratings(seed, rankings)
    argilla, argilla_stats = F.build_argilla_rankings(seed, rankings)
    review, review_stats = F.build_review_export(seed, tickets, labels, ANCHOR)
    names = Slots(random.Random(f"{seed}-teacher-names"), seed + 9)
    teacher, teacher_stats = F.build_teacher_outputs(seed, queries, names.person)

    _write_jsonl(
        out / "support_tickets.jsonl",
        ({f: (_iso(t["ts"]) if f == "created_at" else t[f]) for f in TICKET_FIELDS} for t in tickets),
    )
    with (out / "ticket_labels.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("ticket_id", "annotator", "label"))
        writer.writerows(labels)
    _write_sqlite(out / "chat_transcripts.sqlite", convs)
    _write_jsonl(out / "response_rankings.jsonl", rankings)
    _write_parquet(out / "kb_articles.parquet", articles)
    _write_jsonl(out / "production_queries.jsonl", queries)
    _write_jsonl(
        out / "eval_set.jsonl",
        ({k: e[k] for k in ("id", "prompt", "expected")} for e in eval_rows),
    )
    with (out / "response_ratings.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("response_id", "rater", "rating", "status"))
        writer.writerows(ratings)
    for name, data in (("argilla_rankings.json", argilla),
                       ("ticket_review_label_studio.json", review)):  # fmt: skip
        text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
        (out / name).write_text(text, encoding="utf-8", newline="\n")
    _write_jsonl(out / "teacher_outputs.jsonl", teacher)

    kinds = Counter(t["kind"] for t in tickets)
    counts = {
        "tickets": len(tickets),
        "categories": len({t["category"] for t in tickets if t["category"]}),
        **{f"tickets_{k}": v for k, v in sorted(kinds.items())},
        "label_rows": len(labels),
        **{f"labels_{k}": v for k, v in sorted(label_stats.items())},
        "conversations": len(convs),
        "conversation_turns": sum(len(c["turns"]) for c in convs),
        "conversations_duplicate": sum(c["duplicate"] for c in convs),
        "conversations_with_system_turn": sum(c["turns"][0][0] == "system" for c in convs),
        "conversations_ending_with_customer": sum(c["turns"][-1][0] == "customer" for c in convs),
        "prompts": N_PROMPTS,
        "ranking_rows": len(rankings),
        **{f"rankings_{k}": v for k, v in sorted(rank_stats.items())},
        "articles": len(articles),
        "articles_duplicate": sum(a["kind"] == "duplicate" for a in articles),
        "articles_near_empty": sum(a["kind"] == "near_empty" for a in articles),
        "queries": len(queries),
        "eval": len(eval_rows),
        **{f"ratings_{k}": v for k, v in sorted(rating_stats.items())},
        **{f"argilla_{k}": v for k, v in sorted(argilla_stats.items())},
        **{f"review_{k}": v for k, v in sorted(review_stats.items())},
        **{f"teacher_{k}": v for k, v in sorted(teacher_stats.items())},
    }
    (out / "README.md").write_text(_readme(counts, seed), encoding="utf-8", newline="\n")
    return counts


def _readme(c: dict[str, int], seed: int) -> str:
    return f"""# Demo data: Acme Cloud support archive

Synthetic data of the fictional company **Acme Cloud** (SaaS storage/compute plus network
hardware). Generated by `python -m ftdata_pipeline.demo.generate --out demo_data` with seed
{seed}; dates lie before the fixed anchor {ANCHOR.date().isoformat()} (UTC), so regenerating gives
byte-identical files. Every person, address, phone number, IBAN, SSN and IP is made up by
Faker; card numbers are the Luhn-valid test numbers payment processors publish.

## support_tickets.jsonl ({c['tickets']} rows)
Fields: `ticket_id` (T-000001, in created_at order), `created_at` (ISO 8601 UTC), `channel`,
`product`, `subject`, `body`, `agent_reply`, `customer_email`. The intent category is not a
field: it comes from `ticket_labels.csv`. Bodies mix {c['categories']} categories ({", ".join(P.CATEGORIES)})
and often carry PII (names, emails, US and international phones, card numbers, street
addresses, IBANs, SSNs, IPv4/IPv6 addresses).

Planted for the curate stage:
| what | rows |
|---|---|
| exact duplicates (same subject/body/reply/email, later ticket_id) | {c.get('tickets_exact_dup', 0)} |
| near duplicates (a few words edited or a line added) | {c.get('tickets_near_dup', 0)} |
| empty or whitespace-only body | {c.get('tickets_junk_empty', 0)} |
| too-short body ("help", "?") | {c.get('tickets_junk_short', 0)} |
| boilerplate-only body ("Sent from my iPhone", auto-reply) | {c.get('tickets_junk_boilerplate', 0)} |
| Spanish / German / French | {c.get('tickets_foreign_es', 0)} / {c.get('tickets_foreign_de', 0)} / {c.get('tickets_foreign_fr', 0)} |
| HTML markup | {c.get('tickets_html', 0)} |
| odd whitespace / NBSP / decomposed (NFD) accents | {c.get('tickets_odd_unicode', 0)} |
| an `eval_set.jsonl` prompt pasted verbatim | {c.get('tickets_eval_verbatim', 0)} |
| an `eval_set.jsonl` prompt pasted nearly (case, punctuation, a few words) | {c.get('tickets_eval_near', 0)} |

Junk tickets have a junk subject too, so `"{{subject}}\\n\\n{{body}}"` stays under 8 words.

## ticket_labels.csv ({c['label_rows']} rows)
Fields: `ticket_id`, `annotator` (ann_a, ann_b, ann_c), `label` (one of the categories).
Junk tickets are not labelled. Per ticket: all three agree {c.get('labels_unanimous', 0)}, one annotator
disagrees {c.get('labels_one_disagrees', 0)}, three-way disagreement {c.get('labels_three_way', 0)}, only one or two
annotators {c.get('labels_partial', 0)}.

## chat_transcripts.sqlite
Table `chat_turns(conversation_id TEXT, turn_index INTEGER, role TEXT, content TEXT,
created_at TEXT)`, primary key (conversation_id, turn_index). {c['conversations']} conversations,
{c['conversation_turns']} turns; roles `customer`, `agent` and sometimes a leading `system` turn
({c['conversations_with_system_turn']} conversations). {c['conversations_ending_with_customer']} conversations end on the customer's turn;
{c['conversations_duplicate']} are duplicates of another conversation under a new id. Some turns hold PII.

## response_rankings.jsonl ({c['ranking_rows']} rows)
Fields: `prompt_id`, `prompt`, `response_id`, `response`, `rank` (1 = best, 4 = worst),
`annotator`. {c['prompts']} prompts with 4 responses each, in shuffled order. Quality follows rank
(best: specific steps; worst: curt or refusing). Ties (two responses sharing a rank): {c.get('rankings_ties', 0)}
prompts; middle ranks swapped by the annotator: {c.get('rankings_swapped_middle', 0)} prompts.

## kb_articles.parquet ({c['articles']} rows)
Fields: `article_id`, `title`, `body` (plain, HTML or Markdown help-center prose),
`updated_at` (timestamp, UTC). {c['articles_duplicate']} exact duplicates of another article (new id),
{c['articles_near_empty']} near-empty bodies. Published help-center content, no PII.

## production_queries.jsonl ({c['queries']} rows)
Fields: `query_id`, `text`, `category`. A sample of real user search queries, used as the
reference distribution for representativeness checks; it leans more to access and technical
questions than the ticket archive.

## eval_set.jsonl ({c['eval']} rows)
Fields: `id`, `prompt`, `expected`. A held-out evaluation set;
{c.get('tickets_eval_verbatim', 0) + c.get('tickets_eval_near', 0)} of its prompts are planted in tickets (see above) for the decontamination filter.
Its prompts come from different question templates than `response_rankings.jsonl`.

## response_ratings.csv ({c['ratings_rows']} rows)
Fields: `response_id` (of `response_rankings.jsonl`), `rater` (rater_1..3), `rating` (1-5),
`status` (submitted | discarded). Two or three raters per response; ratings follow the rank
(1 -> 5, 2 -> 4, 3 -> 2, 4 -> 1) with {c.get('ratings_noisy', 0)} ratings one point off;
{c.get('ratings_discarded', 0)} discarded.

## argilla_rankings.json ({c['argilla_records']} records)
Argilla 2.x records as `dataset.records.to_list(flatten=True)` exports them: fields `prompt`,
`response_1..4`, metadata `source`/`source_key` (the prompt) and `response_1_key..4` (the
response_id each ranking option stands for), and the ranking question `ranking.responses` (per
reviewer, the options best first, as the SDK reads a stored ranking back), `.users` (user
UUIDs) and `.status`: submitted {c.get('argilla_submitted', 0)}, discarded {c.get('argilla_discarded', 0)}, draft {c.get('argilla_draft', 0)};
{c.get('argilla_swapped', 0)} rankings swap two neighbours.

## ticket_review_label_studio.json ({c.get('review_answered', 0)} tasks)
A Label Studio JSON export of the ticket review queue: the tickets whose three annotators
chose three different intents, each answered by a lead reviewer (`choices` control `label`);
{c.get('review_cancelled', 0)} tasks also carry a cancelled (skipped) annotation by another reviewer.

## teacher_outputs.jsonl ({c['teacher_rows']} rows)
Fields: `query_id` (of `production_queries.jsonl`), `teacher_model`, `teacher_version`,
`response`, `judge_score` (0-1). Every query is answered by acme-teacher-xl, some also by
acme-teacher-l. Planted: refusals {c.get('teacher_acme-teacher-xl_refusal', 0) + c.get('teacher_acme-teacher-l_refusal', 0)}, empty answers {c.get('teacher_acme-teacher-xl_empty', 0) + c.get('teacher_acme-teacher-l_empty', 0)}, too-short answers
{c.get('teacher_acme-teacher-xl_short', 0) + c.get('teacher_acme-teacher-l_short', 0)}, judge scores below 0.5 {c.get('teacher_acme-teacher-xl_low_score', 0) + c.get('teacher_acme-teacher-l_low_score', 0)}, answers greeting a (made-up) customer by
name {c.get('teacher_acme-teacher-xl_with_name', 0) + c.get('teacher_acme-teacher-l_with_name', 0)}.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_data", help="output directory")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    counts = generate(args.out, args.seed)
    print(f"wrote demo data to {args.out}: {counts['tickets']} tickets, "
          f"{counts['conversations']} conversations, {counts['ranking_rows']} ranking rows, "
          f"{counts['articles']} articles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
