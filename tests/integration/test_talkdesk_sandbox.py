"""The Talkdesk sandbox answers as the reference says, over real HTTP with httpx."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dialsync.sandbox.talkdesk import TalkdeskSandbox

SCOPE = "record-lists:manage"
_phones = itertools.count(4155550100)


def get_token(sandbox: TalkdeskSandbox, scope: str = SCOPE) -> str:
    response = httpx.post(
        sandbox.token_url,
        auth=(sandbox.client_id, sandbox.client_secret),
        data={"grant_type": "client_credentials", "scope": scope},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def api(sandbox: TalkdeskSandbox, timeout: float = 5.0) -> httpx.Client:
    headers = {"Authorization": f"Bearer {get_token(sandbox)}"}
    return httpx.Client(base_url=sandbox.url, headers=headers, timeout=timeout)


def record(external_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid record with a phone number no other test record holds."""
    out: dict[str, Any] = {
        "phone_numbers": [{"phone_number": f"+1{next(_phones)}", "phone_type": "MOBILE"}],
        "first_name": "Joey",
        "last_name": "Tribbiani",
        "timezone": "Europe/Lisbon",
        "priority": 6,
        "extra_data": {"job": "Actor"},
    }
    if external_id is not None:
        out |= {"external_provider": "salesforce", "external_id": external_id}
    out.update(overrides)
    return out


def bulk_create(client: httpx.Client, list_id: str, records: list[dict[str, Any]]) -> Any:
    response = client.post(f"/record-lists/{list_id}/records/bulks", json={"records": records})
    assert response.status_code == 201, response.text
    return response.json()


def bulk_delete(client: httpx.Client, list_id: str, items: list[dict[str, Any]]) -> httpx.Response:
    return client.request("DELETE", f"/record-lists/{list_id}/records/bulks", json=items)


def wait_for(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


@pytest.fixture
def sandbox() -> Iterator[TalkdeskSandbox]:
    with TalkdeskSandbox() as running:
        yield running


@pytest.fixture
def client(sandbox: TalkdeskSandbox) -> Iterator[httpx.Client]:
    with api(sandbox) as opened:
        yield opened


# -- authentication ----------------------------------------------------------------------------


def test_token_flow_and_auth_errors(sandbox: TalkdeskSandbox) -> None:
    list_id = sandbox.create_list()
    wrong = httpx.post(
        sandbox.token_url,
        auth=("sandbox-talkdesk", "nope"),
        data={"grant_type": "client_credentials", "scope": SCOPE},
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    grant = httpx.post(
        sandbox.token_url,
        auth=(sandbox.client_id, sandbox.client_secret),
        data={"grant_type": "password", "scope": SCOPE},
    )
    assert grant.status_code == 400
    assert grant.json()["error"] == "unsupported_grant_type"

    ok = httpx.post(
        sandbox.token_url,
        auth=(sandbox.client_id, sandbox.client_secret),
        data={"grant_type": "client_credentials", "scope": SCOPE},
    )
    body = ok.json()
    assert ok.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == SCOPE
    good = {"Authorization": f"Bearer {body['access_token']}"}

    url = f"{sandbox.url}/record-lists/{list_id}"
    assert httpx.get(url).json()["code"] == "UNAUTHORIZED"
    unknown = httpx.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert unknown.status_code == 401
    assert unknown.json()["code"] == "UNAUTHORIZED"
    assert httpx.get(url, headers=good).status_code == 200

    other_scope = {"Authorization": f"Bearer {get_token(sandbox, scope='users:read')}"}
    assert httpx.get(url, headers=other_scope).status_code == 403

    sandbox.expire_tokens()
    expired = httpx.get(url, headers=good)
    assert expired.status_code == 401
    assert expired.json()["code"] == "UNAUTHORIZED"
    assert sandbox.stats()["token_requests"] == 4


def test_token_expires_after_its_ttl() -> None:
    with TalkdeskSandbox(token_ttl=0.3) as sandbox, api(sandbox) as client:
        list_id = sandbox.create_list()
        assert client.get(f"/record-lists/{list_id}").status_code == 200
        assert wait_for(lambda: client.get(f"/record-lists/{list_id}").status_code == 401)


def test_get_list_and_unknown_list(sandbox: TalkdeskSandbox, client: httpx.Client) -> None:
    list_id = sandbox.create_list("Campaign", "PHONE_NUMBER")
    sandbox.add_record(list_id, record())
    assert client.get(f"/record-lists/{list_id}").json() == {
        "id": list_id,
        "name": "Campaign",
        "unique_identifier_type": "PHONE_NUMBER",
        "status": "ACTIVE",
        "records_count": 1,
    }
    for response in (
        client.get("/record-lists/nope"),
        client.get("/record-lists/nope/records"),
        client.post("/record-lists/nope/records/bulks", json={"records": [record("x")]}),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "RECORD_LIST_NOT_FOUND"


# -- create --------------------------------------------------------------------------------------

INVALID_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"phone_numbers": []}, ["PHONE_NUMBER_MISSING"]),
    (
        {"phone_numbers": [{"phone_number": "0912345", "phone_type": "MOBILE"}]},
        ["PHONE_NUMBER_INVALID"],
    ),
    (
        {"phone_numbers": [{"phone_number": "+351912345678", "phone_type": "FAX"}]},
        ["PHONE_NUMBER_INVALID"],
    ),
    ({"first_name": ""}, ["FIRST_NAME_MISSING"]),
    ({"first_name": "J" * 81}, ["FIRST_NAME_INVALID"]),
    ({"last_name": None}, ["LAST_NAME_MISSING"]),
    ({"last_name": 7}, ["LAST_NAME_INVALID"]),
    ({"timezone": "Mars/Olympus_Mons"}, ["TIMEZONE_INVALID"]),
    ({"priority": ""}, ["PRIORITY_INVALID"]),
    ({"priority": True}, ["PRIORITY_INVALID"]),
    ({"priority": 11}, ["PRIORITY_INVALID"]),
    ({"external_provider": None}, ["EXTERNAL_REF_MISSING"]),
    ({"extra_data": "not an object"}, ["OTHER"]),
    ({"first_name": "", "priority": 0}, ["FIRST_NAME_MISSING", "PRIORITY_INVALID"]),
]


