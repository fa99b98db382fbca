"""`dialsync sandbox`: the loopback Salesforce and dialers, for trying every command by hand.

`dialsync sandbox` starts them, prints the environment to export and their URLs, and stays up
until Ctrl-C. `dialsync sandbox contact add|edit|delete|list` change the sandbox org's contacts
while it runs (through its admin endpoints), so a sync has something to carry.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dialsync.clikit import command, emit
from dialsync.errors import ConfigError
from dialsync.settings import Settings

if TYPE_CHECKING:  # httpx is imported by the commands that call: not on every CLI start
    import httpx

HELP = """Start the loopback Salesforce and dialers (Talkdesk, Everbridge, Conga), print the
environment that points dialsync at them, and stay up until Ctrl-C.

\b
Terminal 1:
  dialsync sandbox                      # prints `export DIALSYNC_...` lines and the URLs
Terminal 2: paste those lines, then any command of the README:
  dialsync doctor; dialsync plan; dialsync sync; dialsync status; dialsync errors
\b
Add, edit and delete contacts in the running sandbox (terminal 2, same exports):
  dialsync sandbox contact add --first-name Ada --last-name Lovelace --mobile '+1 415 555 0142'
  dialsync sandbox contact edit 003000000000001AAA --last-name King --do-not-call
  dialsync sandbox contact edit 003000000000001AAA --set Title=CEO --set MailingCountry=France
  dialsync sandbox contact delete 003000000000001AAA      # to the recycle bin, like Salesforce
  dialsync sandbox contact list
then `dialsync sync` (or `dialsync plan` first) carries the change to every dialer.

