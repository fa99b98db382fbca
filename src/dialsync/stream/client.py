"""The Pub/Sub API over gRPC: one TLS channel, the auth metadata, Subscribe with pull flow
control, GetSchema and GetTopic. gRPC errors are translated here, from the status and
Salesforce's ``error-code`` trailer, into dialsync's errors (below)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from dialsync.errors import AuthError, RateLimited, TerminalError, TransientError
from dialsync.salesforce_ids import normalize_id
from dialsync.stream import pubsub_pb2 as pb
from dialsync.stream import pubsub_pb2_grpc as pb_grpc
from dialsync.stream.events import SYSTEM

log = logging.getLogger(__name__)
MAX_REQUESTED = 100  # num_requested: Salesforce delivers at most 100 events per request
RPC_TIMEOUT = 30.0  # GetSchema / GetTopic


class ReplayRefused(TerminalError):
    """The stored replay id is past retention or invalid: resubscribe elsewhere."""


class AllocationExceeded(RateLimited):
    """The org's event delivery allocation is used up: poll until it renews."""


@dataclass(frozen=True)
class Credentials:
    token: str
    instance_url: str
    tenant_id: str

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (
            ("accesstoken", self.token),
            ("instanceurl", self.instance_url),
            ("tenantid", self.tenant_id),
        )


def tenant_id(identity_url: str | None, token: str) -> str:
    """The org id: from the OAuth answer's identity URL (``.../id/<org>/<user>``), else from a
    session token, whose part before ``!`` is the 15-character org id."""
    if identity_url:
        parts = identity_url.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-3:-2] == ["id"]:
            return normalize_id(parts[-2])
    org, bang, _ = token.partition("!")
    if bang:
        return normalize_id(org)
    raise AuthError("cannot tell the org id for the Pub/Sub API", system=SYSTEM)


def translate(exc: grpc.RpcError) -> Exception:
    """A gRPC failure as dialsync's error (the custom error code decides where it can)."""
    code = exc.code() if isinstance(exc, grpc.Call) else None
    trailers = dict(exc.trailing_metadata() or ()) if isinstance(exc, grpc.Call) else {}
    error_code = str(trailers.get("error-code") or "") or None
    details = (exc.details() if isinstance(exc, grpc.Call) else None) or ""
    name = code.name if code is not None else "UNKNOWN"
    message = f"Pub/Sub API {name}: {details[:300]}"
    if error_code and "replayid" in error_code:
        return ReplayRefused(message, system=SYSTEM, code=error_code)
    if code is grpc.StatusCode.UNAUTHENTICATED or (error_code and "auth" in error_code):
        return AuthError(message, system=SYSTEM, status=401, code=error_code)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED or (error_code and "limit" in error_code):
        return AllocationExceeded(message, system=SYSTEM, code=error_code)
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND):
        return TerminalError(message, system=SYSTEM, code=error_code)
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return TerminalError(message, system=SYSTEM, code=error_code)
    return TransientError(message, system=SYSTEM, code=error_code)


class PubSubClient:
    def __init__(self, endpoint: str, *, ca_file: Path | None = None) -> None:
        roots = ca_file.read_bytes() if ca_file is not None else None
        self.endpoint = endpoint
        self.channel = grpc.secure_channel(endpoint, grpc.ssl_channel_credentials(roots))
        self.stub = pb_grpc.PubSubStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def get_schema(self, credentials: Credentials, schema_id: str) -> str:
        try:
            info = self.stub.GetSchema(
                pb.SchemaRequest(schema_id=schema_id),
                metadata=credentials.metadata(),
                timeout=RPC_TIMEOUT,
            )
        except grpc.RpcError as exc:
            raise translate(exc) from None
        return str(info.schema_json)

    def get_topic(self, credentials: Credentials, topic: str) -> Any:
        try:
            return self.stub.GetTopic(
                pb.TopicRequest(topic_name=topic),
                metadata=credentials.metadata(),
                timeout=RPC_TIMEOUT,
            )
        except grpc.RpcError as exc:
            raise translate(exc) from None

    def subscribe(
        self, credentials: Credentials, topic: str, replay_id: bytes | None
    ) -> Subscription:
        first = pb.FetchRequest(
            topic_name=topic,
            replay_preset=pb.CUSTOM if replay_id else pb.LATEST,
            replay_id=replay_id or b"",
            num_requested=MAX_REQUESTED,
        )
        return Subscription(self.stub, credentials, first)


class Subscription:
    """One Subscribe call. ``batches()`` yields the FetchResponses that arrived while the last
    batch was processed, together (so a burst of changes is re-read in one go); ``request(n)``
    asks for n more events (only for what was processed: pull flow control).

    ``live``: the server confirmed the subscription (its headers, or a first FetchResponse, came
    back); ``wait_live`` blocks on a condition, woken by the reading thread, never polling."""

    def __init__(self, stub: pb_grpc.PubSubStub, credentials: Credentials, first: Any) -> None:
        self._requests: queue.Queue[Any] = queue.Queue()
        self._requests.put(first)
        self._responses: queue.Queue[Any] = queue.Queue()
        self._state = threading.Condition()
        self.live = False
        self.over = False  # the call ended (failed, ended by the server, or cancelled)
        self._call = stub.Subscribe(self._outgoing(), metadata=credentials.metadata())
        threading.Thread(target=self._read, name="pubsub-read", daemon=True).start()

    def _outgoing(self) -> Iterator[Any]:
        # Blocks on the queue: cancel() and the end of the call put None, which ends it.
        while (item := self._requests.get()) is not None:
            yield item

    def _read(self) -> None:
        try:
            # The headers: sent when the server put the subscription in place (or, by a server
            # that sends them with the first response, then). A call that failed at once
            # answers with trailers only: not live; its error comes out of the iteration.
            self._call.initial_metadata()
            if not self._call.done():
                self._mark(live=True)
            for response in self._call:
                if not self.live:
                    self._mark(live=True)
                self._responses.put(response)
            self._responses.put(_END)
        except grpc.RpcError as exc:
            self._responses.put(_END if self.over else translate(exc))
        finally:
            self._mark(over=True)
            self._requests.put(None)

    def _mark(self, *, live: bool = False, over: bool = False) -> None:
        with self._state:
            self.live = self.live or live
            self.over = self.over or over
            self._state.notify_all()

    def wait_live(self, timeout: float) -> bool:
        """True once the subscription is confirmed; False after ``timeout`` seconds without,
        or as soon as the call ended without (its responses then raise the reason)."""
        with self._state:
            self._state.wait_for(lambda: self.live or self.over, timeout)
            return self.live

    def request(self, n: int) -> None:
        if n > 0:
            self._requests.put(pb.FetchRequest(num_requested=min(n, MAX_REQUESTED)))

    def batches(self) -> Iterator[list[Any]]:
        """Lists of FetchResponses: the first to arrive and every one queued behind it."""
        while True:
            batch = [self._responses.get()]
            while not _final(batch[-1]):
                try:
                    batch.append(self._responses.get_nowait())
                except queue.Empty:
                    break
            tail = batch[-1]
            if _final(tail):
                if batch[:-1]:
                    yield batch[:-1]
                if isinstance(tail, Exception):
                    raise tail
                return
            yield batch

    def cancel(self) -> None:
        self._mark(over=True)
        self._requests.put(None)
        self._call.cancel()


_END = object()  # the server ended the stream (or we cancelled it)


def _final(item: Any) -> bool:
    return item is _END or isinstance(item, Exception)


CredentialSource = Callable[[bool], Credentials]  # renew=True: fetch a new token
