"""The project's own Presidio recognizers: phone numbers, payment cards, names in context,
street addresses and labelled dates of birth.

Each is a ``LocalRecognizer`` that scores its matches itself, including the context words it
needs (Presidio's context enhancer is not used for them: ``context`` is left empty), so the
score a match gets is decided here and tested here.

Scores: >= 0.5 is redacted at the default threshold (0.4) on its own; 0.25 needs a context word
within the few words before the match (+0.35).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import phonenumbers
import regex
from presidio_analyzer import AnalysisExplanation, LocalRecognizer, RecognizerResult

from ftdata_pipeline.stages.pii.lexicon import (
    common_words,
    dictionary_words,
    given_names,
    is_known_name,
    place_names,
    street_suffixes,
    tech_terms,
)
from ftdata_pipeline.stages.pii.phone_regions import DEFAULT_PHONE_REGIONS

CONTEXT_BOOST = 0.35
CONTEXT_CHARS = 40  # how far before a match a context word counts


class _Recognizer(LocalRecognizer):
    """Common plumbing: results with recognizer metadata, context lookup before a match."""

    ENTITY = ""

    def __init__(self, language: str, name: str | None = None):
        super().__init__(
            supported_entities=[self.ENTITY],
            supported_language=language,
            name=name or type(self).__name__,
        )

    def load(self) -> None:  # nothing to load: patterns are compiled at import
        pass

    def _result(self, start: int, end: int, score: float, why: str) -> RecognizerResult:
        return RecognizerResult(
            entity_type=self.ENTITY,
            start=start,
            end=end,
            score=min(1.0, score),
            analysis_explanation=AnalysisExplanation(
                recognizer=self.name, original_score=score, textual_explanation=why
            ),
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            },
        )

    @staticmethod
    def _has_context(text: str, start: int, words: re.Pattern[str], end: int | None = None) -> bool:
        """A context word in the few words before the match (or, given ``end``, right after
        it on the same line: "0480 49 24 35 fax")."""
        if words.search(text[max(0, start - CONTEXT_CHARS) : start]):
            return True
        return end is not None and bool(words.search(text[end : end + 12].split("\n")[0]))


# --------------------------------------------------------------------------------------------
# phone numbers
# --------------------------------------------------------------------------------------------


# Words that name a phone (in the languages of the default regions).
_PHONE_NAMES = (
    r"phone|tel|telephone|tlf|mobile|mob|cell|cellphone|whatsapp|fax|sms|landline|hotline|"
    r"handy|telefon|t[ée]l[ée]phone|tel[ée]fono|celular|m[óo]vil"
)
# Context that raises a number libphonenumber already validates: phone words and the words
# around any number one calls.
_PHONE_CONTEXT = re.compile(
    rf"(?i)\b(?:{_PHONE_NAMES}|call|called|calling|ring|text|number|no\.|contact|reach|dial|"
    r"desk|office|portable)\b"
)
# Words that name a phone, not just any number: a bare digit run that no numbering plan
# validates is a phone only after one of these ("My mobile number is 0001480591"), never after
# "order number" or "ticket no.".
_PHONE_WORDS = re.compile(
    rf"(?i)\b(?:{_PHONE_NAMES}|(?:call|ring|text|reach)(?:ed|ing)?\s+(?:me|us|him|her|them))\b"
)

# A run of digit groups with phone separators (space, dot, dash, slash, parentheses), optional
# '+'/'00' country prefix and extension. Not inside a longer token: not after a letter, digit,
# ':' (clock times "19:29:05.147508"), '.', '/' or '-', and not followed by more of them.
_PHONE_CANDIDATE = regex.compile(
    r"(?<![\w.:/@#+-])"
    r"(?:\+|\b00)?\(?\d[\d \t().\-/]{5,24}\d"
    r"(?:[ \t]?(?:x|ext\.?|extension)[ \t]?\d{1,6})?"
    r"(?![\w:@]|[.,/-]\d)"
)
_DATE_LIKE = re.compile(
    r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{4}[-/]\d{4})$"
)
_IP_LIKE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_NANP_LAYOUT = re.compile(r"^(?:1[ .-])?(?:\(\d{3}\)[ ]?|\d{3}[.-])\d{3}[.-]\d{4}$")
_SSN_LIKE = re.compile(r"^\d{3}-\d{2}-\d{4}$")  # the US SSN layout, left to its recognizer
_BAD_SEPARATORS = re.compile(r"[.\-/]{2}|\(\)|\(\d*$|^\d*\)")
_EXTENSION = re.compile(r"[ \t]?(?:x|ext\.?|extension)[ \t]?\d{1,6}$")


class PhoneNumberRecognizer(_Recognizer):
    """Phone numbers checked by libphonenumber over a list of regions, plus context words.

    Candidates are digit runs in phone layouts; each is parsed once with its '+'/'00' country
    code, or else as a national number of each configured region. Scores:
    - a valid number (libphonenumber's metadata: length and prefixes of a real numbering
      plan) written with separators or a country code: 0.6;
    - a valid number written as one bare digit run: 0.45 with a national trunk prefix
      ("07700982258"), else 0.25; only a *possible* number (right length for a region): 0.25;
    - a context word before it ("call me on", "Mobile:") or right after it lifts any score
      below 0.6 by 0.35, so a weak candidate is redacted next to one even under a raised
      threshold.
    Presidio's own PhoneRecognizer asks only for valid numbers in 8 regions, through
    PhoneNumberMatcher once per region over the whole text; one parse per candidate is cheaper.
    """

    ENTITY = "PHONE_NUMBER"

    def __init__(self, language: str, regions: Iterable[str] = DEFAULT_PHONE_REGIONS):
        super().__init__(language, name="PhoneNumberRecognizer")
        self.regions = tuple(regions)

    def analyze(self, text, entities, nlp_artifacts=None):
        if sum(map(str.isdigit, text)) < 7:
            return []
        out = []
        for m in _PHONE_CANDIDATE.finditer(text):
            start, end = m.span()
            value = m.group().rstrip(" \t")
            # an opening parenthesis is part of the number only if it is closed inside it
            if value.startswith("(") and ")" not in value:
                value, start = value[1:], start + 1
            if value.endswith(")") and "(" not in value:
                value = value[:-1]
            end = start + len(value)
            score = self._score(value)
            # Any score below a confident one is lifted by a context word, so "phone:" carries
            # a bare run over a threshold raised above the default too.
            if score and score < 0.6 and self._has_context(text, start, _PHONE_CONTEXT, end):
                score = min(score + CONTEXT_BOOST, 0.85)
            elif not score and self._bare_phone_length(value) and self._has_context(
                text, start, _PHONE_WORDS, end
            ):
                # No numbering plan knows it ("0001480591": a '00' that is no country code),
                # but a phone word names it: what a reader sees is a phone number.
                score = 0.25 + CONTEXT_BOOST
            if score:
                out.append(self._result(start, end, score, "phone number (libphonenumber)"))
        return out

    @staticmethod
    def _bare_phone_length(value: str) -> bool:
        """One run of 10-15 digits (an optional leading '+'): a phone's length anywhere."""
        core = value.removeprefix("+")
        return core.isdigit() and 10 <= len(core) <= 15

    def _score(self, value: str) -> float:
        core = _EXTENSION.sub("", value)
        digits = sum(c.isdigit() for c in core)
        if not 7 <= digits <= 15 or _BAD_SEPARATORS.search(core):
            return 0.0
        if re.search(r"[ \t]{2}", core) or (" " in core and re.search(r"\.\d{1,2}$", core)):
            return 0.0  # columns of a table, a decimal after a number: "6371  5973.6"
        if _DATE_LIKE.match(core) or _IP_LIKE.match(core) or _SSN_LIKE.match(core):
            return 0.0
        if "." in core and re.fullmatch(r"[\d.]+", core) and core.count(".") < 2:
            return 0.0  # "20240501.3", "1234.5678": a build number or an amount
        if _NANP_LAYOUT.match(core):
            # the printed North American layout, even with an unassigned area code (test and
            # demo data use them; the independent residual scan flags this layout too)
            return 0.5
        separated = any(not c.isdigit() for c in core.lstrip("+"))
        international = core.startswith(("+", "00"))
        if international:
            number = _parse(core.replace("00", "+", 1) if core.startswith("00") else core, None)
            if number is None:
                return 0.0
            if phonenumbers.is_valid_number(number):
                return 0.6
            return 0.4 if phonenumbers.is_possible_number(number) and digits >= 10 else 0.0
        possible = False
        for region in self.regions:
            number = _parse(core, region)
            if number is None:
                continue
            if phonenumbers.is_valid_number(number):
                # a bare run is redacted alone only with a national trunk prefix ("07700982258")
                return 0.6 if separated else (0.45 if core.startswith("0") else 0.25)
            possible = possible or phonenumbers.is_possible_number(number)
        # All dots and no validity: more often a version or an id ("1.234.567") than a phone.
        # (valid numbers written with dots come in 3+ groups: "06.12.34.56.78", "555.123.4567")
        if possible and not re.fullmatch(r"[\d.]+", core):
            return 0.25
        return 0.0


