"""The composition root: settings in, a ready SyncEngine out. Nothing else builds clients."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import httpx

from dialsync.calls import CallHook, ObservedTransport, log_call, requests_hook
from dialsync.destinations.base import Destination
from dialsync.destinations.conga import CongaDestination
from dialsync.destinations.connection import Plumbing
from dialsync.destinations.everbridge import EverbridgeDestination
from dialsync.destinations.http import LocalRateLimiter, RateLimiter
from dialsync.destinations.talkdesk import TalkdeskDestination
from dialsync.engine import EngineOptions, RunReport, SyncEngine
from dialsync.errors import ConfigError
from dialsync.logs import register_secret
from dialsync.progress import Observers, Total
from dialsync.settings import Settings
from dialsync.sources.salesforce import CURSOR, SalesforceSource, TimeoutSession
from dialsync.store.protocol import SyncStore
from dialsync.store.store import SqlSyncStore, open_store


@dataclass(frozen=True)
class Tls:
    requests_verify: str | bool
    httpx_verify: ssl.SSLContext | bool


def tls_from(settings: Settings) -> Tls:
    """One CA bundle for every client, requests and httpx alike (Settings.ca_file: the
    DIALSYNC_CA_BUNDLE setting wins over REQUESTS_CA_BUNDLE and SSL_CERT_FILE)."""
    chosen = settings.ca_file
    if chosen is None:
        return Tls(True, True)
    bundle, name = chosen
    if not bundle.is_file():
        raise ConfigError(f"{name}: the CA bundle {bundle} does not exist", setting=name)
    try:
        context = ssl.create_default_context(cafile=str(bundle))
    except ssl.SSLError as exc:
        raise ConfigError(
            f"{name}: {bundle} holds no usable CA certificate ({exc.reason})", setting=name
        ) from None
    return Tls(str(bundle), context)


def register_secrets(settings: Settings) -> None:
    for secret in (
        settings.salesforce.client_secret,
        settings.salesforce.access_token,
        settings.talkdesk.client_secret,
        settings.everbridge.client_secret,
        settings.everbridge.password,
        settings.conga.client_secret,
    ):
        if secret is not None:
            register_secret(secret.get_secret_value())


def build_store(settings: Settings) -> SqlSyncStore:
    return open_store(settings.database_url)


def rate_limiter(name: str, per_second: float | None, client: Any | None) -> RateLimiter:
    """Shared by every worker through Redis when there is one; per process otherwise."""
    if client is not None:
        from dialsync.worker.ratelimit import RedisRateLimiter

        return RedisRateLimiter(client, name, per_second)
    return LocalRateLimiter(per_second)


def call_hooks() -> list[CallHook]:
    """What every HTTP call reports to: the DEBUG log line, and the metrics when this process
    serves them."""
    from dialsync import metrics

    hooks: list[CallHook] = [log_call]
    if metrics.collecting():
        hooks.append(metrics.count_call)
    return hooks


def observed_transport(
    system: str, tls: Tls, hooks: list[CallHook]
) -> Callable[[], httpx.BaseTransport]:
    """A new transport per client (a client closes its own), reporting each call."""
    return lambda: ObservedTransport(httpx.HTTPTransport(verify=tls.httpx_verify), system, hooks)


def build_destinations(
    settings: Settings,
    tls: Tls,
    limiter_client: Any | None = None,
    hooks: list[CallHook] | None = None,
) -> list[Destination]:
    """One adapter per name in DIALSYNC_DESTINATIONS, each with its own rate limit."""
    built: list[Destination] = []
    hooks = call_hooks() if hooks is None else hooks
    for name in settings.destination_names:
        limiter = rate_limiter(name, requests_per_second(settings, name), limiter_client)
        http: Plumbing = {
            "verify": tls.httpx_verify,
            "transport": observed_transport(name, tls, hooks)(),
            "limiter": limiter,
        }
        if name == "talkdesk":
            built.append(TalkdeskDestination(settings.talkdesk, **http))
        elif name == "everbridge":
            built.append(EverbridgeDestination(settings.everbridge, **http))
        else:
            built.append(CongaDestination(settings.conga, **http))
    return built


def requests_per_second(settings: Settings, name: str) -> float | None:
    """A destination's rate limit; None: unlimited."""
    if name == "everbridge":
        # the limiter paces writes only: Everbridge throttles POST/PUT/PATCH, per minute
        per_minute = settings.everbridge.max_writes_per_minute
        return per_minute / 60.0 if per_minute else None
    section = settings.talkdesk if name == "talkdesk" else settings.conga
    return section.max_requests_per_second


