"""`dialsync run`: the pull, the push and the reconciliation on a timer in one process.

For a laptop or a small install: no Redis, no Celery, no Flower. Its limits: one process (no
scale-out), nothing to watch but its logs and `dialsync status`, and a stop loses at most the
batch in flight (the sync table and the write-ahead marker make that safe).
"""

from __future__ import annotations

import logging
import threading
import time

from dialsync.errors import ConfigError, DialsyncError, LockBusy, operator_fix, summary
from dialsync.preflight import backoff, is_connection_error, wait_for_database
from dialsync.settings import Settings, env_name
from dialsync.stopping import stop_on_signals
from dialsync.store.locks import writer_lock
from dialsync.worker.backoff import log_refusal, refusal_backoff

log = logging.getLogger(__name__)


def run_forever(settings: Settings, *, max_cycles: int | None = None) -> None:
    from dialsync.alerts import Alerts
    from dialsync.wiring import build_engine, build_store

    stop = stop_on_signals("stopping after the current cycle")
    wait_for_database(settings, sleep=stop.wait, stopped=stop.is_set)
    if stop.is_set():
        return
    store = build_store(settings)
    engine = build_engine(settings, store)
    alerts = Alerts(settings, store)
    # With the stream on, the poll is the safety net at its own, longer interval; the normal
    # one applies again if the stream thread ends on an error.
    streaming = start_stream(settings, stop) if settings.stream.enabled else None
    cycle_lock_wait = 60.0 if streaming else 0.0  # a stream batch holds the lock briefly
    cap = settings.sync.retry_max_seconds
    next_reconcile = time.monotonic() + settings.sync.reconcile_seconds
    cycles = outages = refusals = 0
    polling = 0
    try:
        while not stop.is_set():
            started = time.monotonic()
            interval, source = poll_interval(settings, streaming)
            if interval != polling:  # the schedule, said when it starts and when it changes
                log.info("polling every %d s (%s)", interval, source)
                polling = interval
            wait = float(interval)
            try:
                with writer_lock(store.engine, "sync", wait_seconds=cycle_lock_wait):
                    if time.monotonic() >= next_reconcile:
                        engine.reconcile()
                        next_reconcile = time.monotonic() + settings.sync.reconcile_seconds
                    engine.sync()
                if outages or refusals:
                    log.info("cycle succeeded again")
                outages = refusals = 0
            except LockBusy:
                log.info("a sync is running elsewhere on this state database; waiting")
            except ConfigError:
                raise  # a setting is wrong: exit 2 naming it (restarting cannot help)
            except DialsyncError as exc:
                if operator_fix(exc) is not None:  # credentials refused, a list not found
                    refusals += 1
                    wait = refusal_backoff(refusals, interval, cap)
                    log_refusal(log, "cycle", exc, refusals, wait)
                else:
                    log.error("cycle failed, retrying in %ss: %s", interval, exc)
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                outages += 1
                wait = min(float(interval), backoff(outages))
                log.warning(
                    "state database unavailable (%s); retrying in %.0f s (attempt %d)",
                    summary(exc),
                    wait,
                    outages,
                )
            if not outages:  # alerts read the state database: not while it is away
                alerts.check(engine.targets)  # never raises; the webhook is called in a thread
            cycles += 1
            if max_cycles is not None and cycles >= max_cycles:
                return
            stop.wait(max(0.0, wait - (time.monotonic() - started)))
    finally:
        stop.set()
        if streaming is not None:
            streaming.join(timeout=15)
        engine.close()
        alerts.close()


def poll_interval(settings: Settings, streaming: threading.Thread | None) -> tuple[int, str]:
    """Seconds between two cycles, and the setting they come from: the stream's safety-net
    interval while its thread runs, else the normal one."""
    if streaming is not None and streaming.is_alive():
        return settings.stream.poll_interval_seconds, env_name("stream", "poll_interval_seconds")
    return settings.sync.interval_seconds, env_name("sync", "interval_seconds")


def start_stream(settings: Settings, stop: threading.Event) -> threading.Thread:
    """The subscriber in a thread with an engine of its own, pushing in this process."""

    def target() -> None:
        from dialsync.stream.service import run_stream
        from dialsync.wiring import build_engine, build_store

        store = build_store(settings)
        engine = build_engine(settings, store)
        try:
            run_stream(settings, engine, stop, database=store.engine, push=True)
        except Exception as exc:
            log.error("the stream stopped (%s); polling at the normal interval", exc)
        finally:
            engine.close()

    thread = threading.Thread(target=target, name="stream", daemon=True)
    thread.start()
    return thread
