"""What the Everbridge and Conga sandboxes share: bearer tokens that expire, injected faults, a
writes-per-minute limit answered with 429 and Retry-After, and counters.

Each subclass adds its routes, its state and the shape of its error bodies (``error``). All
state sits behind the server's one lock. The clock is a parameter so a test can let a minute
pass (the rate window, token expiry) without waiting for it.
"""

from __future__ import annotations

import math
import random
import secrets
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dialsync.sandbox.faults import fault_response, pick, set_fields
from dialsync.sandbox.server import Handler, Request, Response, SandboxServer

WINDOW_SECONDS = 60.0  # both vendors state their limits per minute


@dataclass
class DialerFaults:
    """Injected failures of write calls; one seeded draw per call picks at most one."""

    error_500_rate: float = 0.0  # answer 500, nothing applied
    error_429_rate: float = 0.0  # answer 429 with Retry-After, nothing applied
    retry_after: float = 1.0
    drop_after_apply_rate: float = 0.0  # apply, then close the connection without answering


class DialerSandbox:
    """A loopback fake of one dialer API; subclasses route requests through ``api``."""

    # Methods the writes-per-minute limit counts (Everbridge: "POST/PUT/PATCH 300 per minute").
    limited_methods = frozenset({"POST", "PUT", "PATCH"})
    write_methods = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(
        self,
        *,
        token_ttl: float,
        writes_per_minute: int | None,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        tls: ssl.SSLContext | None = None,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token_ttl = token_ttl
        self.writes_per_minute = writes_per_minute
        self.clock = clock
        self.faults = DialerFaults()
        self.server = SandboxServer(host=host, port=port, tls=tls, latency=latency)
        self._lock = self.server.lock
        self._rng = random.Random(seed)
        self._tokens: dict[str, float] = {}  # bearer -> expires at (clock)
        self._fail_next: deque[tuple[int, float | None]] = deque()
        self._writes: deque[float] = deque()  # admitted limited writes in the window
        self._counts: Counter[str] = Counter()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> DialerSandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    # -- what subclasses provide -----------------------------------------------------------
    def error(self, status: int, code: str, message: str) -> Response:
        raise NotImplementedError

    def check_caller(self, request: Request) -> Response | None:
        """A further check of an authenticated call (Conga's user-id header)."""
        return None

    # -- Python helpers for tests ------------------------------------------------------------
    def issue_token(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = self.clock() + self.token_ttl
        return token

    def expire_tokens(self) -> None:
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = -math.inf

    def fail_next(self, n: int, status: int, retry_after: float | None = None) -> None:
        """The next ``n`` write calls answer ``status`` without being applied."""
        with self._lock:
            self._fail_next.extend([(status, retry_after)] * n)

    def set_faults(self, **values: Any) -> None:
        with self._lock:
            set_fields(self.faults, values)

    def count(self, *names: str, n: int = 1) -> None:
        """Add to counters (called by handlers, with the lock held)."""
        for name in names:
            self._counts[name] += n

    def stats(self) -> dict[str, Any]:
        with self._lock:
            answered = [r for r in self.server.log if not r.path.startswith("/_sandbox")]
            out: dict[str, Any] = dict(self._counts)
            for name in ("token_requests", "writes", "reads", "records_upserted"):
                out.setdefault(name, 0)
            out.setdefault("records_deleted", 0)
            out["status_counts"] = dict(
                sorted(Counter(r.status for r in answered if r.status).items())
            )
            out["dropped"] = sum(1 for r in answered if r.status == 0)
            return out

    # -- the request pipeline ----------------------------------------------------------------
    def api(self, handler: Handler, *counters: str, read: bool = False) -> Handler:
        """Wrap a handler with faults, auth, the rate limit and counting. ``read``: a POST that
        only reads (Conga's query), counted and throttled as a read."""

        def wrapped(request: Request) -> Response:
            write = request.method in self.write_methods and not read
            early, drop = self._roll_fault() if write else (None, False)
            if early is not None:
                return early
            with self._lock:
                denied = self._authorize(request) or self.check_caller(request)
                if denied is not None:
                    return denied
                if write and request.method in self.limited_methods:
                    throttled = self._throttle()
                    if throttled is not None:
                        return throttled
                self.count("writes" if write else "reads", *counters)
                response = handler(request)
            if drop:
                return Response(0, drop=True)  # status 0 in the log: nothing was answered
            return response

        return wrapped

    def _authorize(self, request: Request) -> Response | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        expires = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if expires is not None and expires > self.clock():
            return None
        message = "token expired" if expires is not None else "missing or unknown bearer token"
        response = self.error(401, "UNAUTHORIZED", message)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    def _throttle(self) -> Response | None:
        limit = self.writes_per_minute
        now = self.clock()
        while self._writes and self._writes[0] <= now - WINDOW_SECONDS:
            self._writes.popleft()
        if limit is not None and len(self._writes) >= limit:
            # Refused calls do not use the window up; the answer says when a slot frees.
            wait = max(1, math.ceil(self._writes[0] + WINDOW_SECONDS - now))
            response = self.error(429, "TOO_MANY_REQUESTS", f"over {limit} writes a minute")
            response.headers["Retry-After"] = str(wait)
            return response
        self._writes.append(now)
        return None

    def _roll_fault(self) -> tuple[Response | None, bool]:
        """(an answer instead of the call, or None; whether to drop the answer)."""
        with self._lock:
            if self._fail_next:
                status, retry_after = self._fail_next.popleft()
                return self._fault_response(status, retry_after), False
            faults = self.faults
            chosen = pick(
                self._rng.random(),
                (
                    (faults.error_500_rate, "500"),
                    (faults.error_429_rate, "429"),
                    (faults.drop_after_apply_rate, "drop"),
                ),
            )
            retry_after = faults.retry_after
        if chosen == "500":
            return self._fault_response(500, None), False
        if chosen == "429":
            return self._fault_response(429, retry_after), False
        return None, chosen == "drop"

    def _fault_response(self, status: int, retry_after: float | None) -> Response:
        return fault_response(self.error, status, retry_after)


def json_body(request: Request) -> Any:
    """The request's JSON, or ValueError (answered as a 400 by the caller)."""
    try:
        return request.json()
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from None


def int_arg(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be {low}..{high}")
    return value
