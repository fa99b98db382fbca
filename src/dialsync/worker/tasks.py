"""Celery tasks: doors into the SyncEngine, not rooms. Each takes ids or a small dict and
returns a small dict; the state lives in the database, so a lost, repeated or redelivered
message changes nothing. Their defaults (late acks, time limits) are set once, from the
settings, in celery_app.configure."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from redis.exceptions import RedisError

from dialsync.engine import RunReport, SyncEngine
from dialsync.errors import DialsyncError, LockBusy, Refused, operator_fix, summary
from dialsync.preflight import is_connection_error
from dialsync.salesforce_ids import normalize_id
from dialsync.settings import Settings
from dialsync.worker import runtime
from dialsync.worker.backoff import log_refusal, refusal_backoff
from dialsync.worker.celery_app import app

log = logging.getLogger(__name__)


def _summary(report: RunReport) -> dict[str, Any]:
    """What Flower shows as the task's result: the run and its counts, never arguments."""
    return {"run_id": report.run_id, **report.as_dict(), "failed": report.failed}


def fan_out(engine: SyncEngine, settings: Settings) -> int:
    """Enough push tasks for what is due, at most push_parallelism; the rows are claimed, so
    extra tasks simply find nothing. After a pull, and after the stream recorded changes."""
    due = engine.due()
    count = min(settings.sync.push_parallelism, math.ceil(due / 100))
    for _ in range(count):
        push.delay()
    return count


def _fan_out() -> int:
    return fan_out(runtime.engine(), runtime.settings())


@app.task(name="dialsync.pull")
def pull(full: bool = False) -> dict[str, Any]:
    held = backing_off()
    if held:
        return {"skipped": held}
    try:
        with runtime.pull_guard():
            report = runtime.engine().pull(full=bool(full))
    except LockBusy:
        return {"skipped": "another pull is running"}
    except SoftTimeLimitExceeded:
        log.warning("pull stopped at its time limit; the cursor holds what is durable")
        return {"stopped": "time limit", "pushes": _fan_out()}
    except DialsyncError as exc:
        if operator_fix(exc) is not None:  # a setting or credential: nothing changes alone
            back_off(exc)
        raise
    except Exception as exc:
        if is_connection_error(exc):
            return _unavailable("pull", exc)
        raise
    if report.failed:
        refused = [e for e in runtime.engine().failed.values() if operator_fix(e) is not None]
        if refused and len(refused) == len(runtime.engine().destinations):
            back_off(refused[0])
    else:
        recovered()
    return {**_summary(report), "pushes": _fan_out()}


# Credential refusals in a row, and the pause they impose on every worker's pulls, in Redis.
_REFUSALS, _PAUSED = "dialsync:refusals:pull", "dialsync:paused:pull"


def backing_off() -> str | None:
    """Why the pull is paused after credential refusals, or None."""
    client = runtime.redis_client()
    if client is None:
        return None
    try:
        left = int(client.pttl(_PAUSED))
    except RedisError:
        return None
    if left <= 0:
        return None
    return f"credentials were refused: backing off, next attempt in {left / 1000:.0f} s"


def back_off(exc: DialsyncError) -> None:
    """A credential was refused: pause pulls for 2x, 4x, 8x ... the interval (capped at
    DIALSYNC_SYNC__RETRY_MAX_SECONDS) instead of asking again every interval."""
    client = runtime.redis_client()
    sync = runtime.settings().sync
    if client is None:
        return
    try:
        refusals = int(client.incr(_REFUSALS))
        wait = refusal_backoff(refusals, sync.interval_seconds, sync.retry_max_seconds)
        client.expire(_REFUSALS, int(wait * 4) + 60)
        client.set(_PAUSED, "1", px=int(wait * 1000))
    except RedisError:
        return
    log_refusal(log, "pull", exc, refusals, wait)


def recovered() -> None:
    client = runtime.redis_client()
    if client is not None:
        with contextlib.suppress(RedisError):
            client.delete(_REFUSALS, _PAUSED)


def _unavailable(task: str, exc: BaseException) -> dict[str, Any]:
    """The state database or Redis is down: transient. One warning line; beat's next
    messages try again, and the sync table still holds every row's state."""
    log.warning(
        "%s: state database or broker unavailable (%s); the next schedule retries",
        task,
        summary(exc),
    )
    return {"skipped": f"unavailable: {exc.__class__.__name__}"}


@app.task(name="dialsync.push")
def push() -> dict[str, Any]:
    # Stop taking new batches well before the soft limit: a batch is never cut in half.
    deadline = time.monotonic() + runtime.settings().sync.push_time_limit_seconds * 0.6
    try:
        report = runtime.engine().push(deadline=deadline)
        more = runtime.engine().due() if time.monotonic() >= deadline else 0
    except Exception as exc:
        if is_connection_error(exc):
            return _unavailable("push", exc)
        raise
    if more:
        push.delay()
    return _summary(report)


def _resync_ids(contact_ids: list[str] | str | None) -> list[str]:
    """The Ids of a resync request: a list, or one string of Ids separated by commas or
    spaces (what one types into Flower). Refused, naming the bad one, if any is malformed."""
    raw = contact_ids.replace(",", " ").split() if isinstance(contact_ids, str) else contact_ids
    ids = []
    for value in raw or []:
        try:
            ids.append(normalize_id(value))
        except ValueError as exc:
            raise Refused(f"refused: {value!r}: {exc}", system="resync") from None
    return ids


@app.task(
    name="dialsync.resync",
    # The operator asked for it and may wait for it (`resync --wait`, Flower's task result).
    ignore_result=False,
    # A refusal is the request's fault: a FAILURE with its reason, no traceback in the log.
    throws=(Refused,),
)
def resync(all: bool | str = False, contact_ids: list[str] | str | None = None) -> dict[str, Any]:
    """Re-read contacts and resend them: ``all=True`` or a list of Contact Ids.

    A malformed id fails the task (state FAILURE, the reason as its result; never retried:
    a bad id stays bad). Ids Salesforce does not know are listed in ``not_in_salesforce``.
    """
    every = all.strip().lower() in ("1", "true", "yes") if isinstance(all, str) else bool(all)
    ids = _resync_ids(contact_ids)
    if every == bool(ids):
        raise Refused("refused: give all=true or contact_ids, not both", system="resync")
    try:
        with runtime.pull_guard():
            engine = runtime.engine()
            report = engine.sync(force=True) if every else engine.resync(ids)
    except LockBusy:
        # A pull is running: try again shortly rather than drop the operator's request.
        raise resync.retry(countdown=10, max_retries=60) from None
    return {**_summary(report), "not_in_salesforce": report.missing}


@app.task(name="dialsync.reconcile")
def reconcile() -> dict[str, Any]:
    try:
        with runtime.pull_guard():
            report = runtime.engine().reconcile()
    except LockBusy:
        return {"skipped": "a pull is running; the next schedule reconciles"}
    except Exception as exc:
        if is_connection_error(exc):
            return _unavailable("reconcile", exc)
        raise
    return _summary(report)


@app.task(name="dialsync.alerts")
def alerts() -> dict[str, Any]:
    """Evaluate the alert conditions and send what is owed (beat, every interval)."""
    from dialsync.alerts import Alerts

    engine = runtime.engine()
    checker = Alerts(runtime.settings(), runtime.store())
    findings = checker.check(engine.targets)
    checker.close(timeout=30)
    return {"firing": sorted(f.key for f in findings if f.firing)}
