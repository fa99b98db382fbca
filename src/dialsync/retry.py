"""The one HTTP retry policy: what to do after one attempt, as a pure function.

Both HTTP edges use it: the dialer client (``destinations/http.py``, httpx) and the Salesforce
source (``sources/salesforce.py``, requests under simple-salesforce). Each edge still sends the
requests, sleeps, renews tokens and raises its own errors; what is decided here is only whether
an answer (or a failure to get one) is worth another attempt, and after how long:

* ``RETRY`` after ``wait`` seconds: a 429, a 5xx of an idempotent request, a connection that
  never reached the server, a dropped answer of an idempotent request;
* ``TRANSIENT``: give up for now, a later run may succeed (attempts spent, or the server asked
  for a longer pause than we wait in-line); after a 429 or 5xx, ``wait`` is how long the
  server asked for (Retry-After), or our next backoff step when it did not say;
* ``AMBIGUOUS``: give up; a write failed after it was sent, so it may have been applied;
* ``TERMINAL``: the answer will not change by asking again (any other 4xx).

A ``Retry-After`` header is honoured in both of its forms (RFC 9110 10.2.3): delay-seconds and an
HTTP-date. Our own backoff is exponential with jitter, so that clients which failed together do
not come back together.
"""

from __future__ import annotations

import email.utils
import enum
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import httpx
import requests


class Verdict(enum.Enum):
    RETRY = "retry"
    TRANSIENT = "transient"
    AMBIGUOUS = "ambiguous"
    TERMINAL = "terminal"


@dataclass(frozen=True)
class Action:
    verdict: Verdict
    # RETRY: seconds to wait before the next attempt. TRANSIENT after an answer: a hint for
    # whoever schedules the next try (Retry-After, else our backoff); after no answer: None.
    wait: float | None = None

    @property
    def retry(self) -> bool:
        return self.verdict is Verdict.RETRY


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_seconds: float = 0.5
    max_backoff_seconds: float = 30.0

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        """Exponential, with jitter between half and all of the step."""
        step = min(self.max_backoff_seconds, self.base_seconds * 2.0 ** (attempt - 1))
        return float(step * (0.5 + rng() / 2))


class Answer(Protocol):
    """What both httpx and requests responses offer."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


# Failures that happened before a byte of the request reached the server: always safe to repeat.
NOT_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    requests.ConnectTimeout,
)
# Failures to get an answer, the request possibly sent (timeouts, dropped connections).
NO_ANSWER: tuple[type[Exception], ...] = (httpx.TransportError, requests.RequestException)


def decide(
    outcome: Answer | Exception,
    attempt: int,
    *,
    policy: RetryPolicy,
    idempotent: bool = True,
    rng: Callable[[], float] = random.random,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Action:
    """What to do after attempt number ``attempt`` (1-based) ended in ``outcome``.

    ``outcome`` is a response that was not a success, or the transport exception raised instead
    of one. A 401 is TERMINAL here: renewing a token is the caller's business, before it asks.
    """
    more = attempt < policy.max_attempts
    if isinstance(outcome, Exception):
        if isinstance(outcome, NOT_SENT):
            sent = False
        elif isinstance(outcome, NO_ANSWER):
            sent = True
        else:
            raise TypeError(f"not a transport failure: {outcome!r}")
        if sent and not idempotent:
            return Action(Verdict.AMBIGUOUS)
        if more:
            return Action(Verdict.RETRY, policy.backoff(attempt, rng))
        return Action(Verdict.TRANSIENT)
    status = outcome.status_code
    if status == 429 or status >= 500:
        if status >= 500 and not idempotent:
            return Action(Verdict.AMBIGUOUS)  # a 5xx write may have been applied
        asked = retry_after(outcome.headers, now())
        if asked is not None and asked > policy.max_backoff_seconds:
            return Action(Verdict.TRANSIENT, asked)  # longer than we hold a worker for
        wait = asked if asked is not None else policy.backoff(attempt, rng)
        return Action(Verdict.RETRY if more else Verdict.TRANSIENT, wait)
    return Action(Verdict.TERMINAL)


def retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds the server asked us to wait, from ``Retry-After``; None when absent or unreadable.

    A date in the past means "now" (0 s); so does a negative number.
    """
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, float(value))  # not RFC-conforming, but servers send "1.5"
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" in the obsolete forms: HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