def test_bulk_create_reports_each_record(sandbox: TalkdeskSandbox, client: httpx.Client) -> None:
    list_id = sandbox.create_list()
    valid = record("003A", priority=None, id="ignored", created_at="1999-01-01T00:00:00Z")
    inputs = [valid] + [record(f"003B{i}", **bad) for i, (bad, _) in enumerate(INVALID_CASES)]
    body = bulk_create(client, list_id, inputs)

    assert body["record_list_id"] == list_id
    assert body["has_errors"] is True
    assert body["total_created"] == 1
    assert body["total_errors"] == len(INVALID_CASES)
    assert body["_links"]["record_list"]["href"] == f"{sandbox.url}/record-lists/{list_id}"
    entries = body["_embedded"]["records"]
    assert len(entries) == len(inputs)

    created = entries[0]
    assert created["errors"] == []
    assert created["id"] != "ignored"  # read-only input fields are ignored
    assert created["created_at"] != "1999-01-01T00:00:00Z"
    assert created["priority"] is None  # null priority is a hot lead, not an error
    assert created["external_id"] == "003A"
    assert created["record_list_id"] == list_id
    for entry, (_, codes) in zip(entries[1:], INVALID_CASES, strict=True):
        assert entry["errors"] == codes
        assert "id" not in entry
    assert entries[12]["external_id"] == "003B11"  # echoes let a client match by external id
    assert [r["id"] for r in sandbox.records(list_id)] == [created["id"]]
    stats = sandbox.stats()
    assert (stats["creates_bulk"], stats["writes"], stats["records_created"]) == (1, 1, 1)


def test_single_create(sandbox: TalkdeskSandbox, client: httpx.Client) -> None:
    list_id = sandbox.create_list()
    response = client.post(f"/record-lists/{list_id}/records", json=record("003S"))
    assert response.status_code == 201
    created = response.json()
    assert created["external_id"] == "003S"
    expected = f"{sandbox.url}/record-lists/{list_id}/records/{created['id']}"
    assert created["_links"]["self"]["href"] == expected

    bad = client.post(f"/record-lists/{list_id}/records", json=record(None, first_name=""))
    assert bad.status_code == 400
    assert {(f["name"], f["description"]) for f in bad.json()["fields"]} == {
        ("first_name", "FIRST_NAME_MISSING"),
        ("external_id", "EXTERNAL_REF_MISSING"),
    }
    assert len(sandbox.records(list_id)) == 1
    assert sandbox.stats()["creates_single"] == 2


