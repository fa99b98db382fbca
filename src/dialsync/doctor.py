"""`dialsync doctor`: is everything dialsync needs in place? A checklist, with the fix for each
failure. Reads only: settings, the mapping file, Salesforce, the dialer lists, the database,
the broker. Every check runs even when an earlier one failed, where it can."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import make_url

from dialsync.destinations.base import Bounded, Destination, ResolvesIds
from dialsync.errors import AuthError, ConfigError, DialsyncError, TransientError
from dialsync.logs import redact
from dialsync.mapping.file import MappingFile, MappingFileError, load_mapping_file
from dialsync.settings import Settings, env_name
from dialsync.settings_vars import unknown_variables
from dialsync.stream.doctor import check_stream

Status = Literal["ok", "warn", "fail"]
API_WARN, API_FAIL = 0.80, 0.95  # shares of the org's daily API requests


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


class Checklist:
    def __init__(self) -> None:
        self.checks: list[Check] = []

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> None:
        self.checks.append(Check(name, status, redact(detail), fix))

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)


def run_doctor(load: Callable[[], Settings], *, scan: bool = True) -> Checklist:
    out = Checklist()
    unknown = unknown_variables()
    for var, close in unknown:
        fix = f"rename it to {close}" if close else "remove it (README: Settings lists every one)"
        out.add("unknown variable", "fail", f"{var} is not a known setting", fix)
    try:
        settings = load()
    except ConfigError as exc:
        out.add("settings", "fail", exc.message, f"set {exc.setting or 'it'} (README: Settings)")
        return out
    from dialsync.wiring import register_secrets

    register_secrets(settings)
    out.add(
        "settings",
        "ok",
        f"destinations {', '.join(settings.destination_names)}; state DB {_url(settings)}",
    )
    mapping = _mapping(settings, out)
    steps: list[tuple[str, Callable[[], None]]] = [
        ("salesforce", lambda: _salesforce(settings, mapping, out)),
        ("dialer", lambda: _dialers(settings, mapping, out, scan)),
        ("database", lambda: _database(settings, out)),
        ("broker", lambda: _broker(settings, out)),
        ("stream", lambda: check_stream(settings, out)),
    ]
    for name, step in steps:
        try:
            step()
        except Exception as exc:  # a doctor reports; it must not crash half way
            out.add(name, "fail", f"unexpected {exc.__class__.__name__}: {exc}", "run with --debug")
    return out


def _url(settings: Settings) -> str:
    return make_url(settings.database_url).render_as_string(hide_password=True)


def _mapping(settings: Settings, out: Checklist) -> MappingFile | None:
    path = settings.mapping.file
    if path is None:
        out.add("mapping file", "ok", f"not set ({env_name('mapping', 'file')}): default mapping")
        return None
    try:
        mapping = load_mapping_file(path)
    except MappingFileError as exc:
        detail = "; ".join(str(p) for p in exc.problems)
        out.add("mapping file", "fail", detail, "correct those lines; `dialsync mapping check`")
        return None
    routing = mapping.spec.routing
    out.add(
        "mapping file",
        "ok",
        f"{path}: {len(mapping.spec.fields())} fields"
        + (f", routing by {routing.field}" if routing else ""),
    )
    return mapping


def _salesforce(settings: Settings, mapping: MappingFile | None, out: Checklist) -> None:
    from dialsync.sources.salesforce import SalesforceSource
    from dialsync.wiring import tls_from

    try:
        mode = settings.salesforce.auth_mode()
        source = SalesforceSource(settings.salesforce, verify=tls_from(settings).requests_verify)
    except ConfigError as exc:
        out.add("salesforce auth", "fail", exc.message, f"set {exc.setting}")
        return
    try:
        source.open()
        names = source.describe_fields()
    except AuthError as exc:
        fix = (
            "check DIALSYNC_SALESFORCE__CLIENT_ID and __CLIENT_SECRET (client credentials need "
            "a My Domain login URL and a run-as user on the connected app)"
        )
        out.add("salesforce auth", "fail", str(exc), fix)
        source.close()
        return
    except DialsyncError as exc:
        fix = "check DIALSYNC_SALESFORCE__LOGIN_URL, the network and DIALSYNC_CA_BUNDLE"
        out.add("salesforce auth", "fail", str(exc), fix)
        source.close()
        return
    out.add("salesforce auth", "ok", f"{source.instance_url} ({mode.replace('_', ' ')})")
    try:
        # One small query: the answer carries Sforce-Limit-Info (describe()'s does not reach
        # the client), and SOQL_WHERE, when set, is tried on the org.
        for _ in source.ids(None, scoped=True):
            break
    except DialsyncError as exc:
        out.add("salesforce query", "fail", str(exc), "check DIALSYNC_SALESFORCE__SOQL_WHERE")
    else:
        if settings.salesforce.soql_where:
            out.add("salesforce query", "ok", "DIALSYNC_SALESFORCE__SOQL_WHERE is accepted")
    finally:
        source.close()
    if source.api_usage is None:
        out.add("salesforce API usage", "warn", "the answer carried no Sforce-Limit-Info")
    else:
        used, total = source.api_usage
        share = used / total if total else 1.0
        status: Status = "fail" if share >= API_FAIL else "warn" if share >= API_WARN else "ok"
        out.add(
            "salesforce API usage",
            status,
            f"{used:,} of {total:,} requests in the last 24 h ({share:.1%})",
            ""
            if status == "ok"
            else "sync less often (DIALSYNC_SYNC__INTERVAL_SECONDS), or "
            "ask Salesforce for a higher daily limit",
        )
    if mapping is not None:
        errors, warnings = mapping.check_fields(names)
        if errors:
            detail = "; ".join(str(p) for p in errors)
            out.add("mapping fields", "fail", detail, "name fields this org's Contact has")
        elif warnings:
            out.add("mapping fields", "warn", "; ".join(str(p) for p in warnings))
        else:
            out.add("mapping fields", "ok", f"all {len(mapping.spec.fields())} exist in Contact")


def _dialers(settings: Settings, mapping: MappingFile | None, out: Checklist, scan: bool) -> None:
    from dialsync.wiring import build_destinations, tls_from

    try:
        for section in settings.dialers.values():
            section.require()
        tls = tls_from(settings)
        dests = build_destinations(settings, tls)
        router = mapping.router(settings.talkdesk.record_list_id) if mapping else None
        if router is not None:
            from dialsync.routing import routed_destinations

            dests = routed_destinations(dests, router, tls.httpx_verify)
    except ConfigError as exc:
        out.add("dialer settings", "fail", exc.message, f"set {exc.setting}")
        return
    authed: set[str] = set()
    for dest in dests:
        try:
            _dialer(dest, out, authed, scan)
        finally:
            dest.close()


def _dialer(dest: Destination, out: Checklist, authed: set[str], scan: bool) -> None:
    label = f"{dest.name} list {dest.target}" if dest.name == "talkdesk" else dest.name
    prefix = f"DIALSYNC_{dest.name.upper()}__"
    try:
        info = dest.open()
    except AuthError as exc:
        if dest.name not in authed:  # said once per system, not once per list
            authed.add(dest.name)
            fix = f"check {prefix}CLIENT_ID, __CLIENT_SECRET and __TOKEN_URL"
            if dest.name == "talkdesk":
                fix += " (the OAuth client needs the record-lists:manage scope)"
            out.add(f"{dest.name} auth", "fail", str(exc), fix)
        return
    except TransientError as exc:
        out.add(label, "fail", str(exc), f"check {prefix}API_URL and the network")
        return
    except DialsyncError as exc:
        fix = (
            "create the list in Talkdesk, or correct DIALSYNC_TALKDESK__RECORD_LIST_ID (or the "
            "mapping file's routing)"
            if dest.name == "talkdesk"
            else f"check the {prefix}* settings"
        )
        out.add(label, "fail", str(exc), fix)
        return
    if dest.name not in authed:
        authed.add(dest.name)
        out.add(f"{dest.name} auth", "ok", "credentials accepted")
    _resolved_ids(dest, out)
    name = f"{dest.name} list {info.name}" if dest.name == "talkdesk" else dest.name
    detail = f"{dest.target}: exists"
    if info.records_count is not None:
        detail += f", {_plural(info.records_count, 'record')}"
    if info.unique_identifier_type:
        detail += f", unique by {info.unique_identifier_type}"
    _capacity(dest, name, out)
    if not scan:
        out.add(name, "ok", detail)
        return
    seen = Counter(external_id for external_id, _ in dest.scan())
    twice = {k: n for k, n in seen.items() if n > 1}
    if not twice:
        out.add(name, "ok", f"{detail}; {len(seen):,} of them ours, no duplicates")
        return
    extra = sum(n - 1 for n in twice.values())
    out.add(
        name,
        "warn",
        f"{detail}; {_plural(len(twice), 'contact')} with more than one record ({extra} extra), "
        f"e.g. {next(iter(twice))}",
        "the next reconciliation (DIALSYNC_SYNC__RECONCILE_SECONDS) keeps one record per "
        "contact and removes the others",
    )


def _resolved_ids(dest: Destination, out: Checklist) -> None:
    """Everbridge's batch schema wants numeric ids: show those open() found for the names."""
    if not isinstance(dest, ResolvesIds):
        return
    ids = dest.resolved_ids()
    # "name (pathId:N)": ids written so, the log redactor does not take them for phone numbers
    parts = [f"record type {n} (recordTypeId:{i})" for n, i in ids["record type"].items()]
    parts += [f"path {n} (pathId:{i})" for n, i in sorted(ids["paths"].items())]
    if ids["paths"]:
        out.add(f"{dest.name} ids", "ok", "; ".join(parts))
        return
    out.add(
        f"{dest.name} ids",
        "warn",
        "; ".join(parts) or "record types and contact paths could not be listed: names are sent",
        "let the API user list record types and contact paths, or set "
        f"DIALSYNC_{dest.name.upper()}__RECORD_TYPE_ID and numeric ids in __PATHS",
    )


