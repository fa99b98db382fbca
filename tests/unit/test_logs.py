"""Logs keep personal data out: phone numbers and names are masked, in text and in JSON."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from dialsync.logs import mask_names, redact, setup_logging


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def _log_to(stream: io.StringIO, fmt: str, message: str, *args: object) -> str:
    setup_logging("INFO", fmt)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logging.getLogger("dialsync.test").warning(message, *args)
    return stream.getvalue()


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ('{"first_name": "Ada", "last_name": "King"}', ["Ada", "King"], ['"first_name": "***"']),
        ("WHERE LastName = 'O''Brien' AND FirstName='Zoë'", ["Brien", "Zoë"], ["LastName = '***'"]),
        ("record first_name=José last_name=García refused", ["José", "García"], ["refused"]),
        ("Name: Augusta, Title: CEO", ["Augusta"], ["Title: CEO"]),
        ("full_name='Ada Lovelace'", ["Ada", "Lovelace"], ["full_name='***'"]),
    ],
)
def test_names_are_masked(text: str, hidden: list[str], kept: list[str]) -> None:
    masked = mask_names(text)
    for word in hidden:
        assert word not in masked
    for part in kept:
        assert part in masked


@pytest.mark.parametrize(
    "text",
    [
        "run 12 (sync) finished: {'queried': 5, 'created': 5}",
        "talkdesk: list scanned: 0 adopted, 0 duplicates",
        "renamed the file",
        "version 62.0 on 2026-01-02",
    ],
)
def test_ordinary_lines_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_json_logs_mask_names_and_phones(captured: io.StringIO) -> None:
    body = {"first_name": "Ada", "phone_numbers": [{"phone_number": "+14155551212"}]}
    out = _log_to(captured, "json", "refused: %s", json.dumps(body))
    entry = json.loads(out.strip().splitlines()[-1])
    assert entry["level"] == "warning" and entry["logger"] == "dialsync.test"
    assert "Ada" not in entry["message"] and "4155551212" not in entry["message"]
    assert '"first_name": "***"' in entry["message"]


def test_text_logs_mask_names_and_phones(captured: io.StringIO) -> None:
    out = _log_to(captured, "text", "contact LastName='Smith' phone +44 20 7946 0958 refused")
    assert "Smith" not in out and "7946" not in out
    assert "WARNING dialsync.test: contact LastName='***' phone ***58 refused" in out
