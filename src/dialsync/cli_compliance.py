"""`dialsync history` and `dialsync compliance report`: the evidence of what happened to a
contact, and when each opt-out left every dialer list (see README, "Compliance")."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from dialsync.clikit import command, json_default
from dialsync.settings import Settings


@click.command()
@click.option("--contact", "contact", required=True, metavar="ID", help="A Contact Id (15 or 18).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of events.")
@command
def history(settings: Settings, contact: str, as_json: bool) -> None:
    """A contact's history, oldest first: changes pulled (field names, not values), decisions
    and why, records sent and the dialers' answers, removals confirmed by a list scan.

    Exit 0 (an unknown contact has no events), 2 when the Id is malformed."""
    from dialsync.salesforce_ids import normalize_id
    from dialsync.store.history import for_contact
    from dialsync.wiring import build_store

    try:
        contact_id = normalize_id(contact)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--contact") from None
    events = for_contact(build_store(settings), contact_id)
    if as_json:
        click.echo(json.dumps(events, default=json_default, sort_keys=True))
        return
    if not events:
        click.echo(f"no history for contact {contact_id}")
    for e in events:
        click.echo(_line(e))


def _line(event: dict[str, Any]) -> str:
    what = event["event"] + (f" {event['outcome']}" if event["outcome"] else "")
    if event["reason"]:
        what += f" ({event['reason']})"
    detail = event["detail"]
    if "fields" in detail:
        what += f" fields: {', '.join(detail['fields']) or '-'}"
    if "op" in detail:
        what += f" to {detail['op']}"
    if event["stamp"] is not None:
        what += f" SystemModstamp {event['stamp'].isoformat()}"
    run = f" run {event['run_id']}" if event["run_id"] is not None else ""
    return f"{event['at'].isoformat()}  {event['destination']}:{event['list_id']}  {what}{run}"


@click.group()
def compliance() -> None:
    """Opt-out evidence for a compliance officer."""


def _since(_ctx: click.Context, _param: click.Parameter, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD, or an ISO 8601 time)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@compliance.command("report")
@click.option(
    "--since",
    required=True,
    metavar="DATE",
    callback=_since,
    help="Opt-outs decided or removed from this date (UTC; YYYY-MM-DD or ISO 8601). Pending "
    "ones are always listed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV, one line per destination list.")
@command
def report(settings: Settings, since: datetime, as_json: bool, as_csv: bool) -> None:
    """Each opt-out (DoNotCall, deleted, no phone, out of scope) with its Salesforce stamp and,
    per destination list, when the dialer confirmed its removal or how long it is pending.

    Exit 0 with the report (pending opt-outs included), 2 on a bad argument."""
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    from dialsync.compliance.report import csv_rows, opt_outs
    from dialsync.wiring import build_store

    now = datetime.now(UTC)
    entries = opt_outs(build_store(settings), since, now)
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in entries], sort_keys=True))
    elif as_csv:
        csv.writer(sys.stdout, lineterminator="\n").writerows(csv_rows(entries))
    else:
        _human(entries, since, settings.compliance.opt_out_seconds)


def _human(entries: list[Any], since: datetime, threshold: int) -> None:
    pending = [e for e in entries if e.pending]
    click.echo(f"opt-outs since {since.isoformat()}: {len(entries)} listed, {len(pending)} pending")
    for e in entries:
        legs = []
        for leg in e.destinations:
            where = f"{leg.destination}:{leg.list_id}"
            if leg.removed_at is not None:
                legs.append(
                    f"{where} removed {leg.removed_at.isoformat()} (+{leg.latency_seconds:g}s)"
                )
            elif leg.pending_seconds is not None:
                late = " LATE" if leg.pending_seconds > threshold else ""
                error = f" (dialer's last error: {leg.last_error})" if leg.last_error else ""
                legs.append(f"{where} PENDING for {leg.pending_seconds:g}s{late}{error}")
            else:
                legs.append(f"{where} gone (no removal event)")
        click.echo(
            f"{e.contact_id} {e.reason} opted out {e.opted_out_at.isoformat()}: " + "; ".join(legs)
        )


def status_latency(store: Any) -> dict[str, Any]:
    """For `dialsync status`: the opt-out latency per destination list (last 30 days)."""
    from dialsync.compliance.report import latency_summary

    return latency_summary(store, datetime.now(UTC))


def status_lines(summary: dict[str, Any]) -> None:
    for name, s in summary.items():
        if s["removed"]:
            text = (
                f"{s['removed']} removed in 30 days, p50 {s['p50_seconds']:g}s,"
                f" p95 {s['p95_seconds']:g}s, max {s['max_seconds']:g}s"
            )
        else:
            text = "none removed in 30 days"
        if s["pending"]:
            text += f"; {s['pending']} pending (oldest {s['oldest_pending_seconds']:g}s)"
        click.echo(f"opt-out latency {name}: {text}")


COMPLIANCE_COMMANDS = (history, compliance)
