"""The world the model-based test drives: sandboxes on one controllable clock, engines that can
crash like processes, and scripted faults on the dialer's and Salesforce's request paths.

Nothing here sleeps in real time: the Salesforce sandbox, every engine and every store read one
:class:`VirtualClock`; the dialer client's and the Salesforce client's retry sleeps are no-ops.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import socket
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete

from dialsync.destinations.talkdesk import TalkdeskDestination
from dialsync.engine import EngineOptions, SyncEngine
from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.server import Handler, Request, Response, SandboxServer
from dialsync.sources.salesforce import SalesforceSource
from dialsync.store.store import SqlSyncStore, open_store
from dialsync.store.tables import cursors, dialer_orphans, list_state, runs, sync_records
from dialsync.wiring import tls_from

RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 4.0
# Production defaults where the engine's behaviour depends on them: the Talkdesk timeout sets
# the settle grace of uncertain creates (2 x timeout), the lookback the re-read window.
TALKDESK_TIMEOUT_SECONDS = 30.0
LOOKBACK = timedelta(seconds=600)


def no_sleep(_seconds: float) -> None:
    """Retry backoffs of the HTTP clients: the model's time is the virtual clock's."""


class VirtualClock:
    """UTC time that moves only when told to, plus one microsecond per reading.

    The microsecond keeps readings strictly increasing, as a real clock's are (the store
    compares ``updated_at`` with a scan's start), while a whole run stays inside one second
    unless a step moves the clock on: edits and syncs in the same ``SystemModstamp`` second
    are the model's to choose.
    """

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            self._now += timedelta(microseconds=1)
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


class Crash(BaseException):  # a process death: not an Exception the engine may catch
    """The engine's process dies here (raised by a planted crash point)."""


