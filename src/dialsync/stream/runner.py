"""`dialsync stream`: the one long-running subscriber of an org (a Celery task is the wrong
shape for a stream). A Redis lock makes it exactly one: a second process stands by and takes
over when the first stops (at once: the first says so on a Redis channel) or dies (the lock's
TTL, DIALSYNC_STREAM__TAKEOVER_SECONDS, frees it). Contacts are recorded in the sync table and
push tasks send them, as after a pull."""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import replace
from typing import Any

import redis
from redis.exceptions import RedisError

from dialsync.errors import ConfigError, LockBusy
from dialsync.settings import Settings, env_name
from dialsync.stopping import stop_on_signals

log = logging.getLogger(__name__)
LOCK = "stream"  # one deployment serves one org: one subscriber per deployment
STANDBY_SECONDS = 5.0  # how often a standing-by process tries the lock (a dead holder's TTL)
RELEASED = "dialsync:released:stream"  # the subscriber let the lock go: the standby takes it


def require_enabled(settings: Settings) -> None:
    if not settings.stream.enabled:
        name = env_name("stream", "enabled")
        raise ConfigError(f"{name} is off: set it to true to run the stream", setting=name)


def run_service(settings: Settings, stop: threading.Event | None = None) -> None:
    from dialsync.stream.service import run_stream
    from dialsync.wiring import build_engine, build_store
    from dialsync.worker.redis_lock import redis_lock
    from dialsync.worker.tasks import fan_out

    require_enabled(settings)
    stop = stop or stop_on_signals("stopping the stream")
    assert settings.broker_url is not None  # preflight checked it
    client = redis.Redis.from_url(settings.broker_url, socket_timeout=10, socket_connect_timeout=5)
    store = build_store(settings)
    engine = build_engine(settings, store, limiter_client=client)
    engine.options = replace(engine.options, push_threads=1)  # the push tasks send
    handover = Handover(client, stop)  # listening before the first try: no release missed
    standing_by = False
    try:
        while not stop.is_set():
            try:
                with redis_lock(client, LOCK, ttl=settings.stream.takeover_seconds):
                    log.info("stream: this process is the org's subscriber")
                    try:
                        run_stream(
                            settings,
                            engine,
                            stop,
                            database=store.engine,
                            push=False,
                            after=lambda: fan_out(engine, settings),
                        )
                    finally:
                        handover.leaving()
                return
            except LockBusy:
                if not standing_by:
                    log.info("stream: another dialsync stream is subscribed; standing by")
                    standing_by = True
                handover.wait(STANDBY_SECONDS)
    finally:
        handover.close()
        engine.close()


class Handover:
    """Wakes a standing-by process as soon as the subscriber lets the lock go (it says so on a
    Redis channel once the lock is released) or this process stops. A subscriber that died says
    nothing: its lock's TTL frees it, which only trying again every ``timeout`` can see."""

    def __init__(self, client: redis.Redis, stop: threading.Event) -> None:
        self.client = client
        self._wake = threading.Event()
        self._leaving = False
        self._listener: Any = None
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(**{RELEASED: lambda _message: self._wake.set()})
            # Blocks on the socket between messages (up to 1 s a read, so it can be ended).
            self._listener = pubsub.run_in_thread(
                sleep_time=1.0, daemon=True, exception_handler=self._lost
            )
        except RedisError as exc:
            log.warning("stream: cannot listen for a hand-over (%s); trying the lock", exc)

        def stopped() -> None:
            stop.wait()
            self._wake.set()

        threading.Thread(target=stopped, name="stream-handover", daemon=True).start()

    def _lost(self, exc: BaseException, pubsub: Any, thread: Any) -> None:
        log.warning("stream: hand-over channel lost (%s); trying the lock", exc)
        thread.stop()

    def wait(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()

    def leaving(self) -> None:
        """Called inside the lock's block; the release is announced once the lock is gone."""
        self._leaving = True

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        if self._leaving:  # the lock is released by now: the standby may take it at once
            with contextlib.suppress(RedisError):
                self.client.publish(RELEASED, "released")