def test_bulk_create_request_errors(sandbox: TalkdeskSandbox, client: httpx.Client) -> None:
    list_id = sandbox.create_list()
    path = f"/record-lists/{list_id}/records/bulks"
    too_many = client.post(path, json={"records": [record(f"003T{i}") for i in range(101)]})
    assert too_many.status_code == 400
    assert too_many.json()["code"] == "TOO_MANY_RECORDS"
    for response in (
        client.post(path, content=b"{not json", headers={"Content-Type": "application/json"}),
        client.post(path, json={"records": []}),
        client.post(path, json=[record("003U")]),
        client.post(path, json={"records": ["not an object"]}),
    ):
        assert response.status_code == 400
        assert {"code", "message"} <= response.json().keys()
    assert sandbox.records(list_id) == []
    assert (
        len(
            bulk_create(client, list_id, [record(f"003V{i}") for i in range(100)])["_embedded"][
                "records"
            ]
        )
        == 100
    )


# -- uniqueness ----------------------------------------------------------------------------------


def test_external_list_refuses_duplicate_refs(
    sandbox: TalkdeskSandbox, client: httpx.Client
) -> None:
    list_id = sandbox.create_list(unique_identifier_type="EXTERNAL")
    first = bulk_create(client, list_id, [record("003D")])
    assert first["total_created"] == 1

    again = bulk_create(client, list_id, [record("003D"), record("003E"), record("003E")])
    codes = [e["errors"] for e in again["_embedded"]["records"]]
    assert codes == [
        ["EXTERNAL_ID_AND_PROVIDER_NOT_UNIQUE"],
        [],
        ["EXTERNAL_ID_AND_PROVIDER_NOT_UNIQUE"],
    ]
    other_provider = bulk_create(client, list_id, [record("003D", external_provider="hubspot")])
    assert other_provider["total_created"] == 1
    no_ref = bulk_create(client, list_id, [record(None)])
    assert no_ref["_embedded"]["records"][0]["errors"] == ["EXTERNAL_REF_MISSING"]
    assert len(sandbox.records(list_id)) == 3


def test_phone_number_and_nothing_lists(sandbox: TalkdeskSandbox, client: httpx.Client) -> None:
    phone = [{"phone_number": "+351929312319", "phone_type": "MOBILE"}]
    by_phone = sandbox.create_list(unique_identifier_type="PHONE_NUMBER")
    sandbox.add_record(by_phone, record(phone_numbers=phone))
    body = bulk_create(
        client,
        by_phone,
        [
            record(
                None, phone_numbers=[*phone, {"phone_number": "+14155559999", "phone_type": "HOME"}]
            ),
            record(None, phone_numbers=[{"phone_number": "+14155558888", "phone_type": "HOME"}]),
            record(None, phone_numbers=[{"phone_number": "+14155558888", "phone_type": "OFFICE"}]),
            record("003P"),  # an external ref is allowed, just not required
            record("003P"),  # and not unique on this list type
        ],
    )
    assert [e["errors"] for e in body["_embedded"]["records"]] == [
        ["PHONE_NUMBER_NOT_UNIQUE"],
        [],
        ["PHONE_NUMBER_NOT_UNIQUE"],
        [],
        [],
    ]

    nothing = sandbox.create_list(unique_identifier_type="NOTHING")
    same = [record("003N", phone_numbers=phone), record("003N", phone_numbers=phone), record(None)]
    assert bulk_create(client, nothing, same)["total_created"] == 3


def test_concurrent_creates_keep_refs_unique(sandbox: TalkdeskSandbox) -> None:
    list_id = sandbox.create_list()
    results: list[int] = []

    def create() -> None:
        with api(sandbox) as client:
            results.append(bulk_create(client, list_id, [record("003C")])["total_created"])

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0] * 7 + [1]
    assert len(sandbox.records(list_id)) == 1


# -- update --------------------------------------------------------------------------------------


