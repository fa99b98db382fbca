"""`dialsync resync` with a broker: queue the task, say where to follow it, optionally wait
for its result (kept in Redis for a day; Flower's /api/task/result reads the same). Also what
both resync paths, queued and inline, say about Ids Salesforce does not know.

cli.py imports this module; nothing here imports cli.py, so both import at the top."""

from __future__ import annotations

import sys
from typing import Any

import click

from dialsync.clikit import emit
from dialsync.logs import redact
from dialsync.settings import Settings


def follow_hint(settings: Settings, task_id: str) -> str:
    """Where to follow a task: Flower's page for it when Flower is configured."""
    flower = settings.flower
    if flower.url or flower.user:
        return f"follow it in Flower: {flower.public_url}/task/{task_id}"
    return "follow it in Flower (set DIALSYNC_FLOWER__URL to have its address printed here)"


def queue_resync(
    settings: Settings, all_: bool, ids: list[str], *, wait: float, as_json: bool
) -> None:
    from celery.exceptions import TimeoutError as CeleryTimeout

    from dialsync.worker.runtime import celery_app

    result = celery_app(settings).send_task(
        "dialsync.resync", kwargs={"all": all_, "contact_ids": ids}
    )
    hint = follow_hint(settings, result.id)
    if wait <= 0:
        emit(
            {"queued": result.id},
            as_json,
            lambda: click.echo(f"resync queued as task {result.id}; {hint}"),
        )
        return
    if not as_json:
        click.echo(f"resync queued as task {result.id}; waiting up to {wait:g} s ({hint})")
    try:
        outcome = result.get(timeout=wait, propagate=False)
    except CeleryTimeout:
        click.echo(
            f"error: resync task {result.id} has not finished after {wait:g} s; {hint}", err=True
        )
        sys.exit(1)
    if result.state != "SUCCESS" or not isinstance(outcome, dict):
        click.echo(
            f"error: resync task {result.id} {result.state}: {redact(str(outcome))}", err=True
        )
        sys.exit(1)
    data: dict[str, Any] = {"queued": result.id, **outcome}
    emit(
        data,
        as_json,
        lambda: click.echo(
            "resync finished: "
            + ", ".join(f"{k} {v}" for k, v in outcome.items() if isinstance(v, int))
        ),
    )
    failed = outcome.get("failed") or {}
    for name, reason in failed.items():
        click.echo(f"error: {name}: {redact(str(reason))}", err=True)
    report_unknown_ids(list(outcome.get("not_in_salesforce") or []))
    if failed:
        sys.exit(1)


def report_unknown_ids(missing: list[str]) -> None:
    """Ids Salesforce does not know: a typo, or a contact since deleted. Exit 1 naming them."""
    if missing:
        click.echo(
            f"error: not in Salesforce (no such contact, or deleted): {', '.join(missing)}",
            err=True,
        )
        sys.exit(1)
