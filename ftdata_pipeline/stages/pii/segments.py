"""What the analyzer reads of a text: JSON values one by one, long texts in pieces.

- **Nested values.** A text field may hold a JSON object or list (a source column of objects,
  serialized when the record was built). The NER model reads ``{"name": "Jan Novák"}`` as
  punctuation soup and misses the name, so each string literal of valid JSON is analyzed as a
  text of its own, at its own offsets in the field. A value under a key that names a person
  (``name``, ``customer``, ``first_name`` ...) or an address is that entity as a whole.
- **Long texts.** spaCy refuses texts over ``nlp.max_length`` (1,000,000 characters) and its
  memory grows with text length; texts longer than ``MAX_PIECE_CHARS`` are analyzed in pieces
  cut at line breaks (else at spaces), so one 10 MB record cannot fail the stage.

Offsets of every piece are kept, so detections map back onto the original text exactly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_PIECE_CHARS = 100_000

_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:)?', re.S)
_PERSON_KEY = re.compile(
    r"(?i)^(?:(?:full|first|last|given|family|middle|customer|client|contact|user|account|"
    r"display|legal|sender|recipient|holder|owner|author|agent|patient)[ _-]?)?name$|"
    r"^(?i:customer|client|contact|contact[ _-]?person|author|owner|assignee|reporter|"
    r"agent|patient|cardholder|card[ _-]?holder|account[ _-]?holder|recipient|sender|"
    r"firstname|lastname|surname|forename|given[ _-]?name|family[ _-]?name)$"
)
_ADDRESS_KEY = re.compile(
    r"(?i)^(?:(?:home|street|billing|shipping|mailing|postal|delivery)[ _-]?)?address"
    r"(?:[ _-]?line[ _-]?\d)?$|^(?i:street|street[ _-]?address|addr|address1|address2)$"
)


@dataclass(frozen=True)
class Piece:
    owner: int  # index of the text this piece belongs to
    offset: int  # where the piece starts in that text
    text: str
    entity: str | None = None  # the whole piece is this entity (a JSON value under its key)


def _json_pieces(owner: int, text: str) -> list[Piece] | None:
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")) or len(text) > MAX_PIECE_CHARS:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, (dict, list)):
        return None
    pieces: list[Piece] = []
    key: str | None = None
    for m in _STRING.finditer(text):
        inner = m.group(1)
        if m.group(2):  # a key: remember it for the value that follows
            key = inner
            continue
        entity = None
        if key is not None and inner.strip():
            if _PERSON_KEY.match(key):
                entity = "PERSON"
            elif _ADDRESS_KEY.match(key):
                entity = "STREET_ADDRESS"
        if inner.strip():
            pieces.append(Piece(owner, m.start(1), inner, entity))
        key = None
    return pieces


def _long_pieces(owner: int, text: str, limit: int) -> list[Piece]:
    pieces = []
    pos = 0
    while pos < len(text):
        end = min(len(text), pos + limit)
        if end < len(text):
            cut = text.rfind("\n", pos + limit // 2, end)
            if cut < 0:
                cut = text.rfind(" ", pos + limit // 2, end)
            end = cut + 1 if cut >= 0 else end
        pieces.append(Piece(owner, pos, text[pos:end]))
        pos = end
    return pieces


def split_texts(texts: list[str], limit: int = MAX_PIECE_CHARS) -> list[Piece]:
    """The pieces the analyzer reads, in text order."""
    out: list[Piece] = []
    for i, text in enumerate(texts):
        nested = _json_pieces(i, text) if "{" in text[:1] or "[" in text[:1] or (
            text[:1].isspace()) else None
        if nested is not None:
            out.extend(nested)
        elif len(text) > limit:
            out.extend(_long_pieces(i, text, limit))
        else:
            out.append(Piece(i, 0, text))
    return out
