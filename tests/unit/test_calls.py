"""Each dialer call reported once to the hooks the composition root passes in, and logged."""

from __future__ import annotations

import logging

import httpx
import pytest

from dialsync.calls import Call, ObservedTransport, count_records, log_call


def handler(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/slow"):
        raise httpx.ReadTimeout("slow", request=request)
    if request.method == "GET":
        return httpx.Response(200, json={"_embedded": {"records": [{"id": "a"}, {"id": "b"}]}})
    return httpx.Response(201, json={"total_created": 3})


def test_each_call_reaches_the_hooks_with_its_records(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Call] = []
    client = httpx.Client(
        transport=ObservedTransport(
            httpx.MockTransport(handler), "talkdesk", [seen.append, log_call]
        )
    )
    with caplog.at_level(logging.DEBUG, logger="dialsync.http"):
        assert client.get("http://td/record-lists/L/records").json()["_embedded"]["records"]
        client.post("http://td/record-lists/L/records/bulks", json={"records": [{}, {}, {}]})
        with pytest.raises(httpx.ReadTimeout):
            client.get("http://td/slow")
    assert [(c.method, c.path, c.status, c.records) for c in seen] == [
        ("GET", "/record-lists/L/records", 200, 2),
        ("POST", "/record-lists/L/records/bulks", 201, 3),
    ]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("talkdesk GET /record-lists/L/records -> 200 in ")
    assert lines[0].endswith(", 2 records")
    assert lines[2].startswith("talkdesk GET /slow -> ReadTimeout after ")


@pytest.mark.parametrize(
    ("body", "n"),
    [
        ([1, 2], 2),
        ({"records": [1]}, 1),
        ({"page": {"data": [1, 2, 3]}}, 3),
        ({"Data": []}, 0),
        ({"totalSize": 5}, None),
        ("text", None),
    ],
)
def test_records_are_counted_in_every_api_shape(body: object, n: int | None) -> None:
    assert count_records(body) == n
