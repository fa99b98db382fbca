"""Logging to stderr, text or JSON, with secrets and personal data kept out.

Secrets are redacted by value (every secret setting is registered at start); phone numbers are
masked by shape. dialsync's own code never logs names, but a remote's error message may quote
a record ("first_name": "Ada", LastName = 'Smith' in a SOQL error): values of name keys are
masked by shape too.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_PHONE = re.compile(r"(?<![\w./:-])\+?\(?\d[\d ()./-]{6,}\d(?![\w:-])")
_NOT_PHONE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,3}(\.\d{1,3}){3}|^\d+\.\d+$")
_secrets: set[str] = set()
# A name key (first_name, LastName, "Name", full_name ...), then = or :, then a quoted value or
# one bare word. Over-masking a list's name is harmless; a person's name in a log is not.
_NAME = re.compile(
    r"""(?ix)
    (?P<key>["']?\b(?:first_?name|last_?name|full_?name|name)\b["']?\s*[:=]\s*)
    (?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.|'')*'|[^\s,;)}\]]+)
    """
)


def register_secret(value: str | None) -> None:
    if value and len(value) >= 4:
        _secrets.add(value)


def _mask(match: re.Match[str]) -> str:
    found = match.group()
    digits = re.sub(r"\D", "", found)
    # Dates, IP addresses and decimals look like phones to a regex; phones carry 9-15 digits.
    if not 9 <= len(digits) <= 15 or _NOT_PHONE.search(found):
        return found
    return "***" + digits[-2:]


def mask_phone(text: str) -> str:
    return _PHONE.sub(_mask, text)


def mask_names(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        value = match.group("value")
        quote = value[0] if value[0] in "\"'" else ""
        return f"{match.group('key')}{quote}***{quote}"

    return _NAME.sub(mask, text)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return mask_names(mask_phone(text))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        record.msg, record.args = clean, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request line at INFO; keep it for --debug only.
    for noisy in ("httpx", "httpcore", "urllib3", "simple_salesforce", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
