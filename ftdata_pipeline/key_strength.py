"""Strength rule for the secret keys the pipeline reads from the environment.

A keyed HMAC only protects what it hashes if the key cannot be guessed: a pseudonym
``<PERSON_3f9a1c2d>`` or a subject hash made with a short key is reversed by trying keys and
candidate values. Keys must therefore carry at least 256 bits (32 bytes) of entropy, written in
one of these forms (the variable's text is the HMAC key as is; the forms only decide how its
entropy is counted):

- 64 or more hexadecimal digits (``openssl rand -hex 32``): 4 bits per digit;
- base64 / base64url of 32 or more bytes (``openssl rand -base64 32``): 6 bits per character;
- any other text: counted at the bits per character of the character classes it uses
  (lower case, upper case, digits, symbols), and it must reach 256 bits.

Every form also needs at least 16 distinct characters, which refuses repeated patterns
("aaaa...", "0101..."). There is no key-derivation step: a passphrase is not stretched, so it
must itself be long and random.
"""

from __future__ import annotations

import base64
import binascii
import math
import re

MIN_BITS = 256
MIN_DISTINCT = 16


class WeakKeyError(ValueError):
    """A key variable is set but too weak; the message names the variable, never the value."""


def _decoded_len(value: str) -> int:
    try:
        padded = value + "=" * (-len(value) % 4)
        return len(base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True))
    except (binascii.Error, ValueError):
        return 0


def key_bits(value: str) -> float:
    """Estimated entropy of a key written in one of the documented forms."""
    if len(set(value)) < MIN_DISTINCT:
        return 0.0
    if re.fullmatch(r"[0-9a-fA-F]+", value):
        return 4.0 * len(value)
    if re.fullmatch(r"[A-Za-z0-9+/_-]+=*", value) and _decoded_len(value) * 8 >= MIN_BITS:
        return 8.0 * _decoded_len(value)
    classes = [
        (r"[a-z]", 26), (r"[A-Z]", 26), (r"[0-9]", 10), (r"[^a-zA-Z0-9]", 33),
    ]
    alphabet = sum(size for pattern, size in classes if re.search(pattern, value))
    return len(value) * math.log2(alphabet) if alphabet else 0.0


def require_strong_key(variable: str, value: str) -> bytes:
    """The key's bytes, or ``WeakKeyError`` naming ``variable`` and how to make a good key."""
    bits = key_bits(value)
    if bits < MIN_BITS:
        raise WeakKeyError(
            f"environment variable {variable} holds a key of about {int(bits)} bits of "
            f"entropy; at least {MIN_BITS} are required (32 random bytes, for example the "
            f"output of `openssl rand -hex 32`)"
        )
    return value.encode("utf-8")
