"""The webhook's delivery follows the project's one retry policy (retry.decide)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from dialsync.alerts.state import Owed
from dialsync.alerts.webhook import Webhook

ITEM = Owed(
    key="runs_failing",
    alert="runs_failing",
    status="firing",
    destination=None,
    since=datetime(2026, 12, 5, tzinfo=UTC),
    detail={"text": "3 runs failed"},
)


def deliver(*answers: httpx.Response | Exception) -> tuple[bool, int, list[float]]:
    """Send ITEM to a receiver answering ``answers`` in turn: (sent, requests, sleeps)."""
    queue = list(answers)
    calls: list[httpx.Request] = []
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    hook = Webhook(
        "https://hooks.example.test/x",
        timeout=1,
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
    )
    try:
        return hook.send(ITEM), len(calls), sleeps
    finally:
        hook.close()


def test_a_rate_limited_post_waits_as_asked_then_succeeds() -> None:
    sent, calls, sleeps = deliver(
        httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200)
    )
    assert (sent, calls, sleeps) == (True, 2, [2.0])


def test_a_refusal_that_will_not_change_is_not_repeated_in_line() -> None:
    sent, calls, sleeps = deliver(httpx.Response(404), httpx.Response(200))
    assert (sent, calls, sleeps) == (False, 1, [])


def test_a_lost_connection_is_tried_twice_then_left_to_the_next_evaluation() -> None:
    lost = httpx.ConnectError("refused")
    sent, calls, sleeps = deliver(lost, lost, httpx.Response(200))
    assert (sent, calls, len(sleeps)) == (False, 2, 1)


def test_a_pause_longer_than_an_alert_may_hold_the_sync_is_not_waited() -> None:
    sent, calls, sleeps = deliver(
        httpx.Response(429, headers={"Retry-After": "60"}), httpx.Response(200)
    )
    assert (sent, calls, sleeps) == (False, 1, [])
