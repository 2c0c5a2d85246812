"""spaCy NER over sentences, each distinct sentence once per process.

NER is most of the redaction stage's CPU time, and support, chat and e-mail archives repeat
themselves a sentence at a time: greetings, sign-offs, macros and agent templates recur in
thousands of otherwise different records. So the entity recognizer reads each text as its
sentences and lines, runs over every distinct one once (a bounded memo per process), and the
entities are placed back at their offsets in the whole text. Everything else Presidio does —
pattern recognizers, context words, the project's recognizers — still reads the whole text,
tokenized as a whole, so a phone number's context word on the previous line still counts.

Why cut by hand: a sentence splitter from spaCy (parser or senter) costs about what NER
itself costs, which would defeat the point; boundaries here are line breaks and a
sentence-final ``.!?`` before a capital, never after a title or an initial ("Dr. Ng",
"J. R. Smith"), so a name is not cut in two. The NER model's view of a token reaches only a
few tokens either side, so a sentence alone gives the entities of the sentence in its text
nearly always; the PII evaluation on independent data (presidio-evaluator's generator) is the
evidence, run beside the whole-text mode by ``benchmarks/pii_evaluation.py``.
"""

from __future__ import annotations

import re
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence

from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

# A line break, or blanks after sentence-final punctuation before what opens a sentence.
_BOUNDARY = re.compile(r"[ \t]*\n\s*|(?<=[.!?])[ \t]+(?=[\"'(\[]?[A-Z0-9])")
# What may end just before a period that ends no sentence: a title or an initial.
_NO_END = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Mx|Dr|Prof|Sr|Jr|St|Mt|Ft|Rev|Hon|Gen|Col|Capt|Lt|Sgt|No|Nr|Co|Inc|"
    r"Ltd|Corp|Ave|Blvd|Rd|Apt|Ste|Dept|vs|etc|approx|e\.g|i\.e|[A-Za-z])\.)$"
)

MEMO_CHARS = 10_000_000  # sentences kept per process, in characters (about 40 MB with entries)


def sentences(text: str) -> list[tuple[int, str]]:
    """``(offset, sentence)`` pieces of ``text``: cut at line breaks and sentence ends."""
    out: list[tuple[int, str]] = []
    pos = 0
    for m in _BOUNDARY.finditer(text):
        if "\n" not in m.group() and _NO_END.search(text, max(0, m.start() - 8), m.start()):
            continue
        if m.start() > pos:
            out.append((pos, text[pos : m.start()]))
        pos = m.end()
    if pos < len(text):
        out.append((pos, text[pos:]))
    return out


_LIVE: weakref.WeakSet[SentenceNer] = weakref.WeakSet()


def clear_all() -> None:
    """Empty the memo of every ``SentenceNer`` of this process (benchmarks compare runs)."""
    for ner in list(_LIVE):
        ner.memo.clear()
        ner._held = 0


class SentenceNer:
    """Entities ``(start, end, label)`` of texts, found sentence by sentence.

    The memo maps a sentence to its entities, least recently used first; it is trimmed to
    ``memo_chars`` characters of sentences, which changes no result (a sentence's entities do
    not depend on what else is in the batch), only how often a sentence is read again."""

    def __init__(self, nlp, memo_chars: int = MEMO_CHARS):
        _LIVE.add(self)
        self.nlp = nlp
        self.memo: OrderedDict[str, tuple[tuple[int, int, str], ...]] = OrderedDict()
        self.memo_chars = memo_chars
        self._held = 0
        self.sentences_read = 0  # NER calls, for tests and benchmarks
        self.sentences_seen = 0

    def entities(self, texts: Sequence[str], batch_size: int) -> list[list[tuple[int, int, str]]]:
        pieces = [sentences(t) for t in texts]
        found: dict[str, tuple[tuple[int, int, str], ...]] = {}
        todo: list[str] = []
        for ps in pieces:
            for _, s in ps:
                if s in found:
                    continue
                hit = self.memo.get(s)
                if hit is None:
                    found[s] = ()
                    todo.append(s)
                else:
                    self.memo.move_to_end(s)
                    found[s] = hit
        self.sentences_seen += sum(map(len, pieces))
        self.sentences_read += len(todo)
        for sentence, doc in zip(todo, self.nlp.pipe(todo, batch_size=batch_size), strict=True):
            ents = tuple((e.start_char, e.end_char, e.label_) for e in doc.ents)
            found[sentence] = self.memo[sentence] = ents
            self._held += len(sentence)
        while self._held > self.memo_chars and self.memo:
            oldest, _ = self.memo.popitem(last=False)
            self._held -= len(oldest)
        return [
            [(off + a, off + b, label) for off, s in ps for a, b, label in found[s]]
            for ps in pieces
        ]


def _doc_with(nlp, text: str, ents: Iterable[tuple[int, int, str]]) -> Doc:
    """``text`` tokenized as a whole, with ``ents`` set at their character offsets."""
    doc = nlp.make_doc(text)
    spans: list[Span] = []
    for start, end, label in ents:
        span = doc.char_span(start, end, label=label, alignment_mode="expand")
        if span is not None:
            spans.append(span)
    doc.ents = filter_spans(spans)
    return doc


def process_batch(
    self: SpacyNlpEngine,
    texts,
    language: str,
    batch_size: int = 1,
    n_process: int = 1,
    as_tuples: bool = False,
) -> Iterator[tuple]:
    """``SpacyNlpEngine.process_batch`` with NER read sentence by sentence (see module doc).

    Bound to one engine instance, with its ``_sentence_ner`` memo per language, by
    ``engine.nlp_engine``; yields what Presidio's does."""
    items = list(texts)
    if as_tuples:
        contexts = [c for _, c in items]
        items = [t for t, _ in items]
    items = [str(t) for t in items]
    nlp = self.nlp[language]
    ner = self._sentence_ner[language]
    step = max(1, batch_size) * 8
    for lo in range(0, len(items), step):
        chunk = items[lo : lo + step]
        for i, (text, ents) in enumerate(zip(chunk, ner.entities(chunk, batch_size), strict=True)):
            artifacts: NlpArtifacts = self._doc_to_nlp_artifact(_doc_with(nlp, text, ents), language)
            yield (text, artifacts, contexts[lo + i]) if as_tuples else (text, artifacts)


def process_text(self: SpacyNlpEngine, text: str, language: str) -> NlpArtifacts:
    """``SpacyNlpEngine.process_text`` through the same sentence-by-sentence NER."""
    return next(iter(process_batch(self, [text], language)))[1]