def _capacity(dest: Destination, name: str, out: Checklist) -> None:
    """A record list holds at most so many records (Talkdesk: 250,000; it warns at 80%).
    Said only past 80%: below, the list's own line is enough."""
    fill = dest.fill() if isinstance(dest, Bounded) else None
    if fill is None:
        return
    fix = (
        "remove records dialsync does not own from the list, narrow "
        "DIALSYNC_SALESFORCE__SOQL_WHERE, or route contacts to another list (the mapping "
        "file's routing)"
    )
    if fill.level == "full":
        out.add(
            f"{name} capacity",
            "fail",
            f"{dest.target}: full, {fill}: new contacts wait in the sync table "
            "(`dialsync errors --json`: LIST_FULL)",
            fix,
        )
    elif fill.level == "warn":
        out.add(
            f"{name} capacity",
            "warn",
            f"{dest.target}: {fill}, past Talkdesk's 80% warning: creates stop at the limit",
            fix,
        )


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' if n != 1 else ''}"


def _database(settings: Settings, out: Checklist) -> None:
    from dialsync.store import migrate
    from dialsync.store.store import open_store

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        out.add("database", "ok", f"{_url(settings)} does not exist yet: the first sync creates it")
        return
    try:
        store = open_store(settings.database_url, auto_migrate=False)
        current = migrate.is_current(store.engine)
    except DialsyncError as exc:
        out.add("database", "fail", str(exc), "check DIALSYNC_DATABASE_URL and the server")
        return
    if not current:
        revision = migrate.current_revision(store.engine) or "empty"
        out.add("database", "fail", f"schema at {revision}", "run `dialsync db upgrade`")
        return
    rows = sum(store.status_counts().values())
    out.add("database", "ok", f"{_url(settings)}: schema current, {rows:,} rows")
    last = store.recent_runs(1)
    if last and last[0]["status"] == "failed":
        run = last[0]
        out.add(
            "last run",
            "warn",
            f"#{run['id']} {run['kind']} failed {_ago(run['finished_at'])}: {run['error']}",
            "see `dialsync runs` and `dialsync errors`",
        )
    store.engine.dispose()


