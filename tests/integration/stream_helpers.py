"""Helpers for the stream's tests: a Pub/Sub sandbox beside the Salesforce one, the stream
running in a thread against a real engine, and waiting for a condition (never a timing)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dialsync.engine import SyncEngine
from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.pubsub import PubSubSandbox
from dialsync.settings import Settings, StreamSettings
from dialsync.stream.service import StreamMetrics, run_stream
from dialsync.wiring import build_engine, build_store

WAIT = 30.0  # a generous bound for "eventually": a hung stream fails instead of hanging CI


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def stream_settings(box: Sandboxes, pubsub: PubSubSandbox, db_url: str, **kw: Any) -> Settings:
    return box.settings(
        db_url, stream=StreamSettings(enabled=True, pubsub_endpoint=pubsub.endpoint), **kw
    )


class Running:
    def __init__(self, engine: SyncEngine, metrics: StreamMetrics) -> None:
        self.engine = engine
        self.metrics = metrics
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None


def ready(running: Running) -> None:
    """Subscribed, confirmed by the server, and the gap before the subscription covered."""
    wait_for(lambda: running.metrics.ready.is_set(), "the stream is subscribed and caught up")


@contextmanager
def streaming(settings: Settings, *, push: bool = True) -> Iterator[Running]:
    store = build_store(settings)
    engine = build_engine(settings, store)
    running = Running(engine, StreamMetrics())

    def target() -> None:
        try:
            run_stream(
                settings,
                engine,
                running.stop,
                database=store.engine,
                push=push,
                metrics=running.metrics,
            )
        except BaseException as exc:  # the test sees it
            running.error = exc

    running.thread = threading.Thread(target=target, daemon=True)
    running.thread.start()
    try:
        yield running
    finally:
        running.stop.set()
        running.thread.join(timeout=15)
        engine.close()
    if running.error is not None:
        raise running.error
