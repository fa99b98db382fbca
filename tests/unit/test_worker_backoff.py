"""The pause after credential refusals, shared by the pull task and `dialsync run`."""

from __future__ import annotations

import logging

import pytest

from dialsync.errors import AuthError
from dialsync.worker.backoff import log_refusal, refusal_backoff


def test_the_pause_doubles_per_refusal_up_to_the_cap() -> None:
    assert [refusal_backoff(n, 60, 3600) for n in (1, 2, 3, 5, 6, 9)] == [
        120.0,
        240.0,
        480.0,
        1920.0,
        3600.0,
        3600.0,
    ]


def test_a_cap_below_the_interval_never_pauses_less_than_one_interval() -> None:
    assert refusal_backoff(4, 60, 30) == 60.0


def test_the_refusal_line_names_the_setting_and_the_next_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exc = AuthError("credentials refused", system="talkdesk", status=401)
    with caplog.at_level(logging.ERROR):
        log_refusal(logging.getLogger("t"), "pull", exc, 3, 480.0)
    line = caplog.records[0].getMessage()
    assert line.startswith("pull refused (talkdesk: credentials refused (HTTP 401); check ")
    assert "DIALSYNC_TALKDESK__CLIENT_ID" in line
    assert "refusal 3 in a row, backing off: next attempt in 480 s" in line
