"""Salesforce record Ids: the 15-character case-sensitive form and the 18-character case-safe form.

An 18-character Id is the 15-character body plus a 3-character suffix that encodes which body
characters are upper case, so that tools that ignore case (spreadsheets, some databases) can still
tell Ids apart. Every Id that reaches a SOQL string or a URL goes through :func:`normalize_id`
first: it only ever returns 18 ASCII letters and digits, so a quote can never get through.
"""

from __future__ import annotations

import re

# Each suffix character encodes 5 bits (one per body character of its chunk): 0..31 -> A..Z0..5.
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# Explicit ASCII classes: str.isalnum() would also accept non-ASCII letters and digits.
_ALNUM = re.compile(r"[A-Za-z0-9]+")


def _suffix(body: str) -> str:
    """The case-safe suffix of a 15-character body."""
    chars: list[str] = []
    for start in range(0, 15, 5):
        bits = 0
        for offset, char in enumerate(body[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << offset
        chars.append(_SUFFIX_ALPHABET[bits])
    return "".join(chars)


def normalize_id(value: str) -> str:
    """The 18-character form of a 15- or 18-character Salesforce Id.

    Raises ``ValueError`` for anything else: another length, a character other than an ASCII
    letter or digit, or an 18-character Id whose suffix does not match its body. The suffix is
    compared case-insensitively (its alphabet has one case only) and returned in upper case; the
    body is kept as given, since its case is what identifies the record.
    """
    if not isinstance(value, str):
        raise ValueError(f"a Salesforce Id must be a string, not {type(value).__name__}")
    if len(value) not in (15, 18):
        raise ValueError(f"a Salesforce Id has 15 or 18 characters, this one has {len(value)}")
    if _ALNUM.fullmatch(value) is None:
        # The value is not echoed: it may be an injection attempt or arbitrary binary junk.
        raise ValueError("a Salesforce Id contains only ASCII letters and digits")
    body = value[:15]
    suffix = _suffix(body)
    if len(value) == 18 and value[15:].upper() != suffix:
        raise ValueError(
            f"Salesforce Id {value!r} does not match its check suffix "
            f"(expected {body}{suffix}); a character's case was probably changed"
        )
    return body + suffix


def is_valid_id(value: object) -> bool:
    """Whether ``value`` is a Salesforce Id that :func:`normalize_id` accepts."""
    if not isinstance(value, str):
        return False
    try:
        normalize_id(value)
    except ValueError:
        return False
    return True