def _ago(when: datetime | None) -> str:
    if when is None:
        return ""
    seconds = int((datetime.now(UTC) - when).total_seconds())
    return f"{seconds // 3600} h ago" if seconds >= 7200 else f"{seconds // 60} min ago"


def _broker(settings: Settings, out: Checklist) -> None:
    url = settings.broker_url
    if not url:
        out.add("broker", "ok", "not set: embedded mode (`dialsync sync`, `dialsync run`)")
        return
    import redis

    shown = make_url(url).render_as_string(hide_password=True) if "://" in url else url
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as exc:
        out.add("broker", "fail", f"{shown}: {exc}", "start Redis, or correct DIALSYNC_BROKER_URL")
        return
    from dialsync.worker.celery_app import app

    replies = app.control.ping(timeout=1.0) or []
    if replies:
        out.add("broker", "ok", f"{shown}: {len(replies)} worker(s) answered")
    else:
        out.add("broker", "warn", f"{shown}: no worker answered", "start `dialsync worker`")


def render(checks: Checklist) -> list[str]:
    marks = {"ok": "[ ok ]", "warn": "[warn]", "fail": "[FAIL]"}
    # A long name (a list id) overflows its own line rather than widen every line.
    width = max((len(c.name) for c in checks.checks if len(c.name) <= 24), default=0)
    lines = []
    for check in checks.checks:
        lines.append(f"{marks[check.status]} {check.name.ljust(width)}  {check.detail}")
        if check.fix:
            lines.append(f"{' ' * 7}{' ' * width}  fix: {check.fix}")
    failed = sum(c.status == "fail" for c in checks.checks)
    warned = sum(c.status == "warn" for c in checks.checks)
    summary = f"{failed} failed, {_plural(warned, 'warning')}"
    lines.append(summary if failed or warned else "all checks passed")
    return lines
