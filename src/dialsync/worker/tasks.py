"""Celery tasks: doors into the SyncEngine, not rooms. Each takes ids or a small dict and
returns a small dict; the state lives in the database, so a lost, repeated or redelivered
message changes nothing."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from dialsync.engine import RunReport
from dialsync.errors import LockBusy
from dialsync.salesforce_ids import normalize_id
from dialsync.settings import load_settings
from dialsync.worker import runtime
from dialsync.worker.celery_app import app

log = logging.getLogger(__name__)
_settings = load_settings()
PULL_LIMIT = _settings.sync.pull_time_limit_seconds
PUSH_LIMIT = _settings.sync.push_time_limit_seconds


def _summary(report: RunReport) -> dict[str, Any]:
    """What Flower shows as the task's result: the run and its counts, never arguments."""
    return {"run_id": report.run_id, **report.as_dict(), "failed": report.failed}


def _fan_out() -> int:
    """Enough push tasks for what is due, at most push_parallelism; the rows are claimed, so
    extra tasks simply find nothing."""
    due = runtime.engine().due()
    count = min(runtime.settings().sync.push_parallelism, math.ceil(due / 100))
    for _ in range(count):
        push.delay()
    return count


@app.task(
    name="dialsync.pull",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=PULL_LIMIT,
    time_limit=PULL_LIMIT + 60,
)
def pull(full: bool = False) -> dict[str, Any]:
    try:
        with runtime.pull_guard():
            report = runtime.engine().pull(full=bool(full))
    except LockBusy:
        return {"skipped": "another pull is running"}
    except SoftTimeLimitExceeded:
        log.warning("pull stopped at its time limit; the cursor holds what is durable")
        return {"stopped": "time limit", "pushes": _fan_out()}
    return {**_summary(report), "pushes": _fan_out()}


@app.task(
    name="dialsync.push",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=PUSH_LIMIT,
    time_limit=PUSH_LIMIT + 60,
)
def push() -> dict[str, Any]:
    # Stop taking new batches well before the soft limit: a batch is never cut in half.
    deadline = time.monotonic() + PUSH_LIMIT * 0.6
    report = runtime.engine().push(deadline=deadline)
    more = runtime.engine().due() if time.monotonic() >= deadline else 0
    if more:
        push.delay()
    return _summary(report)


@app.task(
    name="dialsync.resync",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=PULL_LIMIT,
    time_limit=PULL_LIMIT + 60,
)
def resync(all: bool = False, contact_ids: list[str] | None = None) -> dict[str, Any]:
    """Re-read contacts and resend them: ``all=True`` or a list of Contact Ids."""
    try:
        ids = [normalize_id(str(i)) for i in (contact_ids or [])]
    except ValueError as exc:
        return {"refused": str(exc)}  # never retried: a bad id stays bad
    if bool(all) == bool(ids):
        return {"refused": "give all=true or contact_ids"}
    try:
        with runtime.pull_guard():
            engine = runtime.engine()
            report = engine.sync(force=True) if all else engine.resync(ids)
    except LockBusy:
        # A pull is running: try again shortly rather than drop the operator's request.
        raise resync.retry(countdown=10, max_retries=60) from None
    return _summary(report)


@app.task(
    name="dialsync.reconcile",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=PULL_LIMIT,
    time_limit=PULL_LIMIT + 60,
)
def reconcile() -> dict[str, Any]:
    try:
        with runtime.pull_guard():
            report = runtime.engine().reconcile()
    except LockBusy:
        return {"skipped": "a pull is running; the next schedule reconciles"}
    return _summary(report)