def test_bulk_update_replace_add_and_errors(sandbox: TalkdeskSandbox, client: httpx.Client) -> None:
    list_id = sandbox.create_list()
    created = bulk_create(
        client,
        list_id,
        [
            record("003R", extra_data={"home": "mars", "job": "Actor"}),
            record("003A", extra_data={"home": "mars", "job": "Actor"}),
            record("003I", priority=3),
            record("003X"),
        ],
    )
    ids = [e["id"] for e in created["_embedded"]["records"]]
    operations = [
        {
            "op": "replace",
            "path": f"/records/{ids[0]}",
            "value": {"extra_data": {"home": "earth"}, "priority": 10},
        },
        {"op": "add", "path": f"/records/{ids[1]}", "value": {"extra_data": {"name": "jerry"}}},
        {
            "op": "replace",
            "path": f"/records/{ids[2]}",
            "value": {"priority": 0, "first_name": "Chandler"},
        },
        {"op": "replace", "path": "/records/no-such-record", "value": {"priority": 1}},
        {"op": "replace", "path": f"/records/{ids[3]}", "value": {"external_id": "003R"}},
    ]
    response = client.patch(f"/record-lists/{list_id}/records/bulks", json=operations)
    assert response.status_code == 200
    body = response.json()
    assert body["has_errors"] is True
    assert body["total_errors"] == 3
    entries = body["_embedded"]["records"]
    assert [e["errors"] for e in entries] == [
        [],
        [],
        ["PRIORITY_INVALID"],
        ["OTHER"],
        ["EXTERNAL_ID_AND_PROVIDER_NOT_UNIQUE"],
    ]
    assert entries[3]["id"] == "no-such-record"

    stored = {r["id"]: r for r in sandbox.records(list_id)}
    assert stored[ids[0]]["extra_data"] == {"home": "earth"}  # replace swaps the whole field
    assert stored[ids[0]]["priority"] == 10
    assert stored[ids[1]]["extra_data"] == {"home": "mars", "job": "Actor", "name": "jerry"}
    assert stored[ids[2]]["priority"] == 3  # an invalid update changes nothing
    assert stored[ids[2]]["first_name"] == "Joey"
    assert stored[ids[3]]["external_id"] == "003X"
    assert sandbox.stats()["records_updated"] == 2

    path = f"/record-lists/{list_id}/records/bulks"
    for bad in (
        [{"op": "remove", "path": f"/records/{ids[0]}", "value": {}}],
        [{"op": "replace", "path": f"/contacts/{ids[0]}", "value": {}}],
        [],
        {"op": "replace"},
    ):
        assert client.patch(path, json=bad).status_code == 400


# -- delete --------------------------------------------------------------------------------------


