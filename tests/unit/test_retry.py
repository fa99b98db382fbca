"""The one HTTP retry policy, and the two edges that follow it (httpx dialers, Salesforce)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import requests
from requests.adapters import BaseAdapter

from dialsync.destinations.http import ApiClient, LocalRateLimiter, OAuthToken
from dialsync.errors import AmbiguousWriteError, RateLimited, TerminalError, TransientError
from dialsync.retry import Action, RetryPolicy, Verdict, decide, retry_after
from dialsync.settings import SalesforceSettings
from dialsync.sources.salesforce import SalesforceSource

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=4, base_seconds=1.0, max_backoff_seconds=30.0)


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def answer(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def act(outcome: Any, attempt: int = 1, *, idempotent: bool = True, r: float = 0.5) -> Action:
    return decide(
        outcome, attempt, policy=POLICY, idempotent=idempotent, rng=lambda: r, now=lambda: NOW
    )


# -- the policy ---------------------------------------------------------------------------------
def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    assert retry_after({"Retry-After": "7"}, NOW) == 7.0
    assert retry_after({"Retry-After": http_date(NOW + timedelta(seconds=12))}, NOW) == 12.0
    assert retry_after({"Retry-After": "Fri, 04 Dec 2026 12:00:05 GMT"}, NOW) == 5.0
    assert retry_after({"Retry-After": http_date(NOW - timedelta(minutes=1))}, NOW) == 0.0
    assert retry_after({"Retry-After": "soon"}, NOW) is None
    assert retry_after({}, NOW) is None


def test_backoff_doubles_with_jitter_between_half_and_all_of_the_step() -> None:
    assert [act(answer(503), n, r=1.0).wait for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert [act(answer(503), n, r=0.0).wait for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    capped = RetryPolicy(max_attempts=10, base_seconds=1.0, max_backoff_seconds=8.0)
    assert decide(answer(503), 9, policy=capped, rng=lambda: 1.0).wait == 8.0


def test_the_server_said_when_wins_over_our_backoff() -> None:
    assert act(answer(429, **{"Retry-After": "3"})) == Action(Verdict.RETRY, 3.0)
    date = http_date(NOW + timedelta(seconds=9))
    assert act(answer(503, **{"Retry-After": date})) == Action(Verdict.RETRY, 9.0)
    assert act(answer(429)) == Action(Verdict.RETRY, 0.75)  # none given: our backoff


def test_a_pause_longer_than_we_wait_in_line_gives_up_with_the_hint() -> None:
    assert act(answer(429, **{"Retry-After": "120"})) == Action(Verdict.TRANSIENT, 120.0)
    assert act(answer(503), attempt=4) == Action(Verdict.TRANSIENT, 0.5 * 8.0 * 1.5)
    assert act(answer(429, **{"Retry-After": "2"}), attempt=4) == Action(Verdict.TRANSIENT, 2.0)


def test_writes_are_repeated_only_when_they_cannot_have_been_applied() -> None:
    request = httpx.Request("POST", "https://dialer.test/x")
    assert act(answer(500), idempotent=False).verdict is Verdict.AMBIGUOUS
    assert act(httpx.ReadTimeout("t", request=request), idempotent=False).verdict is (
        Verdict.AMBIGUOUS
    )
    assert act(httpx.ConnectError("c", request=request), idempotent=False).retry
    assert act(answer(429), idempotent=False).retry  # a 429 was refused, not applied
    assert act(requests.ConnectTimeout(), idempotent=False).retry
    assert act(requests.ReadTimeout(), idempotent=False).verdict is Verdict.AMBIGUOUS
    assert act(requests.ConnectionError(), attempt=4) == Action(Verdict.TRANSIENT)


def test_other_refusals_are_terminal() -> None:
    for status in (400, 401, 403, 404, 409, 422):
        assert act(answer(status)).verdict is Verdict.TERMINAL


def test_only_transport_failures_are_judged() -> None:
    with pytest.raises(TypeError):
        act(ValueError("not HTTP"))


# -- the dialer edge (httpx) --------------------------------------------------------------------
def api(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> ApiClient:
    return ApiClient(
        system="dialer",
        base_url="https://dialer.test",
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        token=OAuthToken(lambda: ("tok", 3600.0)),
        policy=RetryPolicy(max_attempts=3, base_seconds=0.5, max_backoff_seconds=10.0),
        rng=lambda: 1.0,
        now=lambda: NOW,
        **kw,
    )


def scripted(*answers: httpx.Response | type[Exception]) -> tuple[list[str], Any]:
    sent: list[str] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        item = queue.pop(0)
        if isinstance(item, httpx.Response):
            return item
        raise item("scripted", request=request)

    return sent, handler


def test_dialer_waits_out_an_http_date_retry_after() -> None:
    slept: list[float] = []
    later = http_date(NOW + timedelta(seconds=4))
    sent, handler = scripted(answer(503, **{"Retry-After": later}), httpx.Response(200, json={}))
    assert api(handler, sleep=slept.append).call("GET", "/lists", idempotent=True).is_success
    assert (sent, slept) == (["GET", "GET"], [4.0])


def test_dialer_429_pauses_every_sender_then_retries() -> None:
    slept: list[float] = []
    limiter = LocalRateLimiter(None, clock=lambda: 100.0, sleep=slept.append)
    sent, handler = scripted(answer(429, **{"Retry-After": "2"}), httpx.Response(201, json={}))
    client = api(handler, sleep=slept.append, limiter=limiter)
    assert client.call("POST", "/records", json={}, idempotent=False).status_code == 201
    assert limiter._paused_until == 102.0
    assert sent == ["POST", "POST"]


def test_dialer_rate_limit_longer_than_the_cap_is_handed_up() -> None:
    sent, handler = scripted(answer(429, **{"Retry-After": "60"}))
    with pytest.raises(RateLimited) as caught:
        api(handler, sleep=lambda s: None).call("GET", "/lists", idempotent=True)
    assert (sent, caught.value.retry_after) == (["GET"], 60.0)


def test_dialer_write_is_not_repeated_once_it_may_have_landed() -> None:
    sent, handler = scripted(httpx.ReadTimeout, answer(500))
    client = api(handler, sleep=lambda s: None)
    with pytest.raises(AmbiguousWriteError):
        client.call("POST", "/records", json={}, idempotent=False)
    with pytest.raises(AmbiguousWriteError):
        client.call("POST", "/records", json={}, idempotent=False)
    assert sent == ["POST", "POST"]


def test_dialer_connect_failures_are_retried_then_transient() -> None:
    slept: list[float] = []
    sent, handler = scripted(httpx.ConnectError, httpx.ConnectError, httpx.ConnectError)
    with pytest.raises(TransientError) as caught:
        api(handler, sleep=slept.append).call("POST", "/records", json={}, idempotent=False)
    assert not isinstance(caught.value, AmbiguousWriteError)
    assert (len(sent), slept) == (3, [0.5, 1.0])


# -- the Salesforce edge (requests under simple-salesforce) -------------------------------------
class ScriptedAdapter(BaseAdapter):
    """A requests transport that answers from a script and never opens a socket."""

    def __init__(self, answers: list[tuple[int, dict[str, str], bytes] | Exception]) -> None:
        super().__init__()
        self.answers = answers
        self.paths: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.paths.append(str(request.path_url))
        item = self.answers.pop(0)
        if isinstance(item, Exception):
            raise item
        status, headers, body = item
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response._content = body
        response.url = str(request.url)
        response.request = request
        response.reason = "scripted"
        return response

    def close(self) -> None:
        pass


DESCRIBE_OK = (200, {"Content-Type": "application/json"}, b'{"fields": [{"name": "Id"}]}')
OUTAGE = (503, {"Content-Type": "text/plain"}, b"Service Unavailable")


@pytest.fixture
def salesforce() -> Iterator[Callable[..., tuple[SalesforceSource, ScriptedAdapter, list[float]]]]:
    made: list[SalesforceSource] = []

    def make(
        *answers: tuple[int, dict[str, str], bytes] | Exception, **kw: Any
    ) -> tuple[SalesforceSource, ScriptedAdapter, list[float]]:
        adapter = ScriptedAdapter(list(answers))
        session = requests.Session()
        session.mount("https://", adapter)
        slept: list[float] = []
        settings = SalesforceSettings(instance_url="https://org.test", access_token="tok")
        source = SalesforceSource(
            settings, session=session, clock=lambda: NOW, sleep=slept.append, **kw
        )
        made.append(source)
        return source, adapter, slept

    yield make
    for source in made:
        source.close()


def test_salesforce_honours_an_http_date_retry_after(salesforce: Any) -> None:
    later = http_date(NOW + timedelta(seconds=3))
    source, adapter, slept = salesforce((503, {"Retry-After": later}, b"busy"), DESCRIBE_OK)
    assert source.describe_fields() == {"Id"}
    assert slept == [3.0]
    assert len(adapter.paths) == 2


def test_salesforce_backoff_has_jitter(salesforce: Any) -> None:
    low, _, slept_low = salesforce(OUTAGE, OUTAGE, DESCRIBE_OK, rng=lambda: 0.0)
    high, _, slept_high = salesforce(OUTAGE, OUTAGE, DESCRIBE_OK, rng=lambda: 1.0)
    assert low.describe_fields() == high.describe_fields() == {"Id"}
    assert (slept_low, slept_high) == ([0.5, 1.0], [1.0, 2.0])


def test_salesforce_gives_up_as_transient_after_its_attempts(salesforce: Any) -> None:
    source, adapter, slept = salesforce(
        requests.ConnectionError(), OUTAGE, OUTAGE, OUTAGE, rng=lambda: 1.0
    )
    with pytest.raises(TransientError) as caught:
        source.describe_fields()
    assert (caught.value.status, len(adapter.paths), slept) == (503, 4, [1.0, 2.0, 4.0])


def test_salesforce_waits_are_capped_by_its_max_backoff_setting() -> None:
    adapter = ScriptedAdapter([OUTAGE, OUTAGE, OUTAGE, DESCRIBE_OK])
    session = requests.Session()
    session.mount("https://", adapter)
    slept: list[float] = []
    settings = SalesforceSettings(
        instance_url="https://org.test", access_token="tok", max_backoff_seconds=1.5
    )
    source = SalesforceSource(settings, session=session, sleep=slept.append, rng=lambda: 1.0)
    try:
        assert source.describe_fields() == {"Id"}
    finally:
        source.close()
    assert slept == [1.0, 1.5, 1.5]  # 1, 2, 4 s by default


def test_salesforce_long_retry_after_is_handed_up_not_slept(salesforce: Any) -> None:
    source, adapter, slept = salesforce((429, {"Retry-After": "600"}, b"[]"))
    with pytest.raises(RateLimited) as caught:
        source.describe_fields()
    assert (caught.value.retry_after, slept, len(adapter.paths)) == (600.0, [], 1)


def test_salesforce_refusal_is_not_retried(salesforce: Any) -> None:
    body = b'[{"errorCode": "NOT_FOUND", "message": "no such thing"}]'
    source, adapter, slept = salesforce((404, {"Content-Type": "application/json"}, body))
    with pytest.raises(TerminalError):
        source.describe_fields()
    assert (len(adapter.paths), slept) == (1, [])
