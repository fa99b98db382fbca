"""The operator's commands: plan, runs, preview, mapping check, doctor. Thin doors, like cli.py:
the work is in plan.py, preview.py, doctor.py and mapping/, the words in render.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dialsync.clikit import command, emit
from dialsync.settings import Settings, load_settings

if TYPE_CHECKING:
    from dialsync.engine import Observer, SyncEngine


def serve_metrics(settings: Settings, port: int | None) -> None:
    """/metrics for `worker` and `run`, before any work: a port taken stops the command (exit 2)
    rather than leaving a process nobody can watch."""
    from dialsync import metrics

    if port is not None:
        settings = settings.model_copy(
            update={"metrics": settings.metrics.model_copy(update={"port": port})}
        )
    metrics.start(settings, strict=True)


def show_plan(settings: Settings, *, full: bool, as_json: bool, examples: int = 3) -> None:
    """`plan` and `sync --dry-run`."""
    from dialsync.plan import make_plan
    from dialsync.progress import terminal_progress
    from dialsync.render import plan_lines

    def observe(engine: SyncEngine) -> Observer | None:
        return None if as_json else terminal_progress(engine.due, would=True)

    plan = make_plan(settings, full=full, examples=examples, observe=observe)
    emit(plan.as_dict(), as_json, lambda: click.echo("\n".join(plan_lines(plan))))
    if plan.failed:
        sys.exit(1)


@click.command()
@click.option("--full", is_flag=True, help="Plan a `sync --full`: every contact, any cursor.")
@click.option(
    "--examples",
    type=click.IntRange(0, 50),
    default=3,
    show_default=True,
    help="Example records per category and list.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object; its top-level counts are the ones `sync --json` will print.",
)
@command
def plan(settings: Settings, full: bool, examples: int, as_json: bool) -> None:
    """What a sync would create, update, remove and skip, with reasons and examples.

    Reads Salesforce and the dialer lists as a sync does; writes nothing to the dialer, and
    neither the cursor nor the state database changes. Same as `sync --dry-run`.
    """
    show_plan(settings, full=full, as_json=as_json, examples=examples)


@click.command()
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help="Only runs of this kind (sync, full, pull, push, resync, reconcile); repeat.",
)
@click.option(
    "--each",
    is_flag=True,
    help="One line per run as recorded, pushes included (by default a pull and the pushes "
    "after it are one line, and pushes that sent nothing are not shown).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@command
def runs(settings: Settings, limit: int, kinds: tuple[str, ...], each: bool, as_json: bool) -> None:
    """The last runs: when, how long, the counts, and errors.

    In service mode a pull records what changed and the push tasks it fans out send it: a pull
    is shown as `pull+N` with the counts of its N pushes added.
    """
    from dialsync.render import runs_lines
    from dialsync.wiring import build_store

    store = build_store(settings)
    if each or "push" in kinds:
        found = store.recent_runs(limit, kinds)
    else:
        found = store.runs_with_pushes(limit, kinds)
    for run in [*found, *(p for r in found for p in r.get("pushes", ()))]:
        done = run.get("finished_at")
        run["seconds"] = (done - run["started_at"]).total_seconds() if done else None
    emit({"runs": found}, as_json, lambda: click.echo("\n".join(runs_lines(found))))


def _csv(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.strip() for item in value for part in item.split(",") if part.strip())


@click.command()
@click.option(
    "--reason",
    "reasons",
    multiple=True,
    callback=_csv,
    metavar="CODE",
    help="Only this reason code (PHONE_NUMBER_INVALID, do_not_call ...); repeat.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["rejected", "retrying", "skipped"]),
    help="Only rows in this state; repeat.",
)
@click.option(
    "--destination",
    "destinations",
    multiple=True,
    callback=_csv,
    metavar="NAME[:LIST]",
    help="Only this destination (talkdesk, everbridge, conga), or one Talkdesk list "
    "(talkdesk:LIST_ID); repeat.",
)
@click.option(
    "--limit",
    type=click.IntRange(0, 100_000),
    default=20,
    show_default=True,
    help="Records listed after the summary (0: the summary only).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@command
def errors(
    settings: Settings,
    reasons: tuple[str, ...],
    statuses: tuple[str, ...],
    destinations: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """Rejected and retrying records, and the expected skips, by reason code.

    First the counts by reason: errors (rejected by the dialer, or retrying after a transient
    failure) apart from expected skips (do_not_call, no_valid_phone, ...: contacts that must
    not be called). Then the records, errors first, with their attempts and next attempt.
    """
    from dialsync.render import errors_lines
    from dialsync.store.protocol import ProblemFilter
    from dialsync.wiring import build_store

    store = build_store(settings)
    where = ProblemFilter(reasons, statuses, destinations)
    summary = store.problem_summary(where)
    rows = store.problem_rows(where, limit) if limit else []
    emit(
        {"summary": summary, "records": rows},
        as_json,
        lambda: click.echo("\n".join(errors_lines(summary, rows, limit))),
    )


@click.command()
@click.option(
    "--contact",
    "contact_id",
    required=True,
    metavar="ID",
    help="A Contact Id (15 or 18 characters).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@command
def preview(settings: Settings, contact_id: str, as_json: bool) -> None:
    """One Contact, the record it maps to in each list, and what the next sync does with it."""
    from dialsync.preview import make_preview
    from dialsync.render import preview_lines
    from dialsync.salesforce_ids import normalize_id

    try:
        cid = normalize_id(contact_id)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--contact") from None
    found = make_preview(settings, cid)
    emit(found.as_dict(), as_json, lambda: click.echo("\n".join(preview_lines(found))))
    if not found.found:
        sys.exit(1)


@click.group()
def mapping() -> None:
    """The mapping file (DIALSYNC_MAPPING__FILE)."""


@mapping.command("check")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The file to check (default: DIALSYNC_MAPPING__FILE; neither: the default mapping).",
)
@click.option("--offline", is_flag=True, help="Check the file only, not against the org.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@command
def mapping_check(settings: Settings, path: Path | None, offline: bool, as_json: bool) -> None:
    """Validate a mapping file (or the default mapping), then compare its fields with the org's
    Contact describe(). Every problem is reported in one round; exit 2 when there is one."""
    from dialsync.mapping.file import MappingFile, MappingFileError, check_mapping, default_mapping
    from dialsync.mapping.file_text import Problem
    from dialsync.render import mapping_lines

    path = path or settings.mapping.file
    list_id = settings.talkdesk.record_list_id
    org_fields = None if offline else _org_fields(settings)
    errors: list[Problem] = []
    warnings: list[Problem] = []
    loaded: MappingFile | None
    if path is None:
        loaded = default_mapping()
        if org_fields is not None:
            errors, warnings = loaded.check_fields(org_fields)
    else:
        found = check_mapping(path, list_id, org_fields)
        errors, warnings = found.errors, found.warnings
        loaded = found.mapping
    if errors:
        error = MappingFileError(path or default_mapping().path, errors)
        if not as_json:
            raise error
        emit({"valid": False, "errors": [str(p) for p in errors]}, True, lambda: None)
        sys.exit(2)
    assert loaded is not None
    router = loaded.router(list_id)
    shown = str(path) if path is not None else "the default mapping (DIALSYNC_MAPPING__FILE unset)"
    data = {
        "valid": True,
        "file": str(path) if path is not None else None,
        "fields": list(loaded.spec.fields()),
        "checked_against_org": not offline,
        "warnings": [str(p) for p in warnings],
        "lists": list(router.lists) if router else [],
    }

    def human() -> None:
        click.echo(f"{shown}: valid")
        click.echo("\n".join(mapping_lines(loaded.spec, settings.mapping.priority, list_id)))
        if not offline:
            click.echo("every field it names exists in this org's Contact (describe())")
        for warning in warnings:
            click.echo(f"warning: {warning}")

    emit(data, as_json, human)


def _org_fields(settings: Settings) -> set[str]:
    from dialsync.sources.salesforce import SalesforceSource
    from dialsync.wiring import register_secrets, tls_from

    register_secrets(settings)
    settings.salesforce.auth_mode()
    source = SalesforceSource(settings.salesforce, verify=tls_from(settings).requests_verify)
    try:
        return source.describe_fields()
    finally:
        source.close()


@click.command()
@click.option("--no-scan", is_flag=True, help="Skip reading whole lists for duplicates.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--debug", is_flag=True, help="Log at DEBUG level.")
def doctor(no_scan: bool, as_json: bool, debug: bool) -> None:
    """Check settings, Salesforce, the dialer lists, the database and the broker; print a
    checklist with the fix for each failure. Exit 1 when a check fails."""
    from dialsync.doctor import render, run_doctor
    from dialsync.logs import setup_logging

    # Settings may be what is broken, so they are loaded inside the checklist, not before it.
    setup_logging("DEBUG" if debug else "WARNING")
    checks = run_doctor(load_settings, scan=not no_scan)
    data = {"ok": checks.ok, "checks": [vars(c) for c in checks.checks]}
    emit(data, as_json, lambda: click.echo("\n".join(render(checks))))
    if not checks.ok:
        sys.exit(1)


def _sandbox() -> click.Group:
    from dialsync.cli_sandbox import sandbox

    return sandbox


COMMANDS = (plan, runs, errors, preview, mapping, doctor, _sandbox())