def _parse(value: str, region: str | None):
    try:
        return phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None


# --------------------------------------------------------------------------------------------
# payment cards
# --------------------------------------------------------------------------------------------

_CARD_CANDIDATE = regex.compile(r"(?<![\w+.,/-])\d(?:[ -]?\d){11,18}(?![\w]|[.,/-]\d)")
_CARD_CONTEXT = re.compile(
    r"(?i)\b(?:card|cc|credit|debit|visa|master ?card|amex|american express|discover|jcb|"
    r"diners|maestro|unionpay|mir|rupay|elo|hipercard|payment|charge[ds]?|pan)\b"
)
# Issuer identification number prefixes of the card brands (ISO/IEC 7812 registrations as
# published by the networks), with the lengths each brand issues.
_BRANDS: tuple[tuple[str, range], ...] = (
    (r"4", range(13, 20)),  # Visa (13, 16, 19)
    (r"5[1-5]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)", range(16, 17)),  # Mastercard
    (r"3[47]", range(15, 16)),  # American Express
    (r"6011|64[4-9]|65", range(16, 20)),  # Discover
    (r"35(?:2[89]|[3-8]\d)", range(16, 20)),  # JCB
    (r"2131|1800", range(15, 16)),  # JCB (old 15-digit ranges)
    (r"30[0-5]|309|36|3[89]", range(14, 20)),  # Diners Club
    (r"5[06-9]|6\d", range(12, 20)),  # Maestro (12-19 digits)
    (r"62", range(16, 20)),  # UnionPay
    (r"220[0-4]", range(16, 17)),  # Mir
    (r"60|65|81|82|508", range(16, 17)),  # RuPay
)
_BRAND_RES = tuple((re.compile(f"^(?:{p})"), lengths) for p, lengths in _BRANDS)


