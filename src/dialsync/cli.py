"""The `dialsync` command. A thin door: parse, build the engine, run, print.

Exit codes: 0 the command did its work (rejected records included), 2 a configuration error
(the message names the setting), 1 any other failure, as one line (a traceback with --debug).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from dialsync.cli_resync import queue_resync, report_unknown_ids
from dialsync.clikit import command
from dialsync.clikit import emit as _emit
from dialsync.errors import DialsyncError, LockBusy, operator_fix
from dialsync.logs import redact
from dialsync.settings import Settings
from dialsync.store.protocol import RUN_COUNTERS

if TYPE_CHECKING:
    from dialsync.engine import SyncEngine
    from dialsync.store.database import Database


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dialsync")
def main() -> None:
    """Keep dialer record lists in step with Salesforce Contacts.

    Settings come from DIALSYNC_* environment variables (and a .env file); see the README.
    """


@main.command()
@click.option(
    "--full",
    is_flag=True,
    help="Read every contact, ignoring the cursor, and "
    "remove records whose contact is gone. Unchanged contacts still cost no call.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show the plan (`dialsync plan`): what would change and why; write nothing to the "
    "dialer and do not move the cursor.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the counts as one JSON object on the last line of stdout.",
)
@click.option(
    "--wait",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds to wait for a sync already running to finish; then exit 0 without syncing.",
)
@command
def sync(settings: Settings, full: bool, dry_run: bool, as_json: bool, wait: float) -> None:
    """Run one complete sync cycle in this process (no broker needed)."""
    from dialsync.store.locks import writer_lock
    from dialsync.wiring import build_engine, build_store

    if dry_run:  # the plan: the same engine on a copy of the state, no dialer writes
        from dialsync.cli_ops import show_plan

        show_plan(settings, full=full, as_json=as_json)
        return
    store = build_store(settings)
    # A bar on stderr when it is a terminal, else progress lines in the log.
    engine = build_engine(settings, store, terminal=None if as_json else sys.stderr)
    try:
        try:
            with writer_lock(store.engine, "sync", wait):
                report = engine.sync(full=full)
        except LockBusy:
            click.echo(
                "another dialsync sync is running on this state database; nothing done",
                err=True,
            )
            _emit({"skipped_run": True, **dict.fromkeys(RUN_COUNTERS, 0)}, as_json, lambda: None)
            return
    finally:
        engine.close()
        _check_alerts(settings, store, engine)
    counts = report.as_dict()
    _emit(
        counts,
        as_json,
        lambda: click.echo(
            f"sync finished (run {report.run_id or '-'}): "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
        ),
    )
    _report_failures(engine.failed)
    _report_unsettled(report.unsettled)


def _report_unsettled(unsettled: int) -> None:
    """Records still not as Salesforce wants them (a retry, a create whose answer was lost):
    the run did not converge, so it does not exit 0; the next run retries them."""
    if unsettled:
        click.echo(
            f"error: {unsettled} records are not in their desired state in the dialer yet"
            " (retrying or unconfirmed; see `dialsync errors`): the next run retries them",
            err=True,
        )
        sys.exit(1)


def _check_alerts(settings: Settings, store: Database, engine: SyncEngine) -> None:
    """After the run, failed or not (a cron user has only this): never raises, and waits for
    the webhook a bounded time."""
    from dialsync.alerts import check_after_run

    if isinstance(sys.exc_info()[1], KeyboardInterrupt):
        return  # the operator wants out now, not after a webhook
    check_after_run(settings, store, engine.targets)


def _report_failures(failed: dict[str, DialsyncError]) -> None:
    """Some destinations failed while the others synced: say which; exit 2 when one of them
    needs a setting or a credential fixed (named), else 1."""
    for name, exc in failed.items():
        fix = operator_fix(exc)
        hint = f" (check {fix})" if fix and fix not in str(exc) else ""
        click.echo(f"error: {name}: {redact(str(exc))}{hint}", err=True)
    if failed:
        sys.exit(2 if any(operator_fix(exc) for exc in failed.values()) else 1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@command
def status(settings: Settings, as_json: bool) -> None:
    """Records per state, the cursor and the last run."""
    from dialsync.cli_compliance import status_latency, status_lines
    from dialsync.sources.salesforce import CURSOR
    from dialsync.wiring import build_store

    store = build_store(settings)
    records: dict[str, dict[str, dict[str, int]]] = {}
    for (dest, list_id, state), n in sorted(store.status_counts().items()):
        records.setdefault(dest, {}).setdefault(list_id, {})[state] = n
    cursor = store.get_cursor(CURSOR)
    runs = store.recent_runs(1)
    data = {
        "records": records,
        "cursor": {
            "system_modstamp": cursor.modstamp,
            "last_id": cursor.last_id,
            "deleted_until": cursor.deleted_until,
            "reconciled_at": cursor.reconciled_at,
        },
        "last_run": runs[0] if runs else None,
        "opt_out_latency": (latency := status_latency(store)),
    }

    def human() -> None:
        if not records:
            click.echo("no records yet: run `dialsync sync`")
        for dest, lists in records.items():
            for list_id, states in lists.items():
                click.echo(
                    f"{dest} list {list_id}: " + ", ".join(f"{s} {n}" for s, n in states.items())
                )
        click.echo(
            f"cursor: SystemModstamp {cursor.modstamp or '-'} (Id {cursor.last_id or '-'})"
            f", deletes checked until {cursor.deleted_until or '-'}"
            f", last reconciliation {cursor.reconciled_at or '-'}"
        )
        if runs:
            r = runs[0]
            click.echo(
                f"last run: #{r['id']} {r['kind']} {r['status']} started {r['started_at']}"
                f" finished {r['finished_at'] or '-'}"
                + (f" error: {r['error']}" if r["error"] else "")
            )
        status_lines(latency)

    _emit(data, as_json, human)


@main.command()
@click.option("--all", "all_", is_flag=True, help="Re-read every contact, ignoring the cursor.")
@click.option(
    "--contact",
    "contacts",
    multiple=True,
    metavar="ID",
    help="A Contact Id (15 or 18 characters); repeat for more.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.option(
    "--wait",
    type=float,
    default=None,
    metavar="S",
    help="Queued (a broker is set): wait up to S seconds for the task's result and print it "
    "(default: do not wait). Inline: seconds to wait for a running sync (default 60).",
)
@click.option(
    "--inline",
    is_flag=True,
    help="Run here even when DIALSYNC_BROKER_URL is set (by default the resync is then "
    "queued for the workers).",
)
@command
def resync(
    settings: Settings,
    all_: bool,
    contacts: tuple[str, ...],
    as_json: bool,
    wait: float | None,
    inline: bool,
) -> None:
    """Re-read contacts from Salesforce, forget their hashes and send them again.

    Exit 0 when done (or queued), 1 when Salesforce does not know some of the Ids (listed),
    2 when an Id is malformed or a setting or credential must be fixed."""
    from dialsync.salesforce_ids import normalize_id

    if all_ == bool(contacts):
        raise click.UsageError("give either --all or one or more --contact ID")
    ids: list[str] = []
    for raw in contacts:
        try:
            ids.append(normalize_id(raw))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--contact") from None
    if settings.broker_url and not inline:
        queue_resync(settings, all_, ids, wait=wait or 0.0, as_json=as_json)
        return
    from dialsync.store.locks import writer_lock
    from dialsync.wiring import build_engine, build_store

    store = build_store(settings)
    engine = build_engine(settings, store)
    try:
        with writer_lock(store.engine, "sync", 60.0 if wait is None else wait):
            report = engine.sync(force=True) if all_ else engine.resync(ids)
    finally:
        engine.close()
    _report_failures(engine.failed)
    counts: dict[str, object] = {**report.as_dict(), "not_in_salesforce": report.missing}
    _emit(
        counts,
        as_json,
        lambda: click.echo(
            "resync finished: " + ", ".join(f"{k} {v}" for k, v in report.as_dict().items())
        ),
    )
    report_unknown_ids(report.missing)


@main.group()
def db() -> None:
    """The state database."""


@db.command("upgrade")
@command
def db_upgrade(settings: Settings) -> None:
    """Apply the Alembic migrations (SQLite is also upgraded automatically on first use)."""
    from dialsync.store import migrate
    from dialsync.store.store import open_store

    store = open_store(settings.database_url, auto_migrate=False)
    migrate.upgrade(store.engine)
    click.echo(f"state database at revision {migrate.current_revision(store.engine)}")


@main.command()
@click.option(
    "--contacts",
    type=int,
    default=1000,
    show_default=True,
    help="How many contacts the sandbox org starts with.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to keep the demo's state DB and certificates (default: a temp dir).",
)
@click.option(
    "--destinations",
    default="talkdesk",
    show_default=True,
    callback=lambda _ctx, _param, value: _demo_destinations(value),
    help="Comma-separated: talkdesk, everbridge, conga. All are fed from one pull.",
)
@command
def demo(
    settings: Settings, contacts: int, workdir: str | None, destinations: tuple[str, ...]
) -> None:
    """Run the whole sync against loopback sandboxes: no credentials, nothing to install."""
    from dialsync.sandbox.demo import run_demo

    ok = run_demo(contacts=contacts, workdir=workdir, echo=click.echo, destinations=destinations)
    sys.exit(0 if ok else 1)


def _demo_destinations(value: str) -> tuple[str, ...]:
    from dialsync.settings import parse_destinations

    try:
        return parse_destinations(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _add_commands() -> None:
    from dialsync.cli_compliance import COMPLIANCE_COMMANDS
    from dialsync.cli_ops import COMMANDS
    from dialsync.cli_service import SERVICE_COMMANDS
    from dialsync.cli_stream import STREAM_COMMANDS

    for cmd in (*COMMANDS, *SERVICE_COMMANDS, *STREAM_COMMANDS, *COMPLIANCE_COMMANDS):
        main.add_command(cmd)


_add_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
