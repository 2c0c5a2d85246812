"""Second look at the analyzer's detections before they are replaced: precision and whole names.

Precision (what is dropped):
- **code**: identifiers (dotted, ``snake_case``, ``camelCase``, calls, subscripts) and the
  code of fenced / indented / inline code blocks are never URL, PERSON, LOCATION or NRP. Inside
  code, comments and string literals are still prose: a name there is still redacted, and
  pattern types (e-mail, phone, card, IP ...) are redacted anywhere;
- **URLs** need a scheme, ``www.``, or a host whose last label is a real, commonly used top-level
  domain at a word boundary (``asyncio.sleep`` and ``self.items`` are attribute access);
- **vocabulary**: tech terms ("Python", "GraphQL", "AI") are never a place or a person; a NER
  PERSON made only of dictionary words that are no known names ("Broken on arrival",
  "Switch to annual billing") is a capitalized word, not a name; NER spans without letters,
  with digits, or in camelCase are not names or places.

Recall (what is added):
- **whole names**: a PERSON span grows over neighbouring name words (capitalized words that are
  known names or not dictionary words, initials, particles), so "Lina Okafor" never becomes
  "Lina <PERSON>"; every other occurrence in the text of a word of a detected name (a known name
  or a non-dictionary word) is a PERSON too.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from presidio_analyzer import RecognizerResult

from ftdata_pipeline.stages.pii.lexicon import (
    common_words,
    dictionary_words,
    is_known_name,
    place_names,
    tech_terms,
)

NER = "SpacyRecognizer"
SOFT_TYPES = frozenset({"PERSON", "LOCATION", "NRP", "URL", "ORGANIZATION"})

_FENCED = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?(?:^[ \t]*\1[ \t]*$|\Z)", re.S | re.M)
_INDENTED = re.compile(r"(?:(?<=\n\n)|(?<=\A))(?:(?:    |\t)[^\n]*(?:\n|\Z))+")
_INLINE = re.compile(r"`[^`\n]+`")
# Prose inside code: comments and string literals.
_PROSE_IN_CODE = re.compile(
    r"(?:#|//|--|;;)[^\n]*|/\*.*?\*/|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'", re.S
)
_TOKEN_STRIP = "\"'`,;:!?<>«»“”‘’*"
_IDENTIFIER = re.compile(
    r"(?:\w+(?:\.|::|->)\w+)"  # attribute or module access
    r"|\w_\w|^_|_$"  # snake_case, dunder
    r"|(?:^|[^A-Za-z])[a-z][a-z0-9]*[A-Z]"  # camelCase (not "McCune": that starts upper)
    r"|\w\(|\)\.|\w\[|\]"  # calls, subscripts
    r"|=|\$\w|^--?\w|/\w+/"  # assignments, variables, flags, paths
)
_SCHEME = re.compile(r"(?i)^(?:[a-z][a-z0-9+.-]*://|www\.|mailto:)")
# Top-level domains a scheme-less host may end in. Not listed: those that are also common file
# extensions or attribute names in code (.py .sh .md .rs .so .pl .go .js .ts .in .is .it ...).
_TLDS = frozenset(
    """
    com org net edu gov mil int io co uk de fr nl be es pt ch at se no dk fi ie pl cz sk hu
    ro bg gr hr si ee lv lt lu eu us ca mx br ar cl cn jp kr tw hk sg au nz za ru ua tr il
    ae sa info biz app dev cloud ai tech online site store shop blog news me tv fm ly gg
    """.split()
)
_HOST_END = re.compile(r"[.\-_/]?\w")


def code_regions(text: str) -> list[tuple[int, int]]:
    """Sorted (start, end) spans of fenced, indented and inline code."""
    spans = [m.span() for m in _FENCED.finditer(text)]
    if "\n\n    " in text or "\n\n\t" in text or text.startswith(("    ", "\t")):
        spans += [m.span() for m in _INDENTED.finditer(text)]
    spans += [m.span() for m in _INLINE.finditer(text)]
    return sorted(spans)


def _inside(regions: list[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    i = bisect_right(regions, (start, float("inf"))) - 1
    for j in range(max(0, i - 2), min(len(regions), i + 2)):
        a, b = regions[j]
        if a <= start and end <= b:
            return a, b
    return None


def _token(text: str, start: int, end: int) -> str:
    """The whitespace-delimited token(s) around a span, without quotes and punctuation."""
    a, b = start, end
    while a > 0 and not text[a - 1].isspace():
        a -= 1
    while b < len(text) and not text[b].isspace():
        b += 1
    token = text[a:b].strip(_TOKEN_STRIP)
    # sentence punctuation after the token is no code: "(not by Josefine A. Lind)."
    token = re.sub(r"[).,;:!?]+$", "", token) if re.search(r"\w[).,;:!?]*$", token) else token
    if token.startswith("(") and ")" not in token:
        token = token[1:]
    return token


def _looks_like_code(token: str) -> bool:
    return bool(_IDENTIFIER.search(token))


def _url_ok(text: str, r: RecognizerResult) -> bool:
    value = text[r.start : r.end]
    if _SCHEME.match(value):
        return True
    before = text[r.start - 1] if r.start else " "
    after = text[r.end : r.end + 2]
    if before in "._/\\-" or before.isalnum() or _HOST_END.match(after):
        return False  # part of a longer identifier or path: "asyncio.sl|eep", "a.b.c_d"
    if after[:1] == "(":
        return False  # a call: "requests.get(...)"
    host = value.split("/")[0].split(":")[0].rstrip(".")
    labels = host.split(".")
    if len(labels) < 2 or labels[-1].casefold() not in _TLDS:
        return False
    # a host is lower-case letters, digits and dashes; "Foo.Bar" or "self.items" are code
    return all(re.fullmatch(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", x) for x in labels[:-1]) and (
        labels[-2].casefold() not in {"self", "this", "cls", "os", "sys", "np", "pd", "pl"}
    )


def _plausible_ner(text: str, r: RecognizerResult) -> bool:
    value = text[r.start : r.end].strip()
    if not any(c.isalpha() for c in value) or any(c.isdigit() for c in value):
        return False
    if len(value) <= 3 and value.islower():
        return False  # the pronoun "us", the region prefix "eu"
    if " " not in value and value.isupper() and (r.entity_type == "PERSON" or len(value) <= 4):
        return value in {"USA", "UK", "UAE", "NYC"} and r.entity_type == "LOCATION"
    if re.search(r"[a-z][A-Z]", re.sub(r"\b(?:Mc|Mac|O'|D'|Fitz)(?=[A-Z])", "", value)):
        return False  # camelCase, "GraphQL", "iPhone" (not "McGregor")
    return True


def _words(value: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", value) if w]


def _is_tech(value: str) -> bool:
    terms = tech_terms()
    v = value.casefold().strip(" .,:;!?'\"")
    return v in terms or all(w.strip(".,:;!?'\"") in terms for w in _words(v))


def _dictionary_only(value: str) -> bool:
    """Every word is an English dictionary word and none is a known given or family name."""
    words = [w.strip(".,:;!?'\"()").casefold() for w in _words(value)]
    dic = dictionary_words()

    def in_dictionary(w: str) -> bool:  # the lemma index holds base forms: "dimensions"
        if w in dic:
            return True
        for suffix in ("s", "es", "ed", "ing"):
            if w.endswith(suffix) and len(w) - len(suffix) > 3 and w[: -len(suffix)] in dic:
                return True
        return False

    return bool(words) and all(in_dictionary(w) and not is_known_name(w) for w in words)


def keep(text: str, r: RecognizerResult, regions: list[tuple[int, int]]) -> bool:
    """Whether a detection survives the precision rules (see the module docstring)."""
    if r.entity_type not in SOFT_TYPES:
        return True
    recognizer = (r.recognition_metadata or {}).get("recognizer_name")
    region = _inside(regions, r.start, r.end) if regions else None
    if region is not None:
        block = text[region[0] : region[1]]
        prose = any(
            a <= r.start - region[0] and r.end - region[0] <= b
            for a, b in (m.span() for m in _PROSE_IN_CODE.finditer(block))
        )
        if not prose:
            return False
    if r.entity_type == "URL":
        return _url_ok(text, r)
    if _looks_like_code(_token(text, r.start, r.end)):
        return False
    value = text[r.start : r.end]
    if _is_tech(value):
        return False
    if recognizer == NER:
        if not _plausible_ner(text, r):
            return False
        if r.entity_type == "PERSON" and _dictionary_only(value):
            return False
        if (
            r.entity_type == "PERSON"
            and " " not in value.strip()
            and value.casefold() in common_words()
            and re.search(r"(?:^|[.!?:]\s+|\n\s*)$", text[: r.start])
        ):
            return False  # "May I ask", "Will you": an ordinary word starting a sentence
    return True


# --------------------------------------------------------------------------------------------
# whole names
# --------------------------------------------------------------------------------------------

_NAME_WORD = re.compile(r"[A-ZÀ-ÖØ-ÞĀ-Ž][a-zß-öø-ÿā-ž]+(?:[-'’][A-ZÀ-ÖØ-ÞĀ-Ž]?[a-zß-öø-ÿā-ž]+)?")
_INITIAL = re.compile(r"[A-ZÀ-ÖØ-Þ]\.?")
_WORD_RUN = re.compile(r"\w+")
_PARTICLES = frozenset("van von der den de del della di da dos das du le la bin al ten ter".split())
_CUE_WORDS = frozenset(
    """
    hi hello hey dear thanks thank cheers regards best mr mrs ms miss dr prof sir madam herr
    frau name customer user client contact agent from to cc attn the a an and or but with for
    by at in on of my our your his her their this that is was team support
    """.split()
)


def _name_word_ok(word: str, lower_ok: bool) -> bool:
    w = word.casefold()
    if w in _CUE_WORDS or w in tech_terms():
        return False
    if _NAME_WORD.fullmatch(word):
        return is_known_name(w) or w not in dictionary_words()
    return lower_ok and word.islower() and is_known_name(w) and w not in dictionary_words()


def _grow(text: str, r: RecognizerResult) -> RecognizerResult:
    """Extend a PERSON span over adjacent name words on the same line."""
    start, end = r.start, r.end
    lower = text[start:end].islower()
    while True:  # to the right: " Okafor", " C. Mackay", " van Dijk"
        m = re.match(r"[ ]([^\s,;:!?()\"<>]+)", text[end:])
        if not m:
            break
        word = m.group(1).rstrip(".")
        if _INITIAL.fullmatch(m.group(1)) and re.match(r"[ ]\S+[ ]" + r"[A-Z]", text[end:]):
            end += m.end()
            continue
        if word.casefold() in _PARTICLES:
            nxt = re.match(r"[ ]\S+[ ]([^\s,;:!?()\"<>]+)", text[end:])
            if nxt and _NAME_WORD.fullmatch(nxt.group(1).rstrip(".")):
                end += len(m.group(0))
                continue
            break
        if not _name_word_ok(word, lower):
            break
        end += 1 + len(word)
    while True:  # to the left: "Lina " before "Okafor"
        m = re.search(r"([^\s,;:!?()\"<>]+)[ ]$", text[:start])
        if not m:
            break
        word = m.group(1)
        if word.casefold() in _PARTICLES and start - m.start() > 0:
            prev = re.search(r"([^\s,;:!?()\"<>]+)[ ]\S+[ ]$", text[:start])
            if prev and _name_word_ok(prev.group(1), lower):
                start = prev.start(1)
                continue
            break
        if _INITIAL.fullmatch(word) and not word.endswith(".") and len(word) == 1:
            # "C Mackay" mid-name: only with a name word before it
            prev = re.search(r"([^\s,;:!?()\"<>]+)[ ]\S+[ ]$", text[:start])
            if prev and _name_word_ok(prev.group(1), lower):
                start = prev.start(1)
                continue
            break
        if not _name_word_ok(word, lower):
            break
        # a capitalized word starting a sentence is only a name if it is a known one
        at_sentence_start = re.search(r"(?:^|[.!?:]\s+|\n)$", text[: m.start()])
        if at_sentence_start and not is_known_name(word):
            break
        start = m.start(1)
    if (start, end) == (r.start, r.end):
        return r
    return RecognizerResult(
        r.entity_type, start, end, r.score, r.analysis_explanation, r.recognition_metadata
    )


def _propagate(text: str, people: list[RecognizerResult]) -> list[RecognizerResult]:
    """Other whole-word occurrences of the detected names' distinctive words."""
    words = set()
    for r in people:
        for w in re.findall(r"[^\W\d_]{3,}", text[r.start : r.end]):
            lw = w.casefold()
            if lw in _CUE_WORDS or lw in tech_terms():
                continue
            # only distinctive words: "Okafor", not "Street" (also a family name) or "de"
            if lw not in dictionary_words() and lw not in _PARTICLES:
                words.add(w)
    if not words:
        return []
    covered = [(r.start, r.end) for r in people]
    # The words are letters only, so a whole-word occurrence is exactly a run of word
    # characters equal to one of them, ignoring case: one scan with a fixed pattern, not a
    # pattern compiled for every text's names.
    wanted = {w.lower() for w in words}
    out = []
    meta = {"recognizer_name": "NamePropagation"}
    for m in _WORD_RUN.finditer(text):
        if m.group().lower() not in wanted:
            continue
        if any(a <= m.start() and m.end() <= b for a, b in covered):
            continue
        out.append(RecognizerResult("PERSON", m.start(), m.end(), 0.6, None, meta))
    return out