def luhn_ok(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not digits:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand_ok(digits: str) -> bool:
    return any(p.match(digits) and len(digits) in n for p, n in _BRAND_RES)


class PaymentCardRecognizer(_Recognizer):
    """Card numbers of every brand, 12-19 digits, contiguous or grouped, with a Luhn check.

    A Luhn-valid number with a known brand prefix and length scores 1.0 at 13+ digits; 12-digit
    numbers (Maestro) and numbers whose brand prefix is unknown need a context word ("card",
    "Visa", "charge"): 1 in 10 random digit runs passes Luhn.
    """

    ENTITY = "CREDIT_CARD"

    def analyze(self, text, entities, nlp_artifacts=None):
        if sum(map(str.isdigit, text)) < 12:
            return []
        out = []
        for m in _CARD_CANDIDATE.finditer(text):
            value = m.group()
            digits = "".join(c for c in value if c.isdigit())
            if not luhn_ok(digits) or len(set(digits)) < 2:
                continue
            groups = re.split(r"[ -]", value)
            if len(groups) > 1 and not _card_grouping(groups):
                continue  # "1234 5678 90" style runs: phone or id groups, not a card layout
            score = 1.0 if card_brand_ok(digits) and len(digits) >= 13 else 0.25
            if score < 0.4 and self._has_context(text, m.start(), _CARD_CONTEXT):
                score = 0.75  # above a phone layout's 0.6: "card number 676127809140"
            out.append(self._result(m.start(), m.end(), score, "card number (Luhn)"))
        return out


def _card_grouping(groups: list[str]) -> bool:
    """Printed card layouts: 4-4-4-x groups, Amex/Diners 4-6-4/5, or one group of 4 + rest."""
    sizes = [len(g) for g in groups]
    if all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 7:
        return True
    return sizes[0] == 4 and len(sizes) == 3 and sizes[1] == 6 and sizes[2] in (4, 5)


# --------------------------------------------------------------------------------------------
# names in context
# --------------------------------------------------------------------------------------------

_UP = "A-ZÀ-ÖØ-ÞĀ-Ž"
_LOW = "a-zß-öø-ÿā-ž"
_CAP_WORD = rf"[{_UP}][{_LOW}]+(?:[-'’][{_UP}]?[{_LOW}]+)?"
_INITIAL = rf"[{_UP}]\.?"
_PARTICLE = r"(?:van|von|der|den|de|del|della|di|da|dos|das|du|le|la|bin|al|ten|ter|zu|y)"
# 1-4 name words: capitalized words, initials between them, lower-case particles before a
# capitalized word ("Ludwig van Beethoven", "Leigha C Mackay").
_CAP_NAME = (
    rf"{_CAP_WORD}(?:[ ](?:{_PARTICLE}[ ])?(?:{_CAP_WORD}|{_INITIAL}(?=[ ]{_CAP_WORD}))){{0,3}}"
)
_LOW_WORD = rf"[{_LOW}]{{2,}}"
_LOW_NAME = rf"{_LOW_WORD}(?:[ ]{_LOW_WORD})?"

# Labels of a field that holds a person's name ("Name: Jan Novák", "User: jan.novak").
_FIELD_LABELS = (
    r"(?:full[ ]|first[ ]|last[ ]|customer[ ]|client[ ]|contact[ ]|account[ ]|user[ ]|"
    r"display[ ]|legal[ ]|sender[ ]|recipient[ ])?name|customer|client|user|username|contact|"
    r"contact[ ]person|agent|rep|representative|employee|patient|account[ ]holder|"
    r"card[ ]?holder|attn|attention|from|to|cc|signed|requested[ ]by|reported[ ]by|"
    r"assigned[ ]to|assignee|owner|author|reviewer|submitted[ ]by|caller|guest|tenant|"
    r"beneficiary|nom|nombre|vorname|nachname|nome"
)
# Cues in running text after which a name follows.
_GREETINGS = (
    r"dear|hi|hello|hey|hiya|good[ ](?:morning|afternoon|evening)|morning|evening|"
    r"thanks|thank[ ]you|thx|cheers|bye|welcome|congrats|congratulations|sorry|ok|okay|"
    r"hola|bonjour|hallo|ciao|ol[áa]|salut|gracias|merci|danke|grazie|obrigad[oa]"
)
_INTRODUCTIONS = (
    r"my[ ]name[ ]is|(?:first|last|maiden|middle|full|family|given|sur)?[ ]?name[ ](?:is|was)|"
    r"name\?|name's|i[ ]am|i'm|this[ ]is|it's|call[ ]me|i[ ]spoke[ ](?:with|to)|"
    r"spoke[ ](?:with|to)|talked[ ]to|talking[ ]to|speak[ ](?:with|to)|ask[ ]for|"
    r"follow[ ]up[ ]with|followed[ ]up[ ]with|forward(?:ed)?[ ](?:this|it)[ ]to|"
    r"cc(?:'d|ed)?|signed[ ]by|on[ ]behalf[ ]of|according[ ]to|assigned[ ]to|"
    r"contact(?:ed)?|escalate[ ]to|transfer(?:red)?[ ]to|reach(?:ed)?[ ]out[ ]to|"
    r"(?:my|our|his|her|their)[ ](?:colleague|manager|boss|partner|husband|wife|son|"
    r"daughter|mother|father|brother|sister|friend|assistant|accountant|lawyer|doctor|"
    r"client|customer|tenant|landlord|neighbour|neighbor|coworker|co-worker|supervisor|"
    r"technician|agent)|mr\.?|mrs\.?|ms\.?|miss|mx\.?|dr\.?|prof\.?|sir|madam|herr|frau|"
    r"mme\.?|mlle\.?|sr\.?|sra\.?|señor|señora|signor|signora|sig\.?|agent|technician"
)
_SIGN_OFFS = (
    r"(?:best|kind|warm|warmest|many|with)?[ ]?regards|best(?:[ ]wishes)?|sincerely|"
    r"yours(?:[ ](?:truly|sincerely|faithfully))?|cheers|thanks(?:[ ]again)?|thank[ ]you|"
    r"many[ ]thanks|all[ ]the[ ]best|take[ ]care|respectfully|cordially|talk[ ]soon|"
    r"saludos|atentamente|cordialement|bien[ ]à[ ]vous|grüße|gruß|mit[ ]freundlichen[ ]grüßen|"
    r"met[ ]vriendelijke[ ]groet|groeten|distinti[ ]saluti|saluti|cumprimentos|"
    r"atenciosamente|pozdrawiam|s[ ]pozdravem|med[ ]vänliga[ ]hälsningar|hilsen|mvh|"
    r"ystävällisin[ ]terveisin|--|—|-"
)
# Words that follow a cue without being a name ("Hi team", "Thanks all", "This is urgent").
_NOT_NAMES = frozenset(
    """
    team all everyone everybody there sir madam customer customers folks guys again support
    admin sales billing the this that these those please thanks thank you your yours our we i
    me my it its is was a an and or but so for to of in on at by with from as not no yes ok
    okay sure just now here still also very really what when where why how who which any
    some again everyone hello hi hey dear good morning afternoon evening night day week
    today tomorrow yesterday mister missus user customer client agent guest anyone someone
    best kind regards sincerely cheers manager colleague friend partner sorry great
    """.split()
)


def _cue_pattern(cues: str, name: str, after: str) -> regex.Pattern[str]:
    return regex.compile(rf"(?i:\b(?:{cues}))(?:{after})(?-i:(?P<name>{name}))", regex.MULTILINE)


# Each entry: (pattern, base score, whether lower-case names are allowed, the cue's kind).
_NAME_PATTERNS: tuple[tuple[regex.Pattern[str], float, str], ...] = (
    (_cue_pattern(_FIELD_LABELS, _CAP_NAME, r"[ \t]*:[ \t]*"), 0.85, "field"),
    (_cue_pattern(_FIELD_LABELS, _LOW_NAME, r"[ \t]*:[ \t]*"), 0.85, "field-lower"),
    (regex.compile(
        rf"(?:^|(?<=[.!?\n]\s*))(?i:{_GREETINGS})[ \t]*,?[ \t]+(?-i:(?P<name>{_CAP_NAME}))",
        regex.MULTILINE), 0.85, "greeting"),
    (regex.compile(
        rf"(?:^|(?<=[.!?\n]\s*))(?i:{_GREETINGS})[ \t]*,?[ \t]+(?P<name>{_LOW_NAME})",
        regex.MULTILINE), 0.85, "greeting-lower"),
    (regex.compile(
        rf"\b(?i:{_INTRODUCTIONS})[ \t]+(?-i:(?P<name>{_CAP_NAME}))"), 0.85, "introduction"),
    (regex.compile(
        rf"\b(?i:my[ ]name[ ]is|i'm|i[ ]am|this[ ]is|call[ ]me)[ \t]+(?P<name>{_LOW_NAME})"),
        0.85, "introduction-lower"),
    (regex.compile(
        rf"(?:^|(?<=[.!?\n]\s*))(?i:{_SIGN_OFFS})[ \t]*[,.!]?[ \t]*\n?[ \t]*"
        rf"(?-i:(?P<name>{_CAP_NAME}))[ \t]*(?=\n|$|\Z|[,(])",
        regex.MULTILINE), 0.85, "sign-off"),
    (regex.compile(
        rf"(?:^|(?<=[.!?\n]\s*))(?i:{_SIGN_OFFS})[ \t]*[,.!]?[ \t]*\n?[ \t]*"
        rf"(?P<name>{_LOW_NAME})[ \t]*(?=\n|$|\Z)",
        regex.MULTILINE), 0.85, "sign-off-lower"),
    # A signature: 2-4 capitalized name words alone on a line after a finished sentence or a
    # blank line, or ending the text.
    (regex.compile(
        rf"(?:(?<=[.!?,:;][ \t]*\n[ \t]*)|(?<=\n[ \t]*\n[ \t]*)|(?<=^[ \t]*))"
        rf"(?P<name>{_CAP_WORD}(?:[ ](?:{_INITIAL}[ ])?{_CAP_WORD}){{1,3}})[ \t]*(?=\n|\Z)",
        regex.MULTILINE), 0.6, "signature"),
)


class NameInContextRecognizer(_Recognizer):
    """Names where support texts and chats put them, which the small NER model misses.

    Field labels ("Name:", "Customer:", "User:"), greetings ("Hi Jan", "thanks maria"),
    introductions ("my name is", "spoke with", "follow up with", "Mr."), sign-offs ("Best
    regards,\\nJan Novák") and signature lines. A capitalized run after a strong cue is taken
    as a name unless it is a role word ("Hi team") or a dictionary word followed by more text
    ("Customer: Please help"); lower-case names (chat) must be in the given-name list.
    """

    ENTITY = "PERSON"

    def analyze(self, text, entities, nlp_artifacts=None):
        out: list[RecognizerResult] = []
        for pattern, score, kind in _NAME_PATTERNS:
            for m in pattern.finditer(text):
                start, end = m.span("name")
                name = self._trim(text, start, end, kind)
                if name is None:
                    continue
                start, end = name
                out.append(self._result(start, end, score, f"name after {kind} cue"))
        return out

    def _trim(self, text: str, start: int, end: int, kind: str) -> tuple[int, int] | None:
        words = text[start:end].split(" ")
        # Cut at the first word that is not a name: role words, or a plain dictionary word
        # that is neither a known given nor family name ("Hi Jan Support" -> "Jan").
        kept: list[str] = []
        for i, w in enumerate(words):
            lw = w.casefold().rstrip(".")
            if lw in _NOT_NAMES:
                break
            if kind.endswith("lower"):
                if lw not in given_names() and not (kept and is_known_name(lw)):
                    break
            elif i > 0 and len(w) > 1 and lw in dictionary_words() and not is_known_name(lw):
                break
            kept.append(w)
        while kept and len(kept[-1].rstrip(".")) <= 1:  # no trailing initial or particle
            kept.pop()
        while kept and kept[-1].casefold() in _PARTICLE_WORDS:
            kept.pop()
        if not kept:
            return None
        first = kept[0].casefold()
        if kind in ("introduction", "field", "greeting", "sign-off", "signature"):
            # One dictionary word after a cue ("This is Urgent", "Customer: Thanks") is not a
            # name unless it is a known one; a capitalized word outside the dictionary is.
            single_word_not_name = (
                len(kept) == 1 and first in dictionary_words() and not is_known_name(first)
            )
            if single_word_not_name:
                return None
            if kind == "signature" and not any(is_known_name(w) for w in kept):
                # a heading or a product line ("Getting Started", "Acme Cloud Storage")
                return None
        # A single capitalized word followed by more words of the sentence is the start of a
        # sentence, not a name ("Customer: Please help me"), unless it is a known name.
        span_end = start + len(" ".join(kept))
        rest = text[span_end : span_end + 3]
        if (
            kind in ("field", "introduction")
            and len(kept) == 1
            and re.match(r" [a-z]", rest)
            and not is_known_name(first)
        ):
            return None
        return start, span_end


_PARTICLE_WORDS = frozenset(_PARTICLE.strip("(?:)").split("|"))

_RUN_WORD = r"(?:Mc|Mac|O'|D')?\p{Lu}[\p{Ll}\p{M}]+(?:[-'’]\p{Lu}?[\p{Ll}\p{M}]+)?"
_NAME_RUN = regex.compile(
    rf"(?<![\p{{L}}\d_.@/#-])(?:{_RUN_WORD})(?:[ ](?:{_PARTICLE}[ ])?(?:{_RUN_WORD}|\p{{Lu}}\.?"
    rf"(?=[ ]\p{{Lu}})))*(?![\p{{L}}\d_@/])"
)
# "Marek: What a wife." - a speaker's name at the start of a line, before a colon.
_SPEAKER = regex.compile(rf"^[ \t]*(?P<name>{_RUN_WORD}(?:[ ]{_RUN_WORD})?)[ \t]*:", regex.M)


def _name_evidence(word: str, run_len: int) -> bool:
    """A capitalized word that is a known given or family name and not an ordinary word."""
    w = word.casefold()
    if not is_known_name(w) or w in common_words() or w in tech_terms():
        return False
    return run_len > 1 or w not in place_names()


class KnownNameRecognizer(_Recognizer):
    """Capitalized words that are known given or family names (the name lists of every Faker
    locale), wherever they stand: the small NER model misses many names outside its training
    distribution ("Sini shouted at Curtis"). Ordinary words that are also names ("Will",
    "Grace", "Rose") count only next to another name word; a lone name that is also a place
    ("Florence") is left to the NER model. The span is the whole run of name words.
    """

    ENTITY = "PERSON"

    def analyze(self, text, entities, nlp_artifacts=None):
        out = []
        for m in _NAME_RUN.finditer(text):
            words = m.group().split(" ")
            flags = [_name_evidence(w, len(words)) for w in words]
            if not any(flags):
                if len(words) >= 2 and all(
                    _unknown_word(w) or is_known_name(w) or len(w.rstrip(".")) == 1
                    for w in words
                ) and sum(_unknown_word(w) for w in words) >= 1 and _unknown_word(words[-1]):
                    # two or more capitalized words in no dictionary, name list or tech list
                    # ("Sherip Arsanukayev", "Czcibor Borkowski"): a foreign name
                    out.append(self._result(m.start(), m.end(), 0.5, "unknown capitalized run"))
                continue
            # trim leading / trailing words that are plain dictionary words ("The", "Cautionary")
            lo, hi = 0, len(words)
            while lo < hi and not flags[lo] and not _weak_name(words[lo]):
                lo += 1
            while hi > lo and not flags[hi - 1] and not _weak_name(words[hi - 1]):
                hi -= 1
            start = m.start() + len(" ".join(words[:lo])) + (1 if lo else 0)
            end = start + len(" ".join(words[lo:hi]))
            out.append(self._result(start, end, 0.6, "known given or family name"))
        for m in _SPEAKER.finditer(text):
            words = m.group("name").split(" ")
            if any(_name_evidence(w, 1) for w in words):
                out.append(self._result(*m.span("name"), 0.6, "speaker name"))
        return out


def _unknown_word(word: str) -> bool:
    w = word.casefold()
    return (
        len(w) > 2
        and w not in dictionary_words()
        and w not in tech_terms()
        and w not in place_names()
        and not any(c.isdigit() for c in w)
    )


def _weak_name(word: str) -> bool:
    """A run word kept inside a name: an initial, a known name, or not a dictionary word."""
    w = word.casefold().rstrip(".")
    if len(w) == 1 or w in _NOT_NAMES:
        return len(w) == 1
    return is_known_name(w) or w not in dictionary_words()


# --------------------------------------------------------------------------------------------
# street addresses
# --------------------------------------------------------------------------------------------

# Street-type words after the name: the USPS suffixes (lexicon.street_suffixes) plus British
# and Commonwealth ones and the usual abbreviations.
_STREET_TYPES_EXTRA = (
    r"st|ave|av|rd|blvd|ln|dr|ct|pl|ter|cres|cl|sq|pkwy|hwy|hts|cir|trl|gdns|rte|close|"
    r"gardens|mews|parade|esplanade|wharf|quay|rise|vale|wynd|row|walk|grove"
)
# Street-type words before the name (French, Italian, Spanish, Portuguese, Catalan, Polish,
# Czech, Romanian, Greek transliterated) and after it as a separate word (German, Hungarian,
# Nordic, Dutch).
_STREET_TYPES_BEFORE = (
    r"rue|r\.|r|avenue|av|boulevard|bd|bvd|chemin|allée|impasse|quai|place|route|cours|"
    r"passage|via|viale|piazza|piazzale|corso|vicolo|largo|strada|stradone|calle|c/|avenida|"
    r"avda|paseo|plaza|camino|carrer|carretera|ronda|rua|rúa|praça|travessa|estrada|alameda|"
    r"ulica|ul\.|aleja|al\.|plac|ulice|náměstí|bulevardul|calea|odos|leoforos"
)
_STREET_TYPES_WORD_AFTER = (
    r"straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|utca|u\.|út|tér|kapu|sor|körút|"
    r"köz|vej|gade|gata|gatan|vägen|veien|katu|tie|laan|straat|steeg|plein|kade"
)
# German/Dutch/Nordic/Central European compounds end in their street word.
_STREET_SUFFIXES = (
    r"straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|steig|chaussee|pfad|"
    r"straat|laan|gracht|plein|kade|singel|dreef|"
    r"vej|gade|gatan|gata|vägen|veien|veg|stræde|torget|stígur|stíg|braut|"
    r"katu|tie|polku|kuja|"
    r"ská|ová|ní|utca|út"
)
_NUM = r"\d{1,5}(?:[ ]?[A-Za-z](?![A-Za-z]))?(?:[-/]\d{1,4}[A-Za-z]?)?"
_W = r"\p{Lu}[\p{Ll}\p{M}'’.-]*"  # a capitalized word in any script (Latin, Greek, Cyrillic)
_SNAME = rf"(?:{_W}|\d+(?:st|nd|rd|th)?)"
_UNIT = (
    r"(?:,?[ \t]*\n?[ \t]*(?:apt\.?|apartment|suite|ste\.?|unit|flat|floor|fl\.?|"
    r"room|rm\.?|bldg\.?|building|#|app\.?|appartement|étage|piso|wohnung|whg\.?)[ \t]*#?"
    r"[A-Za-z]?\d{1,5}[A-Za-z]?)"
)
# Following lines of an address block: a short line of capitalized words, a postcode, a
# country ("Nicosia", "Cyprus 20187", "SW1A 1AA", ", CO").
_BLOCK_LINE = regex.compile(
    r"\n(?:[ \t]*\n)?[ \t]*,?[ \t]*(?:[\p{Lu}\d][\p{L}\p{M}\d .,'’()-]{0,45}|\p{Lu}{2}[ \t]+\d{3,6})[ \t]*(?=\n|$)"
)
_MONTHS_SHORT = (
    r"jan|january|feb|february|mar|march|apr|april|may|jun|june|jul|july|aug|august|sep|sept|"
    r"september|oct|october|nov|november|dec|december"
)
_POSTCODE_LINE = regex.compile(
    r"^[^\n\p{L}\d]*(?P<line>(?:\p{Lu}[\p{L}\p{M} .'-]{1,40}[ \t]+)?(?:[A-Z]{1,2}-)?\d{4,6}"
    r"(?:-\d{3,4})?)[ \t]*(?=\n|$)",
    regex.M,
)
_PARTICLES_ADDR = (
    r"(?:(?i:de|del|della|delle|dei|degli|di|da|do|dos|das|des|du|la|le|les|los|las|el|van|"
    r"von|der|den|l'|d')[ \t']+)"
)


@functools.lru_cache(maxsize=1)
def _address_patterns() -> tuple[tuple[regex.Pattern[str], float, bool], ...]:
    after = "|".join(re.escape(w) for w in street_suffixes()) + "|" + _STREET_TYPES_EXTRA
    direction = r"(?:[ \t]+(?i:north|south|east|west|n|s|e|w|ne|nw|se|sw)\b\.?)?"
    return (
        # "676 Maple Landing Suite 954", "22 Pollen Crescent", "3240 Meadow Drive"
        (regex.compile(
            rf"\b{_NUM},?[ \t]+(?:{_PARTICLES_ADDR}?{_SNAME}[ \t]+){{0,4}}(?i:{after})\b\.?"
            rf"{direction}{_UNIT}?"), 0.7, True),
        # "Via Pasquale Scura 127", "12 rue de la Paix", "Calle Mayor, 5", "R Irene Lisboa 23"
        (regex.compile(
            rf"(?:\b{_NUM},?[ \t]+)?(?<![\p{{L}}])(?i:{_STREET_TYPES_BEFORE})(?:(?<=\.)|\b)[ \t]*"
            rf"{_PARTICLES_ADDR}*{_W}(?:[ \t]+{_PARTICLES_ADDR}*{_W}){{0,3}},?[ \t]+{_NUM}\b"
            rf"{_UNIT}?"), 0.7, True),
        # "Brandenburgische Straße 12", "Tompa u. 2.", "Csabai kapu 38."
        (regex.compile(
            rf"\b{_W}(?:[ \t]+{_W}){{0,2}}[ \t]+(?i:{_STREET_TYPES_WORD_AFTER})(?:(?<=\.)|\b)"
            rf"[ \t]*{_NUM}\b\.?{_UNIT}?"), 0.7, True),
        # "Hauptstraße 5", "Kerkstraat 12a", "Strojírenská 1006", "Brekkustíg 4"
        (regex.compile(rf"\b\p{{Lu}}[\p{{L}}\p{{M}}-]*(?i:{_STREET_SUFFIXES})[ \t]+{_NUM}\b"
                       rf"{_UNIT}?"), 0.7, True),
        # "379 Dalmatinova 108", "33514 Buitenburen 28": number, street name, number (not a
        # date: "3 May 1990")
        (regex.compile(
            rf"\b\d{{1,5}}[ \t]+(?!(?i:{_MONTHS_SHORT})\b){_W}(?:[ \t]+{_PARTICLES_ADDR}?{_W}){{0,3}}[ \t]+\d{{1,4}}"
            rf"[A-Za-z]?\b\.?{_UNIT}?"), 0.6, True),
        # "at the corner of Sidumula 60 and Ootsuki Walks"
        (regex.compile(
            rf"(?i:corner[ \t]+of)[ \t]+(?:{_SNAME}[ \t]+){{0,4}}{_SNAME}[ \t]+(?i:and|&)"
            rf"[ \t]+(?:{_SNAME}[ \t]*){{1,4}}(?:\b(?i:{after})\b\.?)?"), 0.7, False),
        # US military mail: "USNV Eberhardt\nFPO AP 30872", "PSC 1234, Box 5678\nAPO AE 09012"
        (regex.compile(
            r"\b(?:USNS|USNV|USS|USCGC|PSC|CMR|Unit)[ \t]+[\w]+(?:,?[ \t]+Box[ \t]+\d+)?"
            r"[ \t,]*\n?[ \t]*(?:FPO|APO|DPO)[ \t]+A[AEP][ \t]+\d{5}\b"), 0.8, False),
        # Units on their own: "Suite 026", "Apt. 559"
        (regex.compile(
            r"\b(?:Apt\.?|Apartment|Suite|Ste\.|Unit|Flat)[ \t]*#?[A-Za-z]?\d{1,5}[A-Za-z]?\b"),
            0.5, False),
        # PO boxes
        (regex.compile(
            r"(?i)\b(?:p\.?[ \t]?o\.?[ \t]?box|post[ \t]office[ \t]box|postfach|apartado(?:[ \t]"
            r"de[ \t]correos)?|bo[iî]te[ \t]postale|case[ \t]postale|casilla|caixa[ \t]postal|"
            r"postbus)[ \t]*#?[ \t]*\d{1,6}\b"), 0.75, False),
        # A street name and a type word without a number ("Lange Parks St."): weak, redacted
        # next to an address word ("corner of", "lives on", "street").
        (regex.compile(
            rf"\b{_W}(?:[ \t]+{_PARTICLES_ADDR}?{_W}){{0,2}}[ \t]+(?-i:(?:{after.title()}|"
            rf"St|Ave|Rd|Blvd|Ln|Dr)\b\.?)"), 0.25, False),
    )


_TITLES = frozenset("mr mrs ms miss mx dr prof sir madam".split())
_ADDRESS_CONTEXT = re.compile(
    r"(?i)\b(?:address|corner|street|located|lives?|living|moved|move|stop|deliver|ship|"
    r"near|between|intersection|on|at|to|in|refers)\b"
)
# "Address: <anything up to the end of the line, or the next lines of its block>".
_ADDRESS_LABEL = regex.compile(
    r"(?i)\b(?:address|addr|home address|shipping address|billing address|"
    r"mailing address|postal address|ship to|deliver to|adresse|dirección|direccion|"
    r"indirizzo|endereço|anschrift|adres)[ \t]*:[ \t]*\n?[ \t]*"
    r"(?P<addr>[^\n]{4,120}?)[ \t]*(?=\n|$)",
    regex.MULTILINE,
)


class StreetAddressRecognizer(_Recognizer):
    """Street addresses: house number + street name + street-type word (English and the main
    European languages, type word before or after the name, compounds), unit/apartment/suite,
    PO boxes, military mail, street corners, anything after an "Address:" label; then the short
    lines of the same address block (city, region, postcode, country)."""

    ENTITY = "STREET_ADDRESS"

    def analyze(self, text, entities, nlp_artifacts=None):
        out = []
        for pattern, score, blockable in _address_patterns():
            for m in pattern.finditer(text):
                start, end = m.span()
                value = m.group()
                if score < 0.4:
                    first = value.split()[0].casefold().rstrip(".")
                    if (
                        first in _NOT_NAMES
                        or first in _TITLES
                        or first in given_names()  # "Brad Key", "Maria Green": a name
                        or not self._has_context(text, start, _ADDRESS_CONTEXT)
                    ):
                        continue
                    score_ = score + CONTEXT_BOOST
                else:
                    score_ = score
                if blockable and score >= 0.6:
                    end = _block_end(text, end)
                out.append(self._result(start, end, score_, "street address layout"))
        for m in _ADDRESS_LABEL.finditer(text):
            start, end = m.span("addr")
            first_line = m.group("addr")
            if not any(c.isdigit() for c in first_line) and any(
                _name_evidence(w, 2) for w in first_line.split()
            ):
                # "Billing address: Miroslav Schmid\n 1148 Úzká 1762": the addressee's name
                # is a PERSON; the address starts on the next line
                nxt = _BLOCK_LINE.match(text, end)
                if not nxt:
                    continue
                start, end = nxt.start() + len(nxt.group()) - len(nxt.group().lstrip()), nxt.end()
            out.append(self._result(start, _block_end(text, end), 0.8, "address label"))
        if out:
            # a postcode line closing the block ("Cyprus 20187"), within a few lines after
            last = max(r.end for r in out)
            for m in _POSTCODE_LINE.finditer(text, last, min(len(text), last + 250)):
                out.append(self._result(*m.span("line"), 0.6, "postcode line of an address"))
        return out


def _block_end(text: str, end: int) -> int:
    """Extend an address over up to four following short lines of the same block."""
    for _ in range(4):
        m = _BLOCK_LINE.match(text, end)
        if not m or re.search(r"[.!?:]\s*$", m.group()) or _looks_like_sentence(m.group()):
            break
        if sum(c.isdigit() for c in m.group()) >= 7:
            break  # a phone line closes the address block
        end = m.end()
    return end


def _looks_like_sentence(line: str) -> bool:
    words = line.split()
    return len(words) > 5 or sum(w[:1].islower() for w in words) > 1


# City + postcode: "Springfield, IL 62704", "75008 Paris", "1012 AB Amsterdam", "SW1A 1AA".
_POSTCODE_CITY = (
    regex.compile(
        rf"\b[{_UP}][{_LOW}]+(?:[ -][{_UP}][{_LOW}]+){{0,3}},[ \t]*[A-Z]{{2}}[ \t]+"
        r"\d{5}(?:-\d{4})?\b"),
    regex.compile(
        rf"\b(?:[A-Z]{{1,2}}-)?\d{{4,5}}(?:[ \t][A-Z]{{2}})?[ \t]+[{_UP}][{_LOW}]{{2,}}"
        rf"(?:[ -](?:(?:am|an|im|sur|de|del|la|le|en)[ -])?[{_UP}][{_LOW}]+){{0,2}}\b"),
    regex.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?[ \t]\d[A-Z]{2}\b"),  # UK postcode
)


class PostcodeCityRecognizer(_Recognizer):
    """A postcode with its city (US, continental European and UK layouts) as a LOCATION.

    "2024 Release" would fit the European layout: a number-led match is kept only when the
    word is not a dictionary word or when an address-like word is near.
    """

    ENTITY = "LOCATION"

    def analyze(self, text, entities, nlp_artifacts=None):
        out = []
        for i, pattern in enumerate(_POSTCODE_CITY):
            for m in pattern.finditer(text):
                if i == 1:
                    word = re.sub(r"^[A-Z-]*[\d \t]+(?:[A-Z]{2}[ \t]+)?", "", m.group())
                    first = word.split()[0].casefold() if word.split() else ""
                    if first in dictionary_words() and not re.search(
                        r"(?i)address|street|\bst\b|road|avenue|box|suite|apt|ship|city", text
                    ):
                        continue
                out.append(self._result(m.start(), m.end(), 0.6, "postcode and city"))
        return out


# --------------------------------------------------------------------------------------------
# dates of birth
# --------------------------------------------------------------------------------------------

_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_DATE = (
    rf"(?:\d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}|\d{{1,2}}[-/.]\d{{1,2}}[-/.]\d{{2,4}}|"
    rf"\d{{1,2}}(?:st|nd|rd|th)?[ \t]+(?:of[ \t]+)?(?:{_MONTHS})\.?,?[ \t]+\d{{4}}|"
    rf"(?:{_MONTHS})\.?[ \t]+\d{{1,2}}(?:st|nd|rd|th)?,?[ \t]+\d{{4}})"
)
_DOB = regex.compile(
    rf"(?i)\b(?:d\.?o\.?b\.?|date[ \t]of[ \t]birth|birth[ \t]?date|birthday|born(?:[ \t]on)?|"
    rf"geboren(?:[ \t]am)?|geburtsdatum|n[ée]e?[ \t]le|date[ \t]de[ \t]naissance|"
    rf"fecha[ \t]de[ \t]nacimiento|nacid[oa][ \t]el|data[ \t]di[ \t]nascita|nat[oa][ \t]il|"
    rf"data[ \t]de[ \t]nascimento)[ \t]*(?:is|was|:|-)?[ \t]*(?P<date>{_DATE})"
)


class DateOfBirthRecognizer(_Recognizer):
    """A date right after a birth-date label ("DOB: 04/07/1986", "born on 3 May 1990")."""

    ENTITY = "DATE_OF_BIRTH"

    def analyze(self, text, entities, nlp_artifacts=None):
        return [
            self._result(*m.span("date"), 0.9, "labelled date of birth")
            for m in _DOB.finditer(text)
        ]


def project_recognizers(language: str, phone_regions: Iterable[str]) -> list[LocalRecognizer]:
    """Every recognizer of this module, configured for a language and phone regions."""
    return [
        PhoneNumberRecognizer(language, phone_regions),
        PaymentCardRecognizer(language, name="PaymentCardRecognizer"),
        NameInContextRecognizer(language, name="NameInContextRecognizer"),
        KnownNameRecognizer(language, name="KnownNameRecognizer"),
        StreetAddressRecognizer(language, name="StreetAddressRecognizer"),
        PostcodeCityRecognizer(language, name="PostcodeCityRecognizer"),
        DateOfBirthRecognizer(language, name="DateOfBirthRecognizer"),
    ]
