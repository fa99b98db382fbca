"""Cleaning of free text read from Salesforce before it is shown to an agent or sent to a dialer.

Salesforce stores whatever users paste: tabs and newlines from spreadsheets, zero-width and
bidi characters from web pages, decomposed accents from macOS. Dialer APIs reject or garble some
of these, and two spellings of the same name must compare equal, so every value is cleaned the
same way here.
"""

from __future__ import annotations

import math
import unicodedata
from decimal import Decimal

# Control, format (zero-width, bidi, BOM, soft hyphen) and lone surrogate code points.
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def _as_text(value: object) -> str | None:
    """The raw text of a field value, or None when the value is not text-like."""
    # bool is an int subclass: a stray True must not become the text "True".
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    # NaN and infinities are no value anyone typed.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal) and not value.is_finite():
        return None
    if isinstance(value, int | float | Decimal):
        try:
            return str(value)
        except ValueError:  # ints beyond Python's int-to-str digit limit
            return None
    # dict, list and anything else exotic: not a value a person typed.
    return None


def _strip_controls(text: str) -> str:
    """Whitespace of any kind becomes a space; control and format characters go."""
    kept: list[str] = []
    for char in text:
        # Checked before the category: tab, newline and friends are Cc but separate words.
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) not in _REMOVED_CATEGORIES:
            kept.append(char)
    return "".join(kept)


def clean_text(value: object) -> str | None:
    """The cleaned text of a field value, or None when nothing is left.

    Strings are cleaned: control and format characters and unpaired surrogates are removed (the
    whitespace among them counts as a space), the result is NFC-normalized, whitespace runs become
    one space and the ends are stripped. Finite ints, floats and Decimals become their ``str``.
    None, bools, NaN/infinity, dicts, lists and other objects count as absent.
    """
    text = _as_text(value)
    if text is None:
        return None
    # isprintable() is False for every character _strip_controls would change (and for some it
    # keeps), so printable text, by far the most common, skips the per-character loop.
    if not text.isprintable():
        text = _strip_controls(text)
    # After the removal: a zero-width character between a letter and its accent blocks composition.
    text = unicodedata.normalize("NFC", text)
    return " ".join(text.split()) or None


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-16 code units, without a trailing space.

    Units, not code points: dialer validators are typically Java or JavaScript, whose string
    length counts a character outside the BMP (an emoji, a rare CJK ideograph) twice. The result
    is therefore never longer than ``limit`` by either measure.
    """
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return text[:index].rstrip()
    return text


def clean_and_truncate(value: object, limit: int) -> str | None:
    """:func:`clean_text` then :func:`truncate`; None when nothing is left."""
    text = clean_text(value)
    if text is None:
        return None
    return truncate(text, limit) or None