class _Pid:
    """A live process standing for one engine's process: claims carry its pid, so when the
    engine crashes and this process is killed, other workers see those claims as dead."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["sleep", "3600"], stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()  # reaped: a zombie would still answer kill(pid, 0)


@dataclass
class Worker:
    """One dialsync process: its engine, its store, its Talkdesk adapter and its pid."""

    name: str
    engine: SyncEngine
    store: SqlSyncStore
    dest: TalkdeskDestination
    pid: _Pid
    crash_at: str | None = None  # a planted crash point, see World.plant_crash

    def close(self) -> None:
        self.engine.close()
        self.store.engine.dispose()
        self.pid.kill()


# -- scripted dialer faults ------------------------------------------------------------------
BULK_PATH = "/records/bulks"


@dataclass
class DialerScript:
    """Intercepts the Talkdesk sandbox's requests: scripted faults for the next bulk writes, and
    actions run while a write is in flight (after the dialer applied it, before it answers).

    Fault kinds: ``500`` (nothing applied), ``500_after_apply``, ``drop_after_apply`` (the
    answer is lost), ``reject_first`` / ``reject_last`` (one item of the bulk call gets a
    per-record error and is not applied).
    """

    server: SandboxServer
    faults: deque[str] = field(default_factory=deque)
    in_flight: deque[Callable[[], None]] = field(default_factory=deque)
    before_page: dict[int, Callable[[], None]] = field(default_factory=dict)
    refused: list[tuple[str, str | None]] = field(default_factory=list)  # (method, external id)
    record_owner: Callable[[str], str | None] = lambda _rid: None

    def install(self) -> None:
        self.server.intercept(self._dispatch)

    def quiet(self) -> None:
        self.faults.clear()
        self.in_flight.clear()
        self.before_page.clear()

    def _dispatch(self, request: Request, original: Handler) -> Response:
        if request.method == "GET" and request.path.endswith("/records"):
            page = int(request.arg("page") or 1)
            action = self.before_page.pop(page, None)
            if action is not None:
                action()  # another worker writes while this scan is between pages
            return original(request)
        if not (request.path.endswith(BULK_PATH) and request.method in ("POST", "PATCH", "DELETE")):
            return original(request)
        fault = self.faults.popleft() if self.faults else None
        if fault == "500":
            return Response(500, {"code": "INTERNAL_SERVER_ERROR", "message": "injected"})
        if fault in ("reject_first", "reject_last"):
            response = self._reject_one(request, original, first=fault == "reject_first")
        else:
            response = original(request)
        action = self.in_flight.popleft() if self.in_flight else None
        if action is not None:
            action()
        if fault == "500_after_apply":
            return Response(500, {"code": "INTERNAL_SERVER_ERROR", "message": "injected"})
        if fault == "drop_after_apply":
            return Response(0, drop=True)
        return response

    def _reject_one(self, request: Request, original: Handler, *, first: bool) -> Response:
        """Apply the bulk call without one of its items, which is answered as failed."""
        body = json.loads(request.body or b"null")
        items = body["records"] if request.method == "POST" else body
        if not isinstance(items, list) or not items:
            return original(request)
        at = 0 if first else len(items) - 1
        dropped = items.pop(at)
        if request.method == "POST":
            self.refused.append(("create", dropped.get("external_id")))
        elif request.method == "PATCH":
            self.refused.append(("update", (dropped.get("value") or {}).get("external_id")))
        else:
            self.refused.append(("delete", self.record_owner(str(dropped.get("id")))))
        if not items:  # the whole call was this one item: nothing to apply
            response = _empty_answer(request.method)
        else:
            request.body = json.dumps(body).encode()
            response = original(request)
        answer = response.body if isinstance(response.body, dict) else {}
        if request.method == "DELETE":
            failed = answer.setdefault("_embedded", {}).setdefault("failed_records", [])
            failed.append({**dropped, "errors": ["OTHER"]})
            answer["total_errors"] = int(answer.get("total_errors", 0)) + 1
        else:
            entries = answer.setdefault("_embedded", {}).setdefault("records", [])
            entry = dropped if request.method == "POST" else {"id": _record_id(dropped)}
            entries.insert(at, {**entry, "errors": ["OTHER"]})
            answer["has_errors"] = True
            answer["total_errors"] = int(answer.get("total_errors", 0)) + 1
        response.body = answer
        return response


def _record_id(operation: dict[str, Any]) -> str:
    return str(operation.get("path", "")).rsplit("/", 1)[-1]


def _empty_answer(method: str) -> Response:
    if method == "POST":
        return Response(201, {"has_errors": False, "total_errors": 0, "total_created": 0,
                              "_embedded": {"records": []}})  # fmt: skip
    if method == "PATCH":
        return Response(200, {"has_errors": False, "total_errors": 0, "_embedded": {"records": []}})
    return Response(200, {"total_deleted": 0, "total_errors": 0,
                          "_embedded": {"failed_records": []}})  # fmt: skip


@dataclass
class SalesforceScript:
    """Intercepts the Salesforce sandbox's requests: an action run just before the next window
    query (``ORDER BY SystemModstamp``) is answered, i.e. while a pass is running."""

    server: SandboxServer
    before_window: deque[Callable[[], None]] = field(default_factory=deque)

    def install(self) -> None:
        self.server.intercept(self._dispatch)

    def quiet(self) -> None:
        self.before_window.clear()

    def _dispatch(self, request: Request, original: Handler) -> Response:
        query = request.arg("q") or ""
        if self.before_window and "ORDER BY SystemModstamp" in query:
            self.before_window.popleft()()
        return original(request)


# -- the world ---------------------------------------------------------------------------------
def clean_database(url: str) -> None:
    """Empty every table of the state database (the schema stays): one example's state must
    not leak into the next."""
    open_store(url).engine.dispose()  # a new SQLite file is created and migrated here
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for table in (sync_records, dialer_orphans, cursors, list_state, runs):
                conn.execute(delete(table))
    finally:
        engine.dispose()


class World:
    """Salesforce and Talkdesk sandboxes, one state database, and two workers on it."""

    START = datetime(2026, 3, 2, 9, 0, 0, 100_000, tzinfo=UTC)

    def __init__(self, workdir: Path, db_url: str, unique_identifier_type: str) -> None:
        self.clock = VirtualClock(self.START)
        self.db_url = db_url
        clean_database(db_url)
        self.box = Sandboxes(
            workdir,
            unique_identifier_type=unique_identifier_type,
            salesforce={"clock": self.clock.now},
        ).start()
        self.settings = self.box.settings(db_url)
        self.dialer = DialerScript(self.box.talkdesk.server)
        self.dialer.record_owner = self._owner_of
        self.dialer.install()
        self.salesforce = SalesforceScript(self.box.salesforce.server)
        self.salesforce.install()
        self._rng = random.Random(0)
        self.workers = [self.start_worker("A"), self.start_worker("B")]

    @property
    def sf(self) -> Any:
        return self.box.salesforce

    @property
    def talkdesk(self) -> Any:
        return self.box.talkdesk

    @property
    def list_id(self) -> str:
        return self.box.list_id

    def _owner_of(self, record_id: str) -> str | None:
        for record in self.talkdesk.records(self.list_id):
            if record["id"] == record_id:
                return record.get("external_id")
        return None

    def start_worker(self, name: str) -> Worker:
        """A new process: built as the composition root builds it, with the seams set."""
        settings = self.settings
        tls = tls_from(settings)
        td = settings.talkdesk.model_copy(update={"timeout_seconds": TALKDESK_TIMEOUT_SECONDS})
        dest = TalkdeskDestination(td, verify=tls.httpx_verify, sleep=no_sleep)
        source = SalesforceSource(settings.salesforce, verify=tls.requests_verify, sleep=no_sleep)
        store = open_store(self.db_url, clock=self.clock.now)
        pid = _Pid()
        host = socket.gethostname()[:30]
        # The store marks its claims with host:pid: this worker's pid is its stand-in process.
        store.claim_prefix = lambda: f"{host}:{pid.pid}:{store._instance}."  # type: ignore[method-assign]
        engine = SyncEngine(
            source=source,
            destinations=[dest],
            store=store,
            options=EngineOptions(
                lookback=LOOKBACK,
                default_region=settings.mapping.default_region,
                priority=settings.mapping.priority,
                retry_base_seconds=RETRY_BASE_SECONDS,
                retry_max_seconds=RETRY_MAX_SECONDS,
                push_threads=1,  # one request at a time: examples replay exactly
            ),
            clock=self.clock.now,
            rng=random.Random(len(name) + self._rng.randrange(1 << 30)).random,
        )
        return Worker(name, engine, store, dest, pid)

    def plant_crash(self, worker: Worker, point: str) -> None:
        """The worker's process dies at ``point`` of its next call:

        ``after_pull_batch``: a pulled batch is in the table, the cursor not moved yet;
        ``before_send``: rows claimed (a create marked in flight), the dialer not called;
        ``after_apply``: the dialer applied the write, its answer is never recorded.
        """
        worker.crash_at = point
        if point == "after_pull_batch":

            def pulled(report: Any, count: int) -> None:
                raise Crash(point)

            worker.engine.observer.batch_pulled = pulled  # type: ignore[method-assign]
            return
        dest = worker.dest
        for op in ("create", "update", "delete"):
            real = getattr(dest, op)

            def call(items: Any, _real: Callable[[Any], Any] = real) -> Any:
                if point == "before_send":
                    raise Crash(point)
                _real(items)
                raise Crash(point)

            setattr(dest, op, call)

    def restart(self, index: int) -> None:
        """The crashed worker's process is gone (its pid too); a new one takes its place."""
        old = self.workers[index]
        try:
            old.engine.close()
            old.store.engine.dispose()
        finally:
            old.pid.kill()
        self.workers[index] = self.start_worker(old.name)

    def quiet(self) -> None:
        self.dialer.quiet()
        self.salesforce.quiet()
        for index, worker in enumerate(self.workers):
            if worker.crash_at is not None:  # a planted crash that never fired
                self.restart(index)

    def ours(self) -> list[dict[str, Any]]:
        return [
            r
            for r in self.talkdesk.records(self.list_id)
            if r.get("external_provider") == "salesforce"
        ]

    def close(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):  # closing must not hide a failure
                worker.close()
        self.box.stop()


def snapshot(record: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(record)
    out.pop("_links", None)
    return out