Everything lives in memory and in a temporary directory, removed when the sandbox stops.
"""


@click.group(invoke_without_command=True, help=HELP)
@click.option("--contacts", type=click.IntRange(0), default=100, show_default=True)
@click.option(
    "--destinations",
    default="talkdesk,everbridge,conga",
    show_default=True,
    help="The dialers to start (comma-separated).",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the export lines to this file (`. FILE` in another shell); kept.",
)
@click.pass_context
def sandbox(ctx: click.Context, contacts: int, destinations: str, env_file: Path | None) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from dialsync.settings import parse_destinations

    try:
        names = parse_destinations(destinations)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--destinations") from None
    try:
        _serve(names, contacts, env_file)
    except KeyboardInterrupt:  # Ctrl-C while it was still starting
        click.echo("# sandbox stopped", err=True)
        sys.exit(130)
    click.echo("# sandbox stopped", err=True)


def _serve(names: tuple[str, ...], contacts: int, env_file: Path | None) -> None:
    from dialsync.sandbox.harness import Sandboxes
    from dialsync.sandbox.pubsub import PubSubSandbox
    from dialsync.sandbox.serve import seed_org, wait_for_stop

    with tempfile.TemporaryDirectory(prefix="dialsync-sandbox-") as tmp:
        box = Sandboxes(Path(tmp), destinations=names)
        with box, PubSubSandbox(box.salesforce, keepalive_seconds=30) as pubsub:
            seed_org(box, contacts)
            # the change feed's endpoint; the stream stays off until DIALSYNC_STREAM__ENABLED
            env = {**box.env(), "DIALSYNC_STREAM__PUBSUB_ENDPOINT": pubsub.endpoint}
            lines = export_lines(env)
            if env_file is not None:
                env_file.write_text("\n".join(lines) + "\n")
            click.echo("# dialsync sandbox: paste these lines in another shell, then try")
            click.echo("# `dialsync doctor`, `dialsync sync`, `dialsync sandbox contact --help`")
            click.echo("\n".join(lines))
            click.echo(f"# Salesforce  {box.salesforce.url} (TLS, CA in DIALSYNC_CA_BUNDLE)")
            click.echo(
                f"# Pub/Sub API {pubsub.endpoint} (change events: export "
                "DIALSYNC_STREAM__ENABLED=true, then `dialsync run`)"
            )
            for name in box.destinations:
                click.echo(f"# {name:<11} {box.sandbox(name).url}")
            if "talkdesk" in box.destinations:
                click.echo(f"# talkdesk record list {box.list_id}")
            click.echo(
                f"# {contacts} contacts seeded; the state DB and certificates live in a "
                "temporary directory removed at the end"
                + (f"; exports also in {env_file}" if env_file else "")
            )
            click.echo("# running: Ctrl-C to stop", nl=True)
            sys.stdout.flush()
            wait_for_stop()


def export_lines(env: dict[str, str]) -> list[str]:
    return [f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())]


@sandbox.group()
def contact() -> None:
    """Add, edit, delete and list contacts of the running sandbox org (needs its exports)."""


def _client(settings: Settings) -> tuple[httpx.Client, str]:
    """An HTTPS client for the sandbox Salesforce named by the exported settings."""
    base = settings.salesforce.login_url.rstrip("/")
    if settings.ca_bundle is None or "127.0.0.1" not in base:
        raise ConfigError(
            "no running sandbox in this environment: start `dialsync sandbox` and paste its "
            "export lines here first",
            setting="DIALSYNC_SALESFORCE__LOGIN_URL",
        )
    if not settings.ca_bundle.is_file():  # removed when that sandbox stopped
        raise ConfigError(
            f"the sandbox's CA file {settings.ca_bundle} is gone: is `dialsync sandbox` still "
            "running? Start it and paste its new export lines",
            setting="DIALSYNC_CA_BUNDLE",
        )
    import ssl

    import httpx

    verify = ssl.create_default_context(cafile=str(settings.ca_bundle))
    return httpx.Client(verify=verify, timeout=10), f"{base}/_sandbox/contacts"


def _call(settings: Settings, method: str, path: str = "", **kw: Any) -> httpx.Response:
    import httpx

    client, url = _client(settings)
    try:
        response = client.request(method, url + path, **kw)
    except httpx.TransportError as exc:
        raise ConfigError(
            f"the sandbox at {url} does not answer ({exc.__class__.__name__}): is "
            "`dialsync sandbox` still running?",
            setting="DIALSYNC_SALESFORCE__LOGIN_URL",
        ) from None
    finally:
        client.close()
    if response.status_code == 404:
        raise click.ClickException(f"no such contact: {path.strip('/')}")
    if response.status_code >= 400:
        raise click.ClickException(f"the sandbox refused it: {response.text[:300]}")
    return response


def _fields(
    first_name: str | None,
    last_name: str | None,
    mobile: str | None,
    phone: str | None,
    email: str | None,
    country: str | None,
    do_not_call: bool | None,
    sets: tuple[str, ...],
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in (
        ("FirstName", first_name),
        ("LastName", last_name),
        ("MobilePhone", mobile),
        ("Phone", phone),
        ("Email", email),
        ("MailingCountry", country),
        ("DoNotCall", do_not_call),
    ):
        if value is not None:
            fields[name] = value
    for item in sets:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: give FIELD=VALUE", param_hint="--set")
        fields[name] = value if value != "" else None
    return fields


def _field_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option("--first-name"),
            click.option("--last-name"),
            click.option("--mobile", help="MobilePhone, e.g. '+1 415 555 0142'."),
            click.option("--phone", help="Phone (office)."),
            click.option("--email"),
            click.option("--country", help="MailingCountry (a name or an ISO code)."),
            click.option(
                "--do-not-call/--callable",
                default=None,
                help="DoNotCall: the contact must not be in any dialer list.",
            ),
            click.option(
                "--set",
                "sets",
                multiple=True,
                metavar="FIELD=VALUE",
                help="Any other Contact field (Title=CEO); empty VALUE clears it. Repeat.",
            ),
        ]
    ):
        fn = option(fn)
    return fn


@contact.command("add")
@_field_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@command
def contact_add(settings: Settings, as_json: bool, **given: Any) -> None:
    """Create a contact (LastName is required, as in Salesforce); prints its Id."""
    fields = _fields(**given)
    if not fields.get("LastName"):
        raise click.UsageError("give --last-name (Salesforce requires it)")
    found = _call(settings, "POST", json=fields).json()
    new = found["ids"][0]
    emit({"id": new}, as_json, lambda: click.echo(f"created contact {new}"))


@contact.command("edit")
@click.argument("contact_id")
@_field_options
@command
def contact_edit(settings: Settings, contact_id: str, **given: Any) -> None:
    """Change fields of a contact (its SystemModstamp moves, as in Salesforce)."""
    fields = _fields(**given)
    if not fields:
        raise click.UsageError("give at least one field to change (see --help)")
    _call(settings, "PATCH", f"/{contact_id}", json=fields)
    click.echo(f"updated contact {contact_id}: {', '.join(sorted(fields))}")


@contact.command("delete")
@click.argument("contact_id")
@click.option("--hard", is_flag=True, help="Empty it from the recycle bin too (a hard delete).")
@command
def contact_delete(settings: Settings, contact_id: str, hard: bool) -> None:
    """Delete a contact (to the recycle bin; --hard for a hard delete)."""
    _call(settings, "DELETE", f"/{contact_id}", params={"hard": "true"} if hard else None)
    click.echo(f"deleted contact {contact_id}" + (" (hard)" if hard else ""))


@contact.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@command
def contact_list(settings: Settings, as_json: bool) -> None:
    """The live contacts of the sandbox org: Id, name, mobile, DoNotCall."""
    rows = _call(settings, "GET").json()

    def human() -> None:
        for row in rows:
            flag = "  DoNotCall" if row.get("DoNotCall") else ""
            name = f"{row.get('FirstName') or ''} {row.get('LastName') or ''}".strip()
            click.echo(f"{row['Id']}  {name:<30} {row.get('MobilePhone') or '-'}{flag}")
        click.echo(f"{len(rows)} contacts")

    emit({"contacts": rows}, as_json, human)
