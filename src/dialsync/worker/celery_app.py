"""The Celery application, configured from settings: `celery -A dialsync.worker.celery_app:app`."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Celery, Task
from celery.signals import setup_logging, task_failure, worker_init, worker_process_init

from dialsync.errors import DialsyncError, TransientError
from dialsync.settings import Settings
from dialsync.worker import runtime

log = logging.getLogger("dialsync.worker")


def configure(app: Celery, settings: Settings) -> None:
    sync = settings.sync
    app.conf.update(
        broker_url=settings.broker_url or "memory://",
        # Results are kept only for the tasks an operator waits for (resync: ignore_result
        # off), in the broker's Redis, for a day: `resync --wait` and Flower's
        # /api/task/result read them there.
        result_backend=_result_backend(settings.broker_url),
        result_expires=timedelta(days=1),
        task_ignore_result=True,
        # One task at a time per process: a push batch holds rows claimed, don't hoard messages.
        worker_prefetch_multiplier=1,
        # Flower sees queued, started and finished tasks only with events on.
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_track_started=True,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        # A broker outage is transient: retry for as long as it lasts (Celery's default gives
        # up after 100 attempts and the worker exits).
        broker_connection_max_retries=None,
        # Redis re-delivers an unacked message after the visibility timeout; the tasks that ack
        # late are idempotent, and it must exceed the longest task.
        broker_transport_options={"visibility_timeout": sync.pull_time_limit_seconds + 600},
        # Task defaults, set once here rather than on each task: acked after the task ran, so a
        # worker lost mid-task has its message delivered again (every task is idempotent: the
        # state is in the database), and the pull's time limits (pull, resync, reconcile). Push
        # batches and the alert check have their own.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_soft_time_limit=sync.pull_time_limit_seconds,
        task_time_limit=sync.pull_time_limit_seconds + 60,
        task_annotations={
            "dialsync.push": {
                "soft_time_limit": sync.push_time_limit_seconds,
                "time_limit": sync.push_time_limit_seconds + 60,
            },
            # Read-only and sent again next interval: nothing to redeliver.
            "dialsync.alerts": {
                "acks_late": False,
                "reject_on_worker_lost": False,
                "soft_time_limit": 60,
                "time_limit": 90,
            },
        },
        worker_hijack_root_logger=False,
        beat_schedule_filename=str(sync.beat_schedule_file),
        beat_schedule=beat_schedule(settings),
    )


def _result_backend(broker_url: str | None) -> str | None:
    if broker_url and broker_url.startswith(("redis://", "rediss://", "unix://")):
        return broker_url
    return None


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    interval = timedelta(seconds=settings.sync.interval_seconds)
    # With the stream on (`dialsync stream`) the pull is the safety net, at its longer interval;
    # should the stream fall back (allocation exceeded) it polls at the normal one itself.
    poll = (
        timedelta(seconds=settings.stream.poll_interval_seconds)
        if settings.stream.enabled
        else interval
    )
    return {
        "pull": {"task": "dialsync.pull", "schedule": poll},
        # Rows whose retry time has come (and anything a lost push message left behind).
        "push-due": {"task": "dialsync.push", "schedule": interval},
        # Alert conditions read from the state database; the webhook is told of changes only.
        "alerts": {"task": "dialsync.alerts", "schedule": interval},
        "reconcile": {
            "task": "dialsync.reconcile",
            "schedule": timedelta(seconds=settings.sync.reconcile_seconds),
        },
    }


class DialsyncTask(Task):  # type: ignore[misc]
    # dialsync's own errors are expected in operation (a 503, a timeout, a refused credential):
    # Celery then logs no traceback for them; task_failure below logs one line with the reason.
    throws = (DialsyncError,)


def create_app(settings: Settings | None = None) -> Celery:
    app = Celery("dialsync", include=["dialsync.worker.tasks"], task_cls=DialsyncTask)
    configure(app, settings or runtime.settings())
    return app


@setup_logging.connect
def _logging(**_: Any) -> None:
    """Celery's own lines go through dialsync's handler (text or JSON, redacted): connected,
    this signal stops Celery from configuring logging itself."""
    from dialsync import logs

    if not logs.configured():  # started as `celery -A dialsync.worker.celery_app:app ...`
        settings = runtime.settings()
        logs.setup_logging(settings.log_level, settings.log_format)


@task_failure.connect
def _expected_failure(
    sender: Task | None = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    **_: Any,
) -> None:
    """One line for an expected failure; a transient one is a WARNING (the next run retries)."""
    if not isinstance(exception, DialsyncError):
        return  # a bug: Celery logs it with its traceback
    name = getattr(sender, "name", "task")
    transient = isinstance(exception, TransientError)
    log.log(
        logging.WARNING if transient else logging.ERROR,
        "task %s[%s] failed: %s%s",
        name,
        task_id,
        exception,
        " (transient: the next run retries)" if transient else "",
        extra={
            "task_name": name,
            "task_id": task_id,
            "error": type(exception).__name__,
            "system": exception.system or None,
            "status": exception.status,
        },
    )


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """The Prometheus endpoint, in the main process before the pool forks (see metrics.py)."""
    from dialsync import metrics

    metrics.start(runtime.settings())


@worker_init.connect
def _forget_backoff(**_: Any) -> None:
    """A worker (re)started: most likely the settings were just fixed, so the pause that
    credential refusals put on pulls must not outlast the restart (tasks.back_off)."""
    from dialsync.worker import tasks

    tasks.recovered()


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    runtime.after_fork()


app = create_app()
