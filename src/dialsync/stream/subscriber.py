"""The subscription loop: events in, contacts re-read and durable, then the position moves.

Order, which is what makes a crash at any point lose nothing:
1. a FetchResponse's events are decoded and their record ids collected;
2. the ids are re-read and recorded in the sync table (``Hints.apply``, durable on return);
3. only then the replay id of the last of those events is committed (``Position``);
4. only then more events are asked for (flow control: the client never holds more than 100).
A crash before 3 resubscribes from the previous replay id: the events come again and the
re-read is idempotent.

The stored position is only ever the replay id of an event processed here. A keepalive's
``latest_replay_id`` is not stored: ``pubsub_api.proto`` (forcedotcom/pub-sub-api) calls it the
"latest replay ID of a subscription", sent "if there are no events to deliver", and does not say
it stays behind events the server holds back because the client asked for none (flow control);
storing it could skip those. The cost: after a quiet spell longer than the 72-hour retention the
stored id is refused, and the window read below covers the gap.

A subscription from LATEST (no position yet, or the stored one refused) leaves a gap before it:
the window read from the poll cursor (``Hints.catch_up``) covers it, and counts only once the
server confirmed the subscription (its headers or a first response); a read before that could
miss what changes between the read and the subscription's real start. Until it is confirmed the
window is polled at the normal interval, said in the log and in the fallback metric.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Protocol

from dialsync.errors import AuthError, TerminalError, TransientError
from dialsync.preflight import backoff, is_connection_error
from dialsync.salesforce_ids import normalize_id
from dialsync.store.protocol import SyncStore
from dialsync.stream.client import (
    AllocationExceeded,
    Credentials,
    CredentialSource,
    PubSubClient,
    ReplayRefused,
    Subscription,
)
from dialsync.stream.events import ORDINARY, ChangeEvent, SchemaCache

log = logging.getLogger(__name__)
MAX_BACKOFF = 60.0  # seconds between reconnection attempts at most
ESTABLISH_WAIT = 10.0  # seconds a new subscription may take to be confirmed before we poll


class Hints(Protocol):
    def apply(self, contact_ids: Sequence[str]) -> None:
        """Re-read these contacts and record them; durable when it returns."""

    def catch_up(self) -> None:
        """A window re-read from the poll cursor (overflow, a refused replay id)."""


class StreamObserver(Protocol):
    def delivered(self, count: int) -> None: ...
    def fallback(self, reason: str) -> None: ...
    def keepalive(self, count: int = 1) -> None:
        """``count`` responses that carried no events."""

    def live(self, on: bool) -> None:
        """On: subscribed, confirmed, and the gap before it covered; off: not (any more)."""


class Ended(Enum):
    STOPPED = "stopped"
    ALLOCATION = "allocation"  # the org's event allocation is used up: poll instead


class Position:
    """The last processed replay id, in the state database's cursor table (base64)."""

    def __init__(self, store: SyncStore, topic: str) -> None:
        self.store = store
        self.name = f"stream:{topic}"[:64]

    def load(self) -> bytes | None:
        value = self.store.get_cursor(self.name).last_id
        if not value:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            log.warning("stream: stored replay id unreadable; starting from the poll's window")
            return None

    def commit(self, replay_id: bytes) -> None:
        encoded = base64.b64encode(replay_id).decode()
        if len(encoded) > 32:  # the cursor column's width (24 bytes; Salesforce's are 8-9)
            raise TransientError("replay id longer than the cursor column", system="stream")
        self.store.set_cursor(self.name, last_id=encoded)

    def forget(self) -> None:
        self.store.set_cursor(self.name, last_id=None)


def contact_ids(events: Sequence[ChangeEvent]) -> tuple[list[str], bool]:
    """(Ids to re-read, in first-seen order, whether a GAP_OVERFLOW asks for a window read)."""
    seen: dict[str, None] = {}
    overflow = False
    for event in events:
        if event.is_overflow:
            overflow = True
            continue
        if event.entity and event.entity != "Contact":
            continue
        if event.change_type not in ORDINARY and not event.change_type.startswith("GAP_"):
            log.warning("stream: unknown change type %s; re-reading its ids", event.change_type)
        for raw in event.record_ids:
            if raw.endswith("*"):
                # A wildcard ("003*"): every record of the entity changed (a field's type was
                # converted); no id list to re-read, so the window read covers them.
                log.warning("stream: event %s names every contact; re-reading the window", raw)
                overflow = True
                continue
            try:
                seen.setdefault(normalize_id(raw), None)
            except ValueError:
                log.warning("stream: event %s names a malformed id; skipped", event.change_type)
    return list(seen), overflow


