"""The Salesforce access token for each way of signing in: a fixed session, the client
credentials flow, or the JWT bearer flow (reference/salesforce.md). The source asks for one
when it connects and again when a session expires."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import jwt
import requests

from dialsync import oauth
from dialsync.errors import ConfigError
from dialsync.settings import SalesforceSettings, env_name

SYSTEM = "salesforce"


@dataclass(frozen=True)
class Grant:
    token: str
    instance_url: str
    identity_url: str | None  # the answer's `id`: .../id/<org id>/<user id>; None for a session


def fetch_token(
    s: SalesforceSettings, session: requests.Session, clock: Callable[[], datetime]
) -> tuple[str, str]:
    """(access token, instance URL) for the configured sign-in."""
    grant = fetch_grant(s, session, clock)
    return grant.token, grant.instance_url


def fetch_grant(
    s: SalesforceSettings, session: requests.Session, clock: Callable[[], datetime]
) -> Grant:
    """The token answer for the configured sign-in (the Pub/Sub API also needs its `id`)."""
    mode = s.auth_mode()
    if mode == "session":
        assert s.access_token is not None and s.instance_url
        return Grant(s.access_token.get_secret_value(), s.instance_url, None)
    url = f"{s.login_url}/services/oauth2/token"
    if mode == "client_credentials":
        assert s.client_secret is not None
        data = {
            "grant_type": "client_credentials",
            "client_id": str(s.client_id),
            "client_secret": s.client_secret.get_secret_value(),
        }
    else:
        data = {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt_assertion(s, clock),
        }
    try:
        response = session.post(url, data=data)
    except requests.RequestException as exc:
        raise oauth.unreachable(exc, url, SYSTEM) from None
    body = oauth.token_body(response, url, SYSTEM, reason=response.reason)
    identity = body.get("id")
    return Grant(
        str(body["access_token"]),
        str(body.get("instance_url") or s.login_url),
        str(identity) if identity else None,
    )


def jwt_assertion(s: SalesforceSettings, clock: Callable[[], datetime]) -> str:
    assert s.private_key_file is not None
    try:
        key = s.private_key_file.read_bytes()
    except OSError as exc:
        name = env_name("salesforce", "private_key_file")
        raise ConfigError(
            f"{name}: cannot read {s.private_key_file}: {exc.strerror}", setting=name
        ) from None
    now = int(clock().timestamp())
    claims = {"iss": s.client_id, "sub": s.username, "aud": s.login_url, "exp": now + 180}
    try:
        return jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError) as exc:
        name = env_name("salesforce", "private_key_file")
        raise ConfigError(f"{name} is not a usable RSA private key: {exc}", setting=name) from None
