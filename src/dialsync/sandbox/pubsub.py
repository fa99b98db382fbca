"""Loopback fake of Salesforce's Pub/Sub API (gRPC over TLS) for Contact change events.

Every change the Salesforce sandbox commits becomes an Avro-encoded ContactChangeEvent on
``/data/ContactChangeEvent``, with a replay id (8 bytes, increasing, not contiguous), kept for a
retention period (72 hours; shrink it in tests). ``Subscribe`` is pull-based: the server sends
at most what the client asked for (``num_requested``) and, with nothing to send, a keepalive (no
events, ``latest_replay_id``) every ``keepalive_seconds``. The keepalive carries the topic's
latest replay id, even past events the client has not asked for yet: ``pubsub_api.proto`` does
not promise otherwise, so the sandbox takes the reading a client must survive. Errors carry
Salesforce's custom ``error-code`` trailer. Faults: ``reset_streams`` (the connection drops), the
Salesforce sandbox's ``expire_sessions`` (open streams end with the auth error), ``allocation``
(deliveries allowed before the org's event allocation is exceeded), ``gap`` and ``overflow``
events, ``holding`` (a subscription is put in place late).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import grpc

from dialsync.sandbox.cdc import ChangeEventSchema
from dialsync.sandbox.salesforce import ORG_ID, SalesforceSandbox
from dialsync.stream import pubsub_pb2 as pb
from dialsync.stream import pubsub_pb2_grpc as pb_grpc

TOPIC = "/data/ContactChangeEvent"
RETENTION = timedelta(hours=72)  # Salesforce keeps change events for 72 hours
KEEPALIVE = 270.0  # Salesforce sends an empty FetchResponse within 270 s
MAX_BATCH = 100  # events in one FetchResponse at most
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"
REPLAY_CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
TOPIC_NOT_FOUND = "sfdc.platform.eventbus.grpc.topic.not.found"
SCHEMA_NOT_FOUND = "sfdc.platform.eventbus.grpc.schema.not.found"
ALLOCATION_EXCEEDED = "sfdc.platform.eventbus.grpc.subscription.limit.exceeded"


@dataclass(frozen=True)
class Entry:
    replay: int
    at: datetime
    change_type: str
    payload: bytes


def replay_bytes(replay: int) -> bytes:
    return replay.to_bytes(8, "big")


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, error_code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.error_code, self.message = code, error_code, message


class PubSubSandbox(pb_grpc.PubSubServicer):  # type: ignore[misc]
    def __init__(
        self,
        salesforce: SalesforceSandbox,
        *,
        retention: timedelta = RETENTION,
        keepalive_seconds: float = KEEPALIVE,
        allocation: int | None = None,
    ) -> None:
        self.salesforce = salesforce
        self.retention = retention
        self.keepalive_seconds = keepalive_seconds
        self.allocation = allocation  # deliveries allowed; None: unlimited
        self.delivered = 0
        self.subscribes = 0
        self.presets: list[str] = []  # each Subscribe's replay preset: LATEST, EARLIEST, CUSTOM
        self._silent = False
        self._held = False
        self.keepalives: list[bytes] = []  # the latest_replay_id of each keepalive sent
        self.schema = ChangeEventSchema(
            (name, kind) for name, kind in salesforce.describe_types().items()
        )
        self._entries: list[Entry] = []
        self._purged_through = 0  # the newest replay id no longer retained
        self._next = 4_000  # replay ids do not start at 1 and leave holes (step 7)
        self._cond = threading.Condition()
        self._generation = 0  # reset_streams bumps it: every open stream ends
        self._server: grpc.Server | None = None
        self.port = 0
        salesforce.change_listeners.append(self._on_change)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> PubSubSandbox:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        pb_grpc.add_PubSubServicer_to_server(self, server)
        tls = self.salesforce.tls_files
        credentials = grpc.ssl_server_credentials(
            [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())]
        )
        self.port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self.reset_streams()
            self._server.stop(grace=0.5).wait()
            self._server = None

    def __enter__(self) -> PubSubSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """host:port for DIALSYNC_STREAM__PUBSUB_ENDPOINT (the certificate names localhost)."""
        return f"localhost:{self.port}"

    # -- the event bus ---------------------------------------------------------------------
    @contextlib.contextmanager
    def silenced(self) -> Iterator[None]:
        """Changes made in the block publish no event (to stage a gap or an overflow)."""
        self._silent = True
        try:
            yield
        finally:
            self._silent = False

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Subscribe calls made in the block are put in place only when it ends: no headers,
        no responses until then, as from a server slow to set a subscription up."""
        with self._cond:
            self._held = True
        try:
            yield
        finally:
            with self._cond:
                self._held = False
                self._cond.notify_all()

    def _on_change(self, kind: str, ids: list[str], fields: list[str], at: datetime) -> None:
        if self._silent:
            return
        values = {}
        for id in ids:
            row = self.salesforce.contact(id)
            if row is not None:
                values = row
        self.publish(kind, ids, fields, at, values)

    def publish(
        self,
        kind: str,
        ids: list[str],
        fields: list[str] | None = None,
        at: datetime | None = None,
        values: dict[str, Any] | None = None,
    ) -> bytes:
        """Append one event; its replay id."""
        at = at or self.salesforce.now()
        payload = self.schema.encode(
            change_type=kind,
            record_ids=ids,
            changed=fields or [],
            at=at,
            transaction_key=secrets.token_hex(16),
            sequence=1,
            values=values,
        )
        with self._cond:
            self._next += 7
            entry = Entry(self._next, self.salesforce.now(), kind, payload)
            self._entries.append(entry)
            self._cond.notify_all()
        return replay_bytes(entry.replay)

    def gap(self, kind: str, ids: list[str]) -> bytes:
        """A GAP_* event: Salesforce could not build the event, only its Ids are known."""
        return self.publish(f"GAP_{kind}", ids)

    def overflow(self) -> bytes:
        """GAP_OVERFLOW: one transaction changed more than 100,000 records."""
        return self.publish("GAP_OVERFLOW", [])

    def corrupt(self) -> bytes:
        """An event whose payload does not decode with its schema (a poison message)."""
        with self._cond:
            self._next += 7
            self._entries.append(Entry(self._next, self.salesforce.now(), "CORRUPT", b"\x02"))
            self._cond.notify_all()
            return replay_bytes(self._next)

    def events(self) -> list[Entry]:
        with self._cond:
            self._purge()
            return list(self._entries)

    def _purge(self) -> None:
        horizon = self.salesforce.now() - self.retention
        gone = [e for e in self._entries if e.at < horizon]
        if gone:
            self._purged_through = gone[-1].replay
            self._entries = self._entries[len(gone) :]

    def reset_streams(self) -> None:
        """Every open Subscribe ends with UNAVAILABLE, as when the connection drops."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    # -- RPCs ------------------------------------------------------------------------------
    def _check_auth(self, context: grpc.ServicerContext) -> None:
        meta = dict(context.invocation_metadata())
        token = str(meta.get("accesstoken", ""))
        if (
            not self.salesforce.token_valid(token)
            or str(meta.get("instanceurl", "")).rstrip("/") != self.salesforce.url
            or meta.get("tenantid") != ORG_ID
        ):
            raise _Abort(grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR, "authentication failed")

    def _abort(self, context: grpc.ServicerContext, exc: _Abort) -> None:
        context.set_trailing_metadata((("error-code", exc.error_code),))
        context.abort(exc.code, f"{exc.message} rpcId: {secrets.token_hex(8)}")

    def GetSchema(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            self._check_auth(context)
            if request.schema_id != self.schema.id:
                raise _Abort(grpc.StatusCode.NOT_FOUND, SCHEMA_NOT_FOUND, "no such schema")
        except _Abort as exc:
            self._abort(context, exc)
        return pb.SchemaInfo(schema_json=self.schema.json, schema_id=self.schema.id)

    def GetTopic(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            self._check_auth(context)
            if request.topic_name != TOPIC:
                raise _Abort(grpc.StatusCode.NOT_FOUND, TOPIC_NOT_FOUND, "topic not found")
        except _Abort as exc:
            self._abort(context, exc)
        return pb.TopicInfo(
            topic_name=TOPIC,
            tenant_guid=ORG_ID,
            can_publish=False,
            can_subscribe=True,
            schema_id=self.schema.id,
        )

    def Subscribe(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Any:
        try:
            self._check_auth(context)
            first = next(request_iterator)
            if first.topic_name != TOPIC:
                raise _Abort(grpc.StatusCode.NOT_FOUND, TOPIC_NOT_FOUND, "topic not found")
            context.add_callback(self._wake)  # a client that goes away ends a wait below
            with self._cond:
                self._cond.wait_for(lambda: not self._held or not context.is_active())
                if not context.is_active():
                    return
                self.subscribes += 1
                self.presets.append(pb.ReplayPreset.Name(first.replay_preset))
                position = self._start(first)
                generation = self._generation
            # the subscription is in place from here: the headers tell the client so
            context.send_initial_metadata(())
            wanted = [first.num_requested]
            done = threading.Event()
            threading.Thread(
                target=self._read_requests, args=(request_iterator, wanted, done), daemon=True
            ).start()
            yield from self._deliver(context, position, generation, wanted, done)
        except _Abort as exc:
            self._abort(context, exc)
        except StopIteration:
            return

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _start(self, first: Any) -> int:
        self._purge()
        latest = self._next  # the newest replay id given out
        if first.replay_preset == pb.LATEST:
            return latest
        if first.replay_preset == pb.EARLIEST:
            return self._purged_through
        replay = int.from_bytes(first.replay_id, "big") if len(first.replay_id) == 8 else -1
        # valid while every event after it is still retained
        if replay < self._purged_through or replay > latest:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                REPLAY_CORRUPTED,
                "The Replay ID validation failed: it is invalid or outside the retention window",
            )
        return replay

    def _read_requests(
        self, requests: Iterator[Any], wanted: list[int], done: threading.Event
    ) -> None:
        try:
            for request in requests:
                with self._cond:
                    wanted[0] += request.num_requested
                    self._cond.notify_all()
        except Exception:  # the client went away: the stream ends
            pass
        finally:
            done.set()
            with self._cond:
                self._cond.notify_all()

    def _deliver(
        self,
        context: grpc.ServicerContext,
        position: int,
        generation: int,
        wanted: list[int],
        done: threading.Event,
    ) -> Iterator[Any]:
        while context.is_active() and not done.is_set():
            # Checked outside the condition: the Salesforce sandbox's lock is taken before this
            # one when a change is published, never the other way round.
            if not self.salesforce.token_valid(_token(context)):
                raise _Abort(grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR, "session expired")
            with self._cond:
                timed_out = False
                if not (self._after(position) and wanted[0] > 0):
                    timed_out = not self._cond.wait(self.keepalive_seconds)
                if self._generation != generation:
                    raise _Abort(grpc.StatusCode.UNAVAILABLE, "", "RST_STREAM closed stream")
                pending = self._after(position)
                batch = pending[: min(max(wanted[0], 0), MAX_BATCH)]
                if (
                    batch
                    and self.allocation is not None
                    and self.delivered + len(batch) > self.allocation
                ):
                    raise _Abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        ALLOCATION_EXCEEDED,
                        "the org's event delivery allocation is exceeded",
                    )
                wanted[0] -= len(batch)
                self.delivered += len(batch)
                latest = self._entries[-1].replay if self._entries else position
            if batch:
                position = batch[-1].replay
                yield pb.FetchResponse(
                    events=[_consumer(e, self.schema.id) for e in batch],
                    latest_replay_id=replay_bytes(position),
                    pending_num_requested=wanted[0],
                )
            elif timed_out:
                # The topic's latest replay id: past events held back for want of a request.
                mark = max(latest, position)
                with self._cond:
                    self.keepalives.append(replay_bytes(mark))
                yield pb.FetchResponse(
                    latest_replay_id=replay_bytes(mark), pending_num_requested=wanted[0]
                )

    def _after(self, position: int) -> list[Entry]:
        return [e for e in self._entries if e.replay > position]


def _token(context: grpc.ServicerContext) -> str:
    return str(dict(context.invocation_metadata()).get("accesstoken", ""))


def _consumer(entry: Entry, schema_id: str) -> Any:
    return pb.ConsumerEvent(
        event=pb.ProducerEvent(id=str(entry.replay), schema_id=schema_id, payload=entry.payload),
        replay_id=replay_bytes(entry.replay),
    )
