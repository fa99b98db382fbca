"""The composition root: settings in, a ready SyncEngine out. Nothing else builds clients."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from dialsync.destinations.base import Destination
from dialsync.destinations.http import LocalRateLimiter, RateLimiter
from dialsync.destinations.talkdesk import TalkdeskDestination
from dialsync.engine import EngineOptions, SyncEngine
from dialsync.errors import ConfigError
from dialsync.logs import register_secret
from dialsync.settings import Settings, env_name
from dialsync.sources.salesforce import SalesforceSource
from dialsync.store.store import SyncStore, open_store


@dataclass(frozen=True)
class Tls:
    requests_verify: str | bool
    httpx_verify: ssl.SSLContext | bool


def tls_from(settings: Settings) -> Tls:
    bundle: Path | None = settings.ca_bundle
    if bundle is None:
        return Tls(True, True)
    if not bundle.is_file():
        raise ConfigError(
            f"the CA bundle {bundle} does not exist (set by DIALSYNC_CA_BUNDLE, "
            "REQUESTS_CA_BUNDLE or SSL_CERT_FILE)",
            setting="REQUESTS_CA_BUNDLE",
        )
    return Tls(str(bundle), ssl.create_default_context(cafile=str(bundle)))


def register_secrets(settings: Settings) -> None:
    for secret in (
        settings.salesforce.client_secret,
        settings.salesforce.access_token,
        settings.talkdesk.client_secret,
    ):
        if secret is not None:
            register_secret(secret.get_secret_value())


def build_store(settings: Settings) -> SyncStore:
    return open_store(settings.database_url)


def rate_limiter(name: str, per_second: float | None, client: Any | None) -> RateLimiter:
    """Shared by every worker through Redis when there is one; per process otherwise."""
    if client is not None:
        from dialsync.worker.ratelimit import RedisRateLimiter

        return RedisRateLimiter(client, name, per_second)
    return LocalRateLimiter(per_second)


def build_destinations(
    settings: Settings, tls: Tls, limiter_client: Any | None = None
) -> list[Destination]:
    td = settings.talkdesk
    return [
        TalkdeskDestination(
            td,
            verify=tls.httpx_verify,
            limiter=rate_limiter("talkdesk", td.max_requests_per_second, limiter_client),
        )
    ]


def build_engine(
    settings: Settings, store: SyncStore | None = None, *, limiter_client: Any | None = None
) -> SyncEngine:
    register_secrets(settings)
    settings.salesforce.auth_mode()  # a ConfigError naming the missing setting, before any I/O
    settings.talkdesk.require()
    if settings.mapping.file is not None and not settings.mapping.file.is_file():
        name = env_name("mapping", "file")
        raise ConfigError(f"{name}: no such file {settings.mapping.file}", setting=name)
    tls = tls_from(settings)
    source = SalesforceSource(settings.salesforce, verify=tls.requests_verify)
    options = EngineOptions(
        lookback=timedelta(seconds=settings.salesforce.lookback_seconds),
        scoped=bool(settings.salesforce.soql_where),
        default_region=settings.mapping.default_region,
        priority=settings.mapping.priority,
        retry_base_seconds=settings.sync.retry_base_seconds,
        retry_max_seconds=settings.sync.retry_max_seconds,
    )
    return SyncEngine(
        source=source,
        destinations=build_destinations(settings, tls, limiter_client),
        store=store or build_store(settings),
        options=options,
    )
