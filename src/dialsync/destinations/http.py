"""The one HTTP seam for destination APIs: tokens, bounded retries, rate limit, error mapping.

Whether and when to try again is ``dialsync.retry.decide``, the policy the Salesforce source
follows too. httpx exceptions and statuses are translated here into ``dialsync.errors``; nothing
above sees httpx. Whether a failed write may have been applied decides between retrying and raising
AmbiguousWriteError, so that a create is never blindly repeated.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from dialsync.errors import (
    AmbiguousWriteError,
    AuthError,
    RateLimited,
    RecordRejected,
    TerminalError,
    TransientError,
)
from dialsync.retry import NOT_SENT, Action, RetryPolicy, Verdict, decide
from dialsync.tls_errors import tls_failure

log = logging.getLogger(__name__)


def http_client(
    timeout_seconds: float,
    *,
    verify: ssl.SSLContext | bool = True,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """The client every destination uses: its timeout, connects capped at 10 s, JSON asked."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
        verify=verify,
        transport=transport,
        headers={"Accept": "application/json", "User-Agent": "dialsync"},
    )


class RequestRefused(RecordRejected, TerminalError):
    """A 4xx other than 401/403/404/429: the request itself is wrong (a bad record, a bad field).

    The engine sees it as what it is to a batch of records (``errors.RecordRejected``); to
    anything else (an open, a listing) it stays terminal.
    """

    def __init__(
        self,
        message: str,
        *,
        system: str,
        status: int,
        code: str | None,
        fields: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, system=system, status=status, code=code)
        self.fields = fields or []


class NotFound(TerminalError):
    """404: the list, the organization or the record does not exist."""


class RateLimiter(Protocol):
    def acquire(self) -> None:
        """Block until one request may be sent."""

    def pause(self, seconds: float) -> None:
        """Nobody sends for ``seconds`` (a 429's Retry-After)."""


class LocalRateLimiter:
    """Requests per second for this process; pauses apply to every thread of it."""

    def __init__(
        self,
        per_second: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self.clock()
            at = max(now, self._next, self._paused_until)
            self._next = at + self.interval
        if at > now:
            self.sleep(at - now)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock() + seconds)


class OAuthToken:
    """A cached bearer token, renewed shortly before it expires and on demand after a 401."""

    def __init__(
        self, fetch: Callable[[], tuple[str, float]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def get(self, *, renew: bool = False) -> str:
        with self._lock:
            if renew or self._token is None or self._clock() >= self._expires_at:
                token, expires_in = self._fetch()
                # Renew at 90% of the lifetime, and at least 30 s early when it allows.
                margin = min(max(expires_in * 0.1, 30.0), expires_in * 0.5)
                self._token, self._expires_at = token, self._clock() + expires_in - margin
            return self._token


ErrorFields = tuple[str | None, str, list[dict[str, Any]]]


def error_fields(response: httpx.Response) -> ErrorFields:
    """(code, message, fields) from a JSON error body ``{code|error|errorCode, message|
    error_description, fields}`` (or a list of them); a vendor with its own envelope passes its
    own reader to ApiClient (Conga)."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:200], []
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if not isinstance(body, dict):
        return None, str(body)[:200], []
    code = body.get("code") or body.get("error") or body.get("errorCode")
    message = body.get("message") or body.get("error_description") or ""
    raw = body.get("fields")
    fields = [f for f in raw if isinstance(f, dict)] if isinstance(raw, list) else []
    return (str(code) if code is not None else None), str(message)[:500], fields


class ApiClient:
    """Sends one request with the policy above; returns the 2xx response or raises."""

    def __init__(
        self,
        *,
        system: str,
        base_url: str,
        client: httpx.Client,
        token: OAuthToken,
        policy: RetryPolicy,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        extra_headers: dict[str, str] | None = None,
        request_401: Callable[[str], bool] | None = None,
        read_error: Callable[[httpx.Response], ErrorFields] = error_fields,
    ) -> None:
        self.system = system
        # A vendor that answers some refusals of the request itself with 401 (Everbridge: an
        # organization that is not ours, contacts not in it) says which by its message; those
        # are raised as RequestRefused at once: a new token would not change them.
        self.request_401 = request_401
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.token = token
        self.policy = policy
        self.limiter = limiter or LocalRateLimiter(None)
        self.sleep = sleep
        self.rng = rng
        self.now = now
        self.extra_headers = extra_headers or {}
        self.read_error = read_error

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool,
        ok: Iterable[int] = (200, 201, 204),
    ) -> httpx.Response:
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        renewed = False
        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire()
            headers = {"Authorization": f"Bearer {self.token.get()}", **self.extra_headers}
            try:
                response = self.client.request(
                    method, url, json=json, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                if (
                    isinstance(exc, NOT_SENT)
                    and (tls := tls_failure(exc, url, system=self.system)) is not None
                ):
                    raise tls from None  # a certificate problem: retrying cannot help
                action = self._decide(exc, attempt, idempotent)
                if action.retry:
                    self.sleep(action.wait or 0.0)
                    continue
                name = exc.__class__.__name__
                reason = (
                    f"cannot connect: {name}"
                    if isinstance(exc, NOT_SENT)
                    else f"{name} after the request was sent"
                )
                cls = AmbiguousWriteError if action.verdict is Verdict.AMBIGUOUS else TransientError
                raise cls(f"{method} {path}: {reason}", system=self.system) from None
            status = response.status_code
            if status in ok:
                return response
            code, message, fields = self.read_error(response)
            if status == 401 and self.request_401 is not None and self.request_401(message):
                raise RequestRefused(
                    f"{method} {path} refused: {message}",
                    system=self.system,
                    status=401,
                    code=code,
                )
            if status == 401 and not renewed:
                renewed = True
                attempt -= 1  # a renewal is not a failed attempt
                self.token.get(renew=True)
                continue
            if status in (401, 403):
                raise AuthError(
                    f"{method} {path} refused: {message or code}",
                    system=self.system,
                    status=status,
                    code=code,
                )
            if status == 404:
                raise NotFound(message or "not found", system=self.system, status=404, code=code)
            action = self._decide(response, attempt, idempotent)
            if status == 429:
                wait = action.wait or 0.0
                self.limiter.pause(wait)  # every thread of this process holds off, not just us
                if action.retry:
                    log.info("%s: 429, waiting %.1fs", self.system, wait)
                    self.sleep(wait)
                    continue
                raise RateLimited(
                    f"{method} {path}: rate limited",
                    system=self.system,
                    status=429,
                    code=code,
                    retry_after=wait,
                )
            if action.retry:
                self.sleep(action.wait or 0.0)
                continue
            if action.verdict is Verdict.TERMINAL:
                raise RequestRefused(
                    f"{method} {path} refused: {message or code}",
                    system=self.system,
                    status=status,
                    code=code,
                    fields=fields,
                )
            cls = AmbiguousWriteError if action.verdict is Verdict.AMBIGUOUS else TransientError
            raise cls(
                f"{method} {path}: server error", system=self.system, status=status, code=code
            )

    def _decide(
        self, outcome: httpx.Response | httpx.TransportError, attempt: int, idempotent: bool
    ) -> Action:
        return decide(
            outcome,
            attempt,
            policy=self.policy,
            idempotent=idempotent,
            rng=self.rng,
            now=self.now,
        )