class Subscriber:
    def __init__(
        self,
        *,
        client: PubSubClient,
        credentials: CredentialSource,
        hints: Hints,
        position: Position,
        topic: str,
        observer: StreamObserver,
        poll_interval: float,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.client = client
        self.credentials = credentials
        self.hints = hints
        self.position = position
        self.topic = topic
        self.observer = observer
        self.poll_interval = poll_interval  # while a subscription is unconfirmed
        self._creds: Credentials | None = None
        self.schemas = SchemaCache(lambda sid: self.client.get_schema(self._current(), sid))
        self._sleep = sleep
        self._lock = threading.Lock()
        self._subscription: Subscription | None = None
        self._watched: threading.Event | None = None

    def _current(self) -> Credentials:
        if self._creds is None:
            self._creds = self.credentials(False)
        return self._creds

    def run(self, stop: threading.Event) -> Ended:
        """Subscribe and process until ``stop`` is set or the allocation is used up."""
        wait = self._sleep or stop.wait
        self._cancel_on(stop)
        replay = self.position.load()
        failures = renewals = 0
        while not stop.is_set():
            creds = self._current()
            subscription = self.client.subscribe(creds, self.topic, replay)
            with self._lock:
                self._subscription = subscription
            if stop.is_set():  # set before the watcher could see this subscription
                subscription.cancel()
            live = False
            try:
                if replay is None:
                    # From LATEST: what changed before it is the poll's to read, once the
                    # subscription is confirmed (so nothing falls between the two).
                    live = self._catch_up_once_live(subscription)
                elif subscription.wait_live(ESTABLISH_WAIT):  # resuming: the headers confirm it
                    live = True
                    self.observer.live(True)
                for responses in subscription.batches():
                    failures = renewals = 0
                    if not live:  # a response confirms it (a server that sent no headers)
                        live = True
                        self.observer.live(True)
                    replay = self._handle(subscription, responses) or replay
                    if stop.is_set():
                        break
            except AuthError:
                renewals += 1
                if renewals > 1:
                    raise  # a fresh token refused too: a credential to fix
                log.info("stream: session expired; renewing the token, resuming in place")
                self._creds = self.credentials(True)
            except ReplayRefused as exc:
                log.warning(
                    "stream: stored replay id refused (%s): polling the window since the last "
                    "durable point, then subscribing from LATEST",
                    exc.code,
                )
                self.observer.fallback("replay_refused")
                self.position.forget()
                replay = None
            except AllocationExceeded:
                log.error(
                    "stream: the org's change event allocation is exceeded; falling back to "
                    "polling at the normal interval"
                )
                self.observer.fallback("allocation")
                return Ended.ALLOCATION
            except Exception as exc:
                # A lost connection to the state database or Redis is as passing as a stream
                # reset: resubscribe from the durable position rather than end the stream.
                if not (isinstance(exc, TransientError) or is_connection_error(exc)):
                    raise
                failures += 1
                pause = backoff(failures, start=1.0, cap=MAX_BACKOFF)
                log.warning("stream: %s; resubscribing in %.1f s", exc, pause)
                wait(pause)
            finally:
                with self._lock:
                    self._subscription = None
                subscription.cancel()
                if live:
                    self.observer.live(False)
            if not stop.is_set() and not failures:
                wait(0.05)  # a clean end of stream: resubscribe without spinning
        return Ended.STOPPED

    def _catch_up_once_live(self, subscription: Subscription) -> bool:
        """Wait for the server to confirm the subscription, polling the window meanwhile, then
        read the window: the gap before the subscription is covered. False when the call ended
        first (stopped, or failed: its responses say why, and the next one from LATEST catches
        up in turn)."""
        timeout, unconfirmed = ESTABLISH_WAIT, False
        while not subscription.wait_live(timeout):
            if subscription.over:
                return False
            if not unconfirmed:
                log.warning(
                    "stream: the subscription is not confirmed after %.0f s; polling the window "
                    "every %.0f s until it is, then catching up",
                    timeout,
                    self.poll_interval,
                )
                self.observer.fallback("unconfirmed")
                unconfirmed = True
            self.hints.catch_up()  # a poll meanwhile: it cannot cover what follows it
            timeout = self.poll_interval
        log.info("stream: subscribed from LATEST; catching up from the poll cursor")
        self.hints.catch_up()
        self.observer.live(True)
        return True

    def _cancel_on(self, stop: threading.Event) -> None:
        """Cancel the open subscription as soon as ``stop`` is set (its iterator blocks until
        then): one thread per stop flag, blocked on it, never polling."""
        if self._watched is stop:
            return
        self._watched = stop

        def watch() -> None:
            stop.wait()
            with self._lock:
                current = self._subscription
            if current is not None:
                current.cancel()

        threading.Thread(target=watch, name="stream-stop", daemon=True).start()

    def _handle(self, subscription: Subscription, responses: Sequence[Any]) -> bytes | None:
        """Process one batch of FetchResponses; the replay id committed, if any."""
        events: list[ChangeEvent] = []
        received: list[bytes] = []
        unreadable = 0
        for e in (e for response in responses for e in response.events):
            received.append(bytes(e.replay_id))
            try:
                events.append(self.schemas.decode(e.event.schema_id, e.event.payload, e.replay_id))
            except AuthError:
                raise  # the schema's GetSchema met an expired token: run() renews it
            except TerminalError as exc:
                # A hint we cannot read: the window read from the poll cursor covers whatever it
                # named, rather than a process that stops on it after every restart.
                log.error("stream: %s; re-reading the window instead", exc)
                unreadable += 1
        if not received:  # nothing to store: see the module's docstring
            self.observer.keepalive(sum(1 for r in responses if not r.events))
            return None
        self._process(events, catch_up=bool(unreadable))
        mark = received[-1]  # the last event processed, durable now
        self.position.commit(mark)
        self.observer.delivered(len(received))
        subscription.request(len(received))
        return mark

    def _process(self, events: Sequence[ChangeEvent], *, catch_up: bool = False) -> None:
        ids, overflow = contact_ids(events)
        if ids:
            self.hints.apply(ids)
        if catch_up:
            self.hints.catch_up()
        elif overflow:
            log.warning("stream: GAP_OVERFLOW (a transaction too big for events): window re-read")
            self.hints.catch_up()
