"""How each destination connects: one httpx client, an OAuth token from the vendor's token
endpoint, and the retry policy its settings give, shared by the ApiClients it makes."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any, Protocol, TypedDict, Unpack

import httpx

from dialsync import oauth
from dialsync.destinations.http import (
    ApiClient,
    ErrorFields,
    OAuthToken,
    RateLimiter,
    error_fields,
    http_client,
)
from dialsync.retry import RetryPolicy


class DialerSettings(Protocol):
    """What every destination's settings say about its connection (settings.DialerSettings
    and each vendor's API address)."""

    @property
    def api_url(self) -> str: ...

    @property
    def timeout_seconds(self) -> float: ...

    @property
    def max_attempts(self) -> int: ...

    @property
    def max_backoff_seconds(self) -> float: ...


def retry_policy(settings: DialerSettings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.max_attempts, max_backoff_seconds=settings.max_backoff_seconds
    )


def fetch_token(
    client: httpx.Client,
    system: str,
    url: str,
    *,
    data: dict[str, str],
    auth: tuple[str, str] | None = None,  # Basic auth
    token_key: str = "access_token",
) -> tuple[str, float]:
    """POST a token request; (token, expires_in seconds). Never logs the secret."""
    try:
        response = client.post(url, data=data, auth=auth) if auth else client.post(url, data=data)
    except httpx.TransportError as exc:
        raise oauth.unreachable(exc, url, system) from None
    body = oauth.token_body(
        response, url, system, token_key=token_key, reason=response.reason_phrase
    )
    return str(body[token_key]), oauth.expires_in(body)


class Plumbing(TypedDict, total=False):
    """How a destination reaches its system, the same for every one: wiring.py decides it
    (the CA bundle, an observed transport, the shared rate limit), tests pass their own."""

    verify: ssl.SSLContext | bool
    transport: httpx.BaseTransport | None
    limiter: RateLimiter | None  # for the writes: the destination hands it to Connection.api
    sleep: Callable[[float], None] | None


class Connection:
    """What every destination builds from its settings: one HTTP client (closed with the
    destination), its token and its retry policy, shared by the ApiClients ``api`` makes (each
    with its own rate limit and vendor options)."""

    def __init__(
        self,
        settings: DialerSettings,
        system: str,
        token_url: str,
        form: dict[str, str],
        *,
        auth: tuple[str, str] | None = None,  # the token request's Basic auth
        token_key: str = "access_token",
        **plumbing: Unpack[Plumbing],
    ) -> None:
        self.system = system
        self.base_url = settings.api_url
        self.http = http_client(
            settings.timeout_seconds,
            verify=plumbing.get("verify", True),
            transport=plumbing.get("transport"),
        )
        sleep = plumbing.get("sleep")
        self.token = OAuthToken(
            lambda: fetch_token(
                self.http, system, token_url, data=form, auth=auth, token_key=token_key
            )
        )
        self.policy = retry_policy(settings)
        self._timing: dict[str, Any] = {"sleep": sleep} if sleep else {}

    def api(
        self,
        limiter: RateLimiter | None = None,
        *,
        extra_headers: dict[str, str] | None = None,
        request_401: Callable[[str], bool] | None = None,
        read_error: Callable[[httpx.Response], ErrorFields] = error_fields,
    ) -> ApiClient:
        return ApiClient(
            system=self.system,
            base_url=self.base_url,
            client=self.http,
            token=self.token,
            policy=self.policy,
            limiter=limiter,
            extra_headers=extra_headers,
            request_401=request_401,
            read_error=read_error,
            **self._timing,
        )

    def close(self) -> None:
        self.http.close()
