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
from typing import Any

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
        for name in extra_fields(record):
            value = record.__dict__[name]
            if isinstance(value, str):
                record.__dict__[name] = redact(value)
        return True


class ExpectedTaskFailureFilter(logging.Filter):
    """Drops Celery's "Task x raised expected: Error(...)" line: an expected failure (a
    DialsyncError, declared in the tasks' ``throws``) is logged once, as one line with its
    reason, by the worker's task_failure handler. Unexpected ones (bugs) keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = record.__dict__.get("data")
        return not (isinstance(data, dict) and data.get("description") == "raised expected")


# Attributes every LogRecord has; anything else on a record came in through ``extra=``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def extra_fields(record: logging.LogRecord) -> list[str]:
    return [name for name in record.__dict__ if name not in _STANDARD]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the fields a line was given with
    ``extra=`` (run_id, kind, counts, destination, seconds ...), and exc for a bug's traceback.
    Celery's task lines carry the task's name, id and runtime."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in extra_fields(record):
            value = record.__dict__[name]
            if name == "data" and isinstance(value, dict):  # Celery's task context
                entry.update(
                    {
                        f"task_{k}": value[k]
                        for k in ("name", "id", "runtime")
                        if value.get(k) is not None
                    }
                )
            elif not name.startswith("_"):
                entry[name] = value
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setLevel(level.upper())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.set_name(HANDLER)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request line at INFO; keep it for --debug only (dialsync.http logs each
    # call at DEBUG, with the SOQL, duration and record count).
    for noisy in ("httpx", "httpcore", "urllib3", "simple_salesforce", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)  # warnings (Celery's SecurityWarning ...) as log lines too
    trace = logging.getLogger("celery.app.trace")
    if not any(isinstance(f, ExpectedTaskFailureFilter) for f in trace.filters):
        trace.addFilter(ExpectedTaskFailureFilter())


HANDLER = "dialsync"


def configured() -> bool:
    """Whether setup_logging ran in this process (Celery must then leave logging alone)."""
    return any(h.get_name() == HANDLER for h in logging.getLogger().handlers)
