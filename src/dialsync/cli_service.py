"""The long-running `dialsync` commands: `worker`, `beat`, `run` and `flower`, each checked
by preflight before it starts, and `health`, their container healthcheck."""

from __future__ import annotations

import sys

import click

from dialsync.clikit import command, emit
from dialsync.errors import ConfigError
from dialsync.logs import redact
from dialsync.settings import Settings, load_settings


@click.command()
@click.option("--concurrency", "-c", type=int, default=None, help="Worker processes.")
@click.option("--queues", "-Q", default=None, help="Queues to consume (default: celery).")
@click.option(
    "--name",
    "-n",
    default=None,
    metavar="NAME",
    help="The worker's node name (NAME@host when NAME has no @); each worker of one host needs "
    "its own. Default: celery@host.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve /metrics on this port (default DIALSYNC_METRICS__PORT, 9808); each worker of one "
    "host needs its own.",
)
@command
def worker(
    settings: Settings,
    concurrency: int | None,
    queues: str | None,
    name: str | None,
    metrics_port: int | None,
) -> None:
    """Run a Celery worker (needs DIALSYNC_BROKER_URL). Scale out by running more.

    Two workers on one host: give each a name and a metrics port, e.g.
    `dialsync worker -n w1 --metrics-port 9808` and `dialsync worker -n w2 --metrics-port 9809`.
    A port already in use stops the worker (exit 2) naming DIALSYNC_METRICS__PORT. Checks
    every setting and the database schema first: exit 2 naming what to fix.
    """
    from dialsync.preflight import preflight

    preflight(settings, broker=True)
    from dialsync.cli_ops import serve_metrics
    from dialsync.worker.runtime import celery_app

    app = celery_app(settings)
    serve_metrics(settings, metrics_port)
    argv = [*_quiet(settings), "worker", f"--loglevel={settings.log_level}"]
    argv += ["--without-gossip", "--without-mingle"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if queues:
        argv.append(f"--queues={queues}")
    if name:
        argv.append(f"--hostname={name if '@' in name else name + '@%h'}")
    app.worker_main(argv)


@click.command()
@command
def beat(settings: Settings) -> None:
    """Run the Celery beat scheduler: one per deployment (an extra one does no harm).

    Checks every setting and the database schema first: exit 2 naming what to fix."""
    from dialsync.preflight import preflight

    preflight(settings, broker=True)
    from dialsync.worker.runtime import celery_app

    app = celery_app(settings)
    app.start(
        [
            *_quiet(settings),
            "beat",
            f"--loglevel={settings.log_level}",
            f"--schedule={settings.sync.beat_schedule_file}",
        ]
    )


@click.command("run")
@click.option("--cycles", type=int, default=None, help="Stop after this many cycles.")
@command
def run_cmd(settings: Settings, cycles: int | None) -> None:
    """Pull, push and reconcile on a timer in this one process: no Redis, no Celery.

    For a laptop or a small install. Limits: one process (no scale-out), no Flower; the
    period is DIALSYNC_SYNC__INTERVAL_SECONDS. Serves the same /metrics as a worker
    (DIALSYNC_METRICS__PORT, 9808; empty for none).
    """
    from dialsync.cli_ops import serve_metrics
    from dialsync.preflight import check_settings
    from dialsync.worker.embedded import run_forever

    # run_forever waits for the state database itself (a stop signal ends that wait): the
    # settings alone are checked here, so the database is not opened and checked twice.
    check_settings(settings, broker=False)
    serve_metrics(settings, None)
    run_forever(settings, max_cycles=cycles)


@click.command()
@click.option("--port", type=int, default=None, help="Default DIALSYNC_FLOWER__PORT (5555).")
@command
def flower(settings: Settings, port: int | None) -> None:
    """Run Flower, the Celery monitor, with basic auth (DIALSYNC_FLOWER__USER/__PASSWORD).

    Refuses a blank password and the placeholders of .env.example (exit 2)."""
    from dialsync.preflight import preflight

    preflight(settings, broker=True, flower=True)
    f = settings.flower
    assert f.user is not None and f.password is not None  # preflight refused them unset
    from dialsync.worker.runtime import celery_app

    app = celery_app(settings)
    app.start(
        [
            "flower",
            f"--port={port or f.port}",
            f"--address={f.address}",
            f"--basic-auth={f.user}:{f.password.get_secret_value()}",
        ]
    )


def _quiet(settings: Settings) -> list[str]:
    """JSON logs: no banner on stdout, every line is a JSON object."""
    return ["--quiet"] if settings.log_format == "json" else []


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def health(as_json: bool) -> None:
    """The container healthcheck: exit 1 (unhealthy) when the state database cannot be read,
    its schema is behind, or the last pull failed because a setting or a credential is wrong;
    exit 0 otherwise (a transient failure is retried, and stays healthy). Reads the state
    database only: no call to Salesforce or a dialer."""
    from dialsync.preflight import Health
    from dialsync.preflight import health as check_health

    try:
        found = check_health(load_settings())
    except ConfigError as exc:
        found = Health(False, f"configuration error: {exc.message}")
    emit(
        found.as_dict(),
        as_json,
        lambda: click.echo(
            ("healthy" if found.healthy else "unhealthy") + ": " + redact(found.detail)
        ),
    )
    sys.exit(0 if found.healthy else 1)


SERVICE_COMMANDS = (worker, beat, run_cmd, flower, health)
