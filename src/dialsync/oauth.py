"""What a token endpoint's answer means, for every sign-in: Salesforce's (requests, under
simple-salesforce) and the dialers' (httpx). Each edge sends its own request; what its answer,
or its failure to get one, means is decided here once:

* no answer: a certificate problem is a TlsError (terminal), anything else transient;
* 429 or 5xx: transient, a later try may get a token;
* any other 4xx: the credentials were refused (AuthError, with the endpoint's OAuth error);
* a success without the token: transient (a proxy's page, a truncated answer).
"""

from __future__ import annotations

from typing import Any, Protocol

from dialsync.errors import AuthError, DialsyncError, TransientError
from dialsync.tls_errors import tls_failure


class TokenAnswer(Protocol):
    """What both httpx and requests responses offer."""

    @property
    def status_code(self) -> int: ...

    def json(self) -> Any: ...


def unreachable(exc: Exception, url: str, system: str) -> DialsyncError:
    """The token request got no answer."""
    tls = tls_failure(exc, url, system=system)
    if tls is not None:
        return tls  # retrying cannot help
    name = exc.__class__.__name__
    return TransientError(f"cannot reach the token endpoint {url}: {name}", system=system)


def token_body(
    response: TokenAnswer,
    url: str,
    system: str,
    *,
    token_key: str = "access_token",
    reason: str = "",
) -> dict[str, Any]:
    """The answer's JSON object when it carries ``token_key``; raises otherwise (see above).
    ``reason``: the status line's text, said when a refusal gives no reason of its own."""
    status = response.status_code
    if status == 429 or status >= 500:
        raise TransientError("the token endpoint failed", system=system, status=status)
    try:
        body = response.json()
    except ValueError:
        body = None
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    if status >= 400:
        code = fields.get("error") or fields.get("code") or fields.get("errorCode")
        detail = fields.get("error_description") or fields.get("message")
        raise AuthError(
            f"credentials refused by {url}: {detail or code or reason or 'no reason given'}",
            system=system,
            status=status,
            code=str(code) if code else None,
        )
    if token_key not in fields:
        raise TransientError(
            "the token endpoint answered without a token", system=system, status=status
        )
    return fields


def expires_in(body: dict[str, Any], default: float = 3600.0) -> float:
    """The token's lifetime in seconds, as the answer says (OAuth's expires_in), else default."""
    try:
        return float(body.get("expires_in") or default)
    except (TypeError, ValueError):
        return default
