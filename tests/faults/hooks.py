"""Fault hooks on the sandboxes' request path, and counters read from their request logs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from types import TracebackType

from sqlalchemy import create_engine, func, select

from dialsync.sandbox.server import (
    Handler,
    Interception,
    LoggedRequest,
    Request,
    Response,
    SandboxServer,
)
from dialsync.store.tables import runs


class AfterBulkCreate:
    """Runs ``action`` once, right after the dialer applied its ``nth`` bulk create and before
    the answer leaves: the write is done, the client never hears of it (the connection is
    dropped). ``action`` typically SIGKILLs the client; ``fired`` is set once it has run."""

    def __init__(self, server: SandboxServer, nth: int, action: Callable[[], None]) -> None:
        self.server = server
        self.nth = nth
        self.action = action
        self.seen = 0
        self.fired = threading.Event()
        self._interception: Interception | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> AfterBulkCreate:
        def dispatch(request: Request, original: Handler) -> Response:
            response = original(request)
            if request.method != "POST" or not request.path.endswith("/records/bulks"):
                return response
            if response.status != 201:
                return response
            with self._lock:
                self.seen += 1
                fire = self.seen == self.nth
            if fire:
                self.action()
                self.fired.set()
                return Response(0, drop=True)
            return response

        self._interception = self.server.intercept(dispatch)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._interception is not None:
            self._interception.remove()


def api_log(server: SandboxServer, prefix: str = "/record-lists") -> list[LoggedRequest]:
    with server.lock:
        return [r for r in server.log if r.path.startswith(prefix)]


def runs_since(db_url: str, since: datetime, kinds: tuple[str, ...] = ("pull",)) -> int:
    """How many runs of these kinds started since ``since`` (service-mode cycles)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            query = (
                select(func.count())
                .select_from(runs)
                .where(runs.c.kind.in_(kinds), runs.c.started_at >= since)
            )
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


class Recorder:
    """A ``sleep`` that records what it was asked to wait, then waits."""

    def __init__(self, sleep: Callable[[float], None]) -> None:
        self.sleep = sleep
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(float(seconds))
        self.sleep(seconds)


def status_counts(log: list[LoggedRequest]) -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in log:
        out[entry.status] = out.get(entry.status, 0) + 1
    return out
