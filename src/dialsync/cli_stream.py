"""`dialsync stream`: the Change Data Capture subscriber as its own long-running process."""

from __future__ import annotations

import click

from dialsync.clikit import command
from dialsync.settings import Settings


@click.command("stream")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve /metrics on this port (default DIALSYNC_METRICS__PORT, 9808).",
)
@command
def stream(settings: Settings, metrics_port: int | None) -> None:
    """Subscribe to Salesforce Change Data Capture (the Pub/Sub API) and record each changed
    contact within seconds; push tasks send them (needs DIALSYNC_BROKER_URL and
    DIALSYNC_STREAM__ENABLED=true).

    Run one or two per deployment: a Redis lock lets exactly one subscribe, the other stands
    by and takes over. Resumes from the last durable replay id after a restart. Checks every
    setting and the database schema first: exit 2 naming what to fix.
    """
    from dialsync.cli_ops import serve_metrics
    from dialsync.preflight import preflight
    from dialsync.stream.runner import require_enabled, run_service

    require_enabled(settings)
    preflight(settings, broker=True)
    serve_metrics(settings, metrics_port)
    run_service(settings)


STREAM_COMMANDS = (stream,)