def test_bulk_delete_by_id_ref_and_phone(sandbox: TalkdeskSandbox, client: httpx.Client) -> None:
    list_id = sandbox.create_list(unique_identifier_type="NOTHING")
    shared = [{"phone_number": "+351929312300", "phone_type": "HOME"}]
    ids = [
        e["id"]
        for e in bulk_create(
            client,
            list_id,
            [
                record("003K"),  # by id
                record("003L"),  # by external ref, twice in the list
                record("003L"),
                record("003M", phone_numbers=shared),  # by phone, twice in the list
                record("003O", phone_numbers=shared),
                record("003Z"),  # kept
            ],
        )["_embedded"]["records"]
    ]
    response = bulk_delete(
        client,
        list_id,
        [
            {"id": ids[0]},
            {"external_provider": "salesforce", "external_id": "003L"},
            {"phone_number": "+351929312300"},
            {"id": ids[0]},
            {"external_provider": "salesforce", "external_id": "003Q"},
            {"phone_number": "+14155550000"},
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert body["total_deleted"] == 5
    assert body["total_errors"] == 3
    assert body["_embedded"]["failed_records"] == [
        {"id": ids[0], "errors": ["RECORD_NOT_FOUND"]},
        {"external_provider": "salesforce", "external_id": "003Q", "errors": ["RECORD_NOT_FOUND"]},
        {"phone_number": "+14155550000", "errors": ["RECORD_NOT_FOUND"]},
    ]
    assert [r["id"] for r in sandbox.records(list_id)] == [ids[5]]

    for bad in ([], [{"external_id": "003Z"}], [{"id": ids[5], "phone_number": "+1"}]):
        assert bulk_delete(client, list_id, bad).status_code == 400
    assert bulk_delete(client, list_id, [{"id": "x"}] * 101).json()["code"] == "TOO_MANY_RECORDS"
    assert len(sandbox.records(list_id)) == 1


# -- reads ---------------------------------------------------------------------------------------


def test_paging_follows_next_links(sandbox: TalkdeskSandbox, client: httpx.Client) -> None:
    list_id = sandbox.create_list()
    bulk_create(client, list_id, [record(f"003G{i:03}") for i in range(100)])
    bulk_create(client, list_id, [record(f"003G{i:03}") for i in range(100, 130)])

    url: str | None = f"/record-lists/{list_id}/records?per_page=50"
    pages: list[dict[str, Any]] = []
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200
        pages.append(response.json())
        url = pages[-1]["_links"].get("next", {}).get("href")
    assert [p["count"] for p in pages] == [50, 50, 30]
    assert {(p["total"], p["total_pages"], p["per_page"]) for p in pages} == {(130, 3, 50)}
    assert "prev" not in pages[0]["_links"]
    assert pages[1]["_links"]["prev"]["href"].startswith(f"{sandbox.url}/record-lists/{list_id}")
    assert pages[2]["_links"]["last"]["href"] == pages[2]["_links"]["self"]["href"]
    seen = [r["external_id"] for p in pages for r in p["_embedded"]["records"]]
    assert seen == [f"003G{i:03}" for i in range(130)]  # creation order, nothing twice

    default = client.get(f"/record-lists/{list_id}/records").json()
    assert (default["page"], default["per_page"], default["count"]) == (1, 50, 50)
    beyond = client.get(f"/record-lists/{list_id}/records?page=9").json()
    assert beyond["_embedded"]["records"] == []
    assert "next" not in beyond["_links"]
    for query in ("per_page=101", "per_page=0", "page=0", "page=two"):
        bad = client.get(f"/record-lists/{list_id}/records?{query}")
        assert bad.status_code == 400
        assert bad.json()["code"] == "INVALID_PARAMETER"


def test_single_record_get_and_delete(sandbox: TalkdeskSandbox, client: httpx.Client) -> None:
    list_id = sandbox.create_list()
    other_list = sandbox.create_list()
    record_id = sandbox.add_record(list_id, {"phone_numbers": [], "first_name": "csv upload"})
    path = f"/record-lists/{list_id}/records/{record_id}"
    fetched = client.get(path)
    assert fetched.status_code == 200
    assert fetched.json()["first_name"] == "csv upload"  # inserted without validation
    assert client.get(f"/record-lists/{other_list}/records/{record_id}").status_code == 404

    assert client.delete(path).status_code == 204
    for response in (client.get(path), client.delete(path)):
        assert response.status_code == 404
        assert response.json()["code"] == "RECORD_NOT_FOUND"

    kept = bulk_create(client, list_id, [record("003W")])["_embedded"]["records"][0]["id"]
    sandbox.remove_record(list_id, kept)  # an admin deletes it in the dialer's UI
    assert client.get(f"/record-lists/{list_id}/records/{kept}").status_code == 404
    stats = sandbox.stats()
    assert (stats["deletes_single"], stats["records_deleted"]) == (2, 2)


# -- faults --------------------------------------------------------------------------------------


def test_500_and_429_faults_apply_nothing(sandbox: TalkdeskSandbox, client: httpx.Client) -> None:
    list_id = sandbox.create_list()
    sandbox.set_faults(error_500_rate=1.0)
    failed = client.post(
        f"/record-lists/{list_id}/records/bulks", json={"records": [record("003F")]}
    )
    assert failed.status_code == 500
    assert client.get(f"/record-lists/{list_id}").status_code == 200  # reads are spared

    sandbox.set_faults(error_500_rate=0.0, error_429_rate=1.0, retry_after=2)
    limited = client.post(
        f"/record-lists/{list_id}/records/bulks", json={"records": [record("003F")]}
    )
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert sandbox.records(list_id) == []

    sandbox.set_faults(error_429_rate=0.0)
    sandbox.fail_next(2, 503, retry_after=1)
    statuses = [
        client.post(f"/record-lists/{list_id}/records", json=record(f"003H{i}")).status_code
        for i in range(3)
    ]
    assert statuses == [503, 503, 201]
    assert len(sandbox.records(list_id)) == 1
    assert sandbox.stats()["status_counts"][503] == 2


def test_faults_can_hit_reads_too(sandbox: TalkdeskSandbox, client: httpx.Client) -> None:
    list_id = sandbox.create_list()
    sandbox.set_faults(error_500_rate=1.0, only_writes=False)
    assert client.get(f"/record-lists/{list_id}").status_code == 500
    assert httpx.post(sandbox.token_url, auth=("a", "b")).status_code == 401  # token spared


def test_fault_sequence_follows_the_seed() -> None:
    def statuses(seed: int) -> list[int]:
        with TalkdeskSandbox(seed=seed) as sandbox, api(sandbox) as client:
            list_id = sandbox.create_list(unique_identifier_type="NOTHING")
            sandbox.set_faults(error_500_rate=0.5)
            path = f"/record-lists/{list_id}/records"
            return [client.post(path, json=record(None)).status_code for _ in range(16)]

    first = statuses(7)
    assert first == statuses(7)
    assert set(first) == {201, 500}


def test_timeout_applies_the_write_late(sandbox: TalkdeskSandbox) -> None:
    list_id = sandbox.create_list()
    sandbox.set_faults(timeout_rate=1.0, timeout_seconds=0.6)
    with api(sandbox, timeout=0.2) as impatient, pytest.raises(httpx.TimeoutException):
        impatient.post(f"/record-lists/{list_id}/records/bulks", json={"records": [record("003J")]})
    # the client gave up, yet the write lands: a retry now meets a duplicate
    assert wait_for(lambda: len(sandbox.records(list_id)) == 1)
    assert sandbox.records(list_id)[0]["external_id"] == "003J"


def test_drop_after_apply(sandbox: TalkdeskSandbox, client: httpx.Client) -> None:
    list_id = sandbox.create_list()
    sandbox.set_faults(drop_after_apply_rate=1.0)
    with pytest.raises(httpx.TransportError):
        client.post(f"/record-lists/{list_id}/records/bulks", json={"records": [record("003Y")]})
    assert [r["external_id"] for r in sandbox.records(list_id)] == ["003Y"]
    sandbox.set_faults(drop_after_apply_rate=0.0)
    again = bulk_create(client, list_id, [record("003Y")])
    assert again["_embedded"]["records"][0]["errors"] == ["EXTERNAL_ID_AND_PROVIDER_NOT_UNIQUE"]
    assert sandbox.stats()["dropped"] == 1


def test_rate_limit_answers_429() -> None:
    with TalkdeskSandbox(max_requests_per_second=3) as sandbox, api(sandbox) as client:
        list_id = sandbox.create_list()
        responses = [client.get(f"/record-lists/{list_id}") for _ in range(8)]
        statuses = [r.status_code for r in responses]
        assert statuses[:3] == [200, 200, 200]
        limited = [r for r in responses if r.status_code == 429]
        assert limited
        assert all(r.headers["Retry-After"] == "1" for r in limited)
        stats = sandbox.stats()
        assert stats["max_requests_in_any_second"] > 3
        assert stats["status_counts"][429] == len(limited)


# -- admin routes --------------------------------------------------------------------------------


def test_admin_routes(sandbox: TalkdeskSandbox, client: httpx.Client) -> None:
    admin = httpx.Client(base_url=f"{sandbox.url}/_sandbox")
    list_id = admin.post(
        "/lists", json={"name": "CSV", "unique_identifier_type": "NOTHING"}
    ).json()["id"]
    record_id = admin.post(f"/lists/{list_id}/records", json={"first_name": "Upload"}).json()["id"]
    assert [r["id"] for r in admin.get(f"/lists/{list_id}/records").json()["records"]] == [
        record_id
    ]

    assert admin.post("/faults", json={"error_500_rate": 1.0}).json()["error_500_rate"] == 1.0
    assert client.delete(f"/record-lists/{list_id}/records/{record_id}").status_code == 500
    assert admin.post("/faults", json={"error_500_rate": 0.0, "bogus": 1}).status_code == 400
    admin.post("/faults", json={"error_500_rate": 0.0})
    assert admin.delete(f"/lists/{list_id}/records/{record_id}").status_code == 204
    assert admin.get(f"/lists/{list_id}/records").json()["records"] == []

    assert admin.post("/expire-tokens").status_code == 204
    assert client.get(f"/record-lists/{list_id}").status_code == 401
    stats = admin.get("/stats").json()
    assert stats["status_counts"] == {"500": 1, "401": 1, "200": 1}  # token: admin not counted
    assert (stats["writes"], stats["reads"]) == (0, 0)
    admin.close()
