"""The Celery application, configured from settings: `celery -A dialsync.worker.celery_app:app`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

from dialsync.settings import Settings, load_settings


def configure(app: Celery, settings: Settings) -> None:
    sync = settings.sync
    app.conf.update(
        broker_url=settings.broker_url or "memory://",
        result_backend=None,
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
        # Redis re-delivers an unacked message after the visibility timeout; the tasks that ack
        # late are idempotent, and it must exceed the longest task.
        broker_transport_options={"visibility_timeout": sync.pull_time_limit_seconds + 600},
        worker_hijack_root_logger=False,
        beat_schedule_filename=str(sync.beat_schedule_file),
        beat_schedule=beat_schedule(settings),
    )


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    interval = timedelta(seconds=settings.sync.interval_seconds)
    return {
        "pull": {"task": "dialsync.pull", "schedule": interval},
        # Rows whose retry time has come (and anything a lost push message left behind).
        "push-due": {"task": "dialsync.push", "schedule": interval},
        "reconcile": {
            "task": "dialsync.reconcile",
            "schedule": timedelta(seconds=settings.sync.reconcile_seconds),
        },
    }


def create_app(settings: Settings | None = None) -> Celery:
    app = Celery("dialsync", include=["dialsync.worker.tasks"])
    configure(app, settings or load_settings())
    return app


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """The Prometheus endpoint, in the main process before the pool forks (see metrics.py)."""
    from dialsync import metrics

    metrics.start(load_settings())


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    from dialsync.worker import runtime

    runtime.reset()


app = create_app()
