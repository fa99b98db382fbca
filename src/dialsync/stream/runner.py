"""`dialsync stream`: the one long-running subscriber of an org (a Celery task is the wrong
shape for a stream). A Redis lock makes it exactly one: a second process stands by and takes
over when the first stops or dies (the lock's TTL frees it within 30 s). Contacts are recorded
in the sync table and push tasks send them, as after a pull."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

import redis

from dialsync.errors import ConfigError, LockBusy
from dialsync.settings import Settings, env_name
from dialsync.stopping import stop_on_signals

log = logging.getLogger(__name__)
LOCK = "stream"  # one deployment serves one org: one subscriber per deployment
STANDBY_SECONDS = 5.0  # how often a standing-by process tries the lock


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
    standing_by = False
    try:
        while not stop.is_set():
            try:
                with redis_lock(client, LOCK):
                    log.info("stream: this process is the org's subscriber")
                    run_stream(
                        settings,
                        engine,
                        stop,
                        database=store.engine,
                        push=False,
                        after=lambda: fan_out(engine, settings),
                    )
                    return
            except LockBusy:
                if not standing_by:
                    log.info("stream: another dialsync stream is subscribed; standing by")
                    standing_by = True
                stop.wait(STANDBY_SECONDS)
    finally:
        engine.close()
