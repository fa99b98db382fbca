"""`dialsync run`: the pull, the push and the reconciliation on a timer in one process.

For a laptop or a small install: no Redis, no Celery, no Flower. Its limits: one process (no
scale-out), nothing to watch but its logs and `dialsync status`, and a stop loses at most the
batch in flight (the sync table and the write-ahead marker make that safe).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from dialsync.errors import ConfigError, DialsyncError, LockBusy
from dialsync.settings import Settings
from dialsync.store.locks import writer_lock

log = logging.getLogger(__name__)


def run_forever(settings: Settings, *, max_cycles: int | None = None) -> None:
    from dialsync.wiring import build_engine, build_store

    store = build_store(settings)
    engine = build_engine(settings, store)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current cycle", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    interval = settings.sync.interval_seconds
    next_reconcile = time.monotonic() + settings.sync.reconcile_seconds
    cycles = 0
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                with writer_lock(store.engine, "sync"):
                    if time.monotonic() >= next_reconcile:
                        engine.reconcile()
                        next_reconcile = time.monotonic() + settings.sync.reconcile_seconds
                    engine.sync()
            except LockBusy:
                log.info("a sync is running elsewhere on this state database; waiting")
            except ConfigError:
                raise
            except DialsyncError as exc:
                log.error("cycle failed, retrying in %ss: %s", interval, exc)
            cycles += 1
            if max_cycles is not None and cycles >= max_cycles:
                return
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
    finally:
        engine.close()