def _names_not_places(text: str, results: list[RecognizerResult]) -> list[RecognizerResult]:
    """A NER LOCATION that is a known person name and no known place becomes a PERSON
    ("Lina Okafor wrote", "my kid Kateřina"): the small model confuses the two most often."""
    out = []
    for r in results:
        if r.entity_type == "LOCATION" and (r.recognition_metadata or {}).get(
            "recognizer_name"
        ) == NER:
            value = text[r.start : r.end]
            words = [w.casefold() for w in re.findall(r"[^\W\d_]+", value)]
            if (
                words
                and value.casefold() not in place_names()
                and not any(w in place_names() for w in words)
                and any(is_known_name(w) for w in words)
                and all(is_known_name(w) or w not in dictionary_words() for w in words)
            ):
                r = RecognizerResult(
                    "PERSON", r.start, r.end, r.score, r.analysis_explanation,
                    r.recognition_metadata,
                )
        out.append(r)
    return out


def refine(text: str, results: list[RecognizerResult]) -> list[RecognizerResult]:
    """Apply the precision rules, then grow and propagate person names."""
    if not results:
        return results
    regions = code_regions(text) if ("`" in text or "~~~" in text or "    " in text
                                    or "\t" in text) else []
    kept = [r for r in results if keep(text, r, regions)]
    kept = _names_not_places(text, kept)
    addresses = [(r.start, r.end, r.score) for r in kept if r.entity_type == "STREET_ADDRESS"]
    if addresses:
        # a name or place inside an address is part of the address; so are house and unit
        # numbers that a phone layout would take ("4987 3614 Northwest Boulevard")
        kept = [
            r for r in kept
            if not (
                (r.entity_type in ("PERSON", "LOCATION")
                 and any(a <= r.start and r.end <= b for a, b, _ in addresses))
                or (r.entity_type == "PHONE_NUMBER"
                    and any(r.start < b and a < r.end and r.score <= sc for a, b, sc in addresses))
            )
        ]
    people = [_grow(text, r) if r.entity_type == "PERSON" else r for r in kept]
    persons = [r for r in people if r.entity_type == "PERSON"]
    if persons:
        people += [r for r in _propagate(text, persons) if keep(text, r, regions)]
    return people
