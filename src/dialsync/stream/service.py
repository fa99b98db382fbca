"""The subscriber wired to the engine: credentials, the channel, the hints, the fallback.

Both doors use it: `dialsync stream` (service mode: rows are recorded, push tasks send them)
and `dialsync run` (embedded: pushed in this process). Every write to the sync table's desired
state takes the same database lock as the poll (``sync``), so a poll's older read of a contact
can never overwrite the stream's newer one; the stream waits for a running poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from dialsync.engine import SyncEngine
from dialsync.metrics import instruments
from dialsync.settings import Settings
from dialsync.sources.salesforce import TimeoutSession
from dialsync.sources.salesforce_auth import fetch_grant
from dialsync.store.locks import writer_lock
from dialsync.stream.client import Credentials, CredentialSource, PubSubClient, tenant_id
from dialsync.stream.subscriber import Ended, Position, Subscriber

log = logging.getLogger(__name__)
LOCK_WAIT = 300.0  # seconds a hint waits for a running poll before resubscribing later
ALLOCATION_RETRY = 3600.0  # after the allocation is exceeded, try the stream again hourly


class StreamMetrics:
    """What the stream reports (``StreamObserver``), counted in dialsync.metrics with the rest;
    also kept here, with a ``ready`` flag, for the process that runs the stream."""

    def __init__(self) -> None:
        self.delivered_count = 0
        self.keepalive_count = 0
        self.fallbacks: list[str] = []
        self.ready = threading.Event()  # set while live: subscribed, confirmed, caught up

    def delivered(self, count: int) -> None:
        self.delivered_count += count
        instruments().stream_events.inc(count)

    def fallback(self, reason: str) -> None:
        self.fallbacks.append(reason)
        instruments().stream_fallbacks.labels(reason=reason).inc()

    def keepalive(self, count: int = 1) -> None:
        self.keepalive_count += count
        instruments().stream_keepalives.inc(count)

    def live(self, on: bool) -> None:
        instruments().stream_live.set(int(on))
        if on:
            self.ready.set()
        else:
            self.ready.clear()


class EngineHints:
    """Hints into the engine under the poll's lock; ``after`` runs once they are durable."""

    def __init__(
        self,
        engine: SyncEngine,
        database: Engine,
        *,
        push: bool,
        after: Callable[[], object] = lambda: None,
    ) -> None:
        self.engine = engine
        self.database = database  # the state database, for the poll's lock
        self.push = push
        self.after = after

    def apply(self, contact_ids: Sequence[str]) -> None:
        with writer_lock(self.database, "sync", wait_seconds=LOCK_WAIT):
            self.engine.refresh(contact_ids, push=self.push)
        self.after()

    def catch_up(self) -> None:
        with writer_lock(self.database, "sync", wait_seconds=LOCK_WAIT):
            if self.push:
                self.engine.sync()
            else:
                self.engine.pull()
        self.after()


def credential_source(settings: Settings, verify: str | bool) -> CredentialSource:
    session = TimeoutSession(settings.salesforce.timeout_seconds)
    if verify is not True:
        session.verify = verify

    def get(renew: bool) -> Credentials:
        # Every call asks for a token: on renew (an auth error) a fresh one is the point.
        grant = fetch_grant(settings.salesforce, session, lambda: datetime.now(UTC))
        return Credentials(
            grant.token,
            grant.instance_url.rstrip("/"),
            tenant_id(grant.identity_url, grant.token),
        )

    return get


def ca_path(settings: Settings) -> Any:
    chosen = settings.ca_file
    return chosen[0] if chosen is not None else None


def run_stream(
    settings: Settings,
    engine: SyncEngine,
    stop: threading.Event,
    *,
    database: Engine,
    push: bool,
    after: Callable[[], object] = lambda: None,
    metrics: StreamMetrics | None = None,
) -> None:
    """Subscribe until ``stop``; while the allocation is exceeded, poll at the normal interval
    (DIALSYNC_SYNC__INTERVAL_SECONDS) and try the stream again every hour."""
    from dialsync.wiring import tls_from

    tls = tls_from(settings)
    client = PubSubClient(settings.stream.pubsub_endpoint, ca_file=ca_path(settings))
    hints = EngineHints(engine, database, push=push, after=after)
    subscriber = Subscriber(
        client=client,
        credentials=credential_source(settings, tls.requests_verify),
        hints=hints,
        position=Position(engine.store, settings.stream.topic),
        topic=settings.stream.topic,
        observer=metrics or StreamMetrics(),
        poll_interval=settings.sync.interval_seconds,
    )
    try:
        while not stop.is_set():
            if subscriber.run(stop) is Ended.STOPPED:
                return
            retry_at = time.monotonic() + ALLOCATION_RETRY
            while not stop.is_set() and time.monotonic() < retry_at:
                try:
                    hints.catch_up()
                except Exception as exc:  # the poll's own failures: logged, tried again
                    log.error("stream fallback poll failed: %s", exc.__class__.__name__)
                stop.wait(settings.sync.interval_seconds)
    finally:
        client.close()
