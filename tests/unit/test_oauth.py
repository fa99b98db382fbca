"""Token endpoint answers mean the same for Salesforce and the dialers (dialsync.oauth)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import requests
from pydantic import SecretStr

from dialsync import oauth
from dialsync.destinations.connection import fetch_token
from dialsync.errors import AuthError, TransientError
from dialsync.settings import SalesforceSettings
from dialsync.sources import salesforce_auth

URL = "https://login.example.com/token"


def _answer(status: int, body: Any = None, text: str | None = None) -> httpx.Response:
    return (
        httpx.Response(status, text=text) if text is not None else httpx.Response(status, json=body)
    )


def test_a_token_answer_is_its_json_object() -> None:
    body = oauth.token_body(_answer(200, {"access_token": "t", "expires_in": 60}), URL, "x")
    assert body["access_token"] == "t" and oauth.expires_in(body) == 60.0
    assert oauth.expires_in({"expires_in": "soon"}) == 3600.0


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttled_or_failing_endpoints_are_transient(status: int) -> None:
    with pytest.raises(TransientError, match="the token endpoint failed"):
        oauth.token_body(_answer(status, {"error": "x"}), URL, "x")


def test_a_refusal_says_the_endpoints_reason() -> None:
    refused = {"error": "invalid_grant", "error_description": "authentication failure"}
    with pytest.raises(AuthError) as caught:
        oauth.token_body(_answer(400, refused), URL, "salesforce")
    assert caught.value.code == "invalid_grant" and caught.value.status == 400
    assert str(caught.value) == (
        f"salesforce: credentials refused by {URL}: authentication failure "
        "(HTTP 400, invalid_grant)"
    )
    with pytest.raises(AuthError, match="Unauthorized"):
        oauth.token_body(_answer(401, text="<html>"), URL, "x", reason="Unauthorized")


def test_a_success_without_the_token_is_transient() -> None:
    with pytest.raises(TransientError, match="without a token"):
        oauth.token_body(_answer(200, {"access_token": "t"}), URL, "x", token_key="id_token")
    with pytest.raises(TransientError, match="without a token"):
        oauth.token_body(_answer(200, text="<html>proxy</html>"), URL, "x")


def test_no_answer_is_transient() -> None:
    error = oauth.unreachable(httpx.ConnectError("refused"), URL, "x")
    assert isinstance(error, TransientError) and "cannot reach the token endpoint" in str(error)


class _Session(requests.Session):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__()
        self.answer = (status, body)

    def post(self, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = requests.Response()
        response.status_code, response._content = self.answer
        response.reason = "Too Many Requests" if self.answer[0] == 429 else "OK"
        return response


def _salesforce() -> SalesforceSettings:
    return SalesforceSettings(client_id="id", client_secret=SecretStr("secret"))


def test_salesforce_throttling_its_token_endpoint_is_transient_as_for_the_dialers() -> None:
    # Before the shared reading, Salesforce's 429 was a refused credential (exit 2, "check
    # CLIENT_ID / CLIENT_SECRET") while a dialer's was transient.
    session = _Session(429, b'{"error": "rate_limited"}')
    with pytest.raises(TransientError, match="the token endpoint failed"):
        salesforce_auth.fetch_token(_salesforce(), session, lambda: datetime.now(UTC))

    def throttled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"error": "rate_limited"})

    client = httpx.Client(transport=httpx.MockTransport(throttled))
    with pytest.raises(TransientError, match="the token endpoint failed"):
        fetch_token(client, "talkdesk", URL, data={})


def test_salesforce_reads_its_token_and_instance() -> None:
    answer = b'{"access_token": "tok", "instance_url": "https://org.my.salesforce.com"}'
    token = salesforce_auth.fetch_token(
        _salesforce(), _Session(200, answer), lambda: datetime.now(UTC)
    )
    assert token == ("tok", "https://org.my.salesforce.com")