def build_engine(
    settings: Settings,
    store: SqlSyncStore | None = None,
    *,
    limiter_client: Any | None = None,
    terminal: TextIO | None = None,  # a progress bar there when it is a TTY
) -> SyncEngine:
    register_secrets(settings)
    settings.check()  # one ConfigError naming every missing setting, before any I/O
    tls = tls_from(settings)
    hooks = call_hooks()
    session = TimeoutSession(settings.salesforce.timeout_seconds)
    session.hooks["response"].append(requests_hook("salesforce", hooks))
    source = SalesforceSource(settings.salesforce, verify=tls.requests_verify, session=session)
    mapped: dict[str, Any] = {}
    router = None
    # Settings that shape payloads beyond the mapping config: a change of any re-renders every
    # row at the next pull (dialsync.remap).
    payload_settings: dict[str, Any] = {
        "mapping": "default",
        "scope": settings.salesforce.soql_where,
        "lists": None,
    }
    if settings.mapping.file is not None:
        # A mapping file: its mapper, its fields (refused when the org lacks one), and one
        # Talkdesk destination per list it routes to. Read first: an invalid file stops here.
        from dialsync.mapping.file import load_mapping_file
        from dialsync.sources.mapped import MappedSalesforceSource

        mapping = load_mapping_file(settings.mapping.file)
        router = mapping.router(settings.talkdesk.record_list_id)
        source = MappedSalesforceSource(
            settings.salesforce, mapping, verify=tls.requests_verify, session=session
        )
        mapped = {"mapper": mapping.mapper(), "fields": mapping.spec.fields()}
        payload_settings["mapping"] = "file"
        for section, value in mapping.spec.model_dump(mode="json").items():
            payload_settings[f"mapping.{section}"] = value  # so a change names its section
        payload_settings["lists"] = list(router.lists) if router is not None else None
    destinations = build_destinations(settings, tls, limiter_client, hooks)
    if router is not None:
        from dialsync.routing import routed_destinations

        mapped["route"] = router
        destinations = routed_destinations(
            destinations, router, tls.httpx_verify, observed_transport("talkdesk", tls, hooks)
        )
    options = EngineOptions(
        lookback=timedelta(seconds=settings.salesforce.lookback_seconds),
        scoped=bool(settings.salesforce.soql_where),
        default_region=settings.mapping.default_region,
        priority=settings.mapping.priority,
        retry_base_seconds=settings.sync.retry_base_seconds,
        retry_max_seconds=settings.sync.retry_max_seconds,
        payload_settings=payload_settings,
        **mapped,
    )
    state = store or build_store(settings)
    engine = SyncEngine(source=source, destinations=destinations, store=state, options=options)
    engine.observer = observers(settings, engine, contacts_to_read(source, state), terminal)
    return engine


def contacts_to_read(source: SalesforceSource, store: SyncStore) -> Total:
    """The whole of a run that reads every contact (an initial load, a full sync), counted
    with one SELECT COUNT(); None for an incremental run (its window is small)."""

    def total(report: RunReport) -> int | None:
        everything = report.kind == "full" or (
            report.kind in ("sync", "pull", "plan") and store.get_cursor(CURSOR).modstamp is None
        )
        return source.count(datetime.now(UTC)) if everything else None

    return total


def observers(
    settings: Settings, engine: SyncEngine, total: Total, terminal: TextIO | None
) -> Observers:
    """Progress (a bar on a terminal, else log lines every SYNC__PROGRESS_SECONDS), the run's
    start and end in the log, and the metrics when this process serves them."""
    from dialsync import metrics
    from dialsync.progress import ProgressLog, terminal_progress

    bar = terminal_progress(engine.due, total=total, stream=terminal) if terminal else None
    every = None if bar else settings.sync.progress_seconds
    found = Observers(ProgressLog(engine.due, total=None if bar else total, every=every), bar)
    if metrics.collecting():  # a worker or `run` serving /metrics: count what this engine does
        found.add(metrics.observer(engine.destinations))
    return found
