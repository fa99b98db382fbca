"""The Salesforce sandbox driven over real HTTPS by the real simple-salesforce client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from dialsync.sandbox.salesforce import SalesforceSandbox
from dialsync.sandbox.soql import format_datetime, id18

BATCH = {"Sforce-Query-Options": "batchSize=2000"}
ORDERED = "SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id"


class Clock:
    """A settable clock: getDeleted works in whole minutes, so tests move time on purpose."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(second=30, microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sandbox(tls_dir: Path, clock: Clock) -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(tls_dir=tls_dir, clock=clock) as box:
        yield box


def http(box: SalesforceSandbox) -> requests.Session:
    session = requests.Session()
    session.verify = str(box.ca_file)
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override session.verify (psf/requests#3829)
    session.trust_env = False
    return session


def token(box: SalesforceSandbox, **form: str) -> requests.Response:
    data = {
        "grant_type": "client_credentials",
        "client_id": box.client_id,
        "client_secret": box.client_secret,
        **form,
    }
    return http(box).post(f"{box.url}/services/oauth2/token", data=data, timeout=10)


def client(box: SalesforceSandbox) -> Salesforce:
    access = token(box).json()["access_token"]
    return Salesforce(session_id=access, instance_url=box.url, version="62.0", session=http(box))


def error_code(exc: Any) -> str:
    return str(exc.value.content[0]["errorCode"])


def test_shared_stamp_pages_come_back_complete_and_ordered(sandbox: SalesforceSandbox) -> None:
    stamp = datetime(2026, 11, 22, 7, 54, 32, 999_000, tzinfo=UTC)
    inserted = sandbox.insert_many([{"LastName": f"L{i}"} for i in range(4500)], stamp=stamp)
    assert len({len(i) for i in inserted}) == 1 and len(inserted[0]) == 18
    assert all(id18(i[:15]) == i and i.startswith("003") for i in inserted)
    assert inserted != sorted(inserted)  # Id order is not insertion order
    sf = client(sandbox)

    records = list(sf.query_all_iter(ORDERED, headers=BATCH))

    assert [r["Id"] for r in records] == sorted(inserted)
    assert {r["SystemModstamp"] for r in records} == {"2026-11-22T07:54:32.000+0000"}
    assert records[0]["attributes"] == {
        "type": "Contact",
        "url": f"/services/data/v62.0/sobjects/Contact/{records[0]['Id']}",
    }
    pages = sandbox.server.requests("GET", path_contains="/query/")
    assert len(pages) == 3 and all(p.status == 200 for p in pages)
    assert sf.api_usage["api-usage"].used == 3  # the token call is not an API call


def test_resume_after_a_crash_reads_exactly_the_rest(sandbox: SalesforceSandbox) -> None:
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    sandbox.insert_many([{"LastName": f"A{i}"} for i in range(300)], stamp=stamp)
    sandbox.insert_many([{"LastName": f"B{i}"} for i in range(5)], stamp=stamp + timedelta(1))
    sf = client(sandbox)
    everything = [r["Id"] for r in sf.query_all_iter(ORDERED)]
    last = everything[99]

    rest = sf.query_all(
        "SELECT Id FROM Contact WHERE (SystemModstamp = 2026-01-01T00:00:00Z AND "
        f"Id > '{last}') OR SystemModstamp > 2026-01-01T00:00:00.000+0000 "
        "ORDER BY SystemModstamp, Id"
    )

    assert [r["Id"] for r in rest["records"]] == everything[100:]


def test_a_query_is_a_snapshot(sandbox: SalesforceSandbox) -> None:
    ids = sandbox.insert_many([{"LastName": "Before"} for _ in range(2500)])
    sf = client(sandbox)
    first = sf.query("SELECT Id, LastName FROM Contact ORDER BY Id", headers=BATCH)
    later = sorted(ids)[2400]

    sandbox.update(later, {"LastName": "After"})
    sandbox.hard_delete(sorted(ids)[2401])
    sandbox.insert({"LastName": "New"})
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)

    assert first["totalSize"] == 2500 and not first["done"] and len(first["records"]) == 2000
    assert second["done"] and "nextRecordsUrl" not in second
    assert [r["Id"] for r in second["records"]] == sorted(ids)[2000:]
    assert {r["LastName"] for r in second["records"]} == {"Before"}
    fresh = sf.query_all(f"SELECT LastName FROM Contact WHERE Id = '{later}'")
    assert fresh["records"][0]["LastName"] == "After"


def test_query_all_shows_soft_deletes_and_merge_losers_but_not_hard_deletes(
    sandbox: SalesforceSandbox,
) -> None:
    keep, soft, winner, loser, hard = sandbox.insert_many([{"LastName": n} for n in "ksWLh"])
    sandbox.soft_delete(soft)
    sandbox.merge(winner, loser)
    sandbox.hard_delete(hard)
    sf = client(sandbox)
    fields = "SELECT Id, IsDeleted, MasterRecordId FROM Contact ORDER BY Id"

    live = {r["Id"] for r in sf.query_all(fields)["records"]}
    every = {r["Id"]: r for r in sf.query_all(fields, include_deleted=True)["records"]}

    assert live == {keep, winner}
    assert set(every) == {keep, winner, soft, loser}
    assert every[soft]["IsDeleted"] is True and every[soft]["MasterRecordId"] is None
    assert every[loser]["IsDeleted"] is True and every[loser]["MasterRecordId"] == winner
    assert every[keep]["IsDeleted"] is False


def test_deleted_lists_soft_and_hard_deletes(sandbox: SalesforceSandbox, clock: Clock) -> None:
    start = clock.now
    soft, hard, winner, loser, undone = sandbox.insert_many([{"LastName": "x"}] * 5)
    sandbox.soft_delete(soft)
    sandbox.hard_delete(hard)
    sandbox.merge(winner, loser)
    sandbox.soft_delete(undone)
    sandbox.undelete(undone)
    clock.advance(minutes=2)
    sf = client(sandbox)

    body = sf.Contact.deleted(start - timedelta(minutes=1), clock.now)

    assert {r["id"] for r in body["deletedRecords"]} == {soft, hard, loser}
    assert body["earliestDateAvailable"] == format_datetime(
        (clock.now - timedelta(days=15)).replace(second=0)
    )
    assert body["latestDateCovered"] == format_datetime(clock.now.replace(second=0))

    sandbox.purge_deleted_before(clock.now - timedelta(minutes=1))
    after = sf.Contact.deleted(start - timedelta(minutes=1), clock.now)
    assert after["deletedRecords"] == []
    assert after["earliestDateAvailable"] == format_datetime(
        (clock.now - timedelta(minutes=1)).replace(second=0)
    )
    every = sf.query_all("SELECT Id FROM Contact", include_deleted=True)["records"]
    assert {r["Id"] for r in every} == {winner, undone}


def test_deleted_refuses_bad_windows(sandbox: SalesforceSandbox, clock: Clock) -> None:
    sf = client(sandbox)
    with pytest.raises(SalesforceMalformedRequest) as too_old:
        sf.Contact.deleted(clock.now - timedelta(days=31), clock.now)
    with pytest.raises(SalesforceMalformedRequest) as backwards:
        sf.Contact.deleted(clock.now, clock.now - timedelta(hours=1))
    with pytest.raises(SalesforceMalformedRequest) as naive:
        # simple-salesforce formats a naive datetime as "...T07:00:00:" (no zone)
        recent = clock.now.replace(tzinfo=None)
        sf.Contact.deleted(recent - timedelta(hours=1), recent)
    assert error_code(too_old) == error_code(backwards) == "INVALID_REPLICATION_DATE"
    assert error_code(naive) == "INVALID_REPLICATION_DATE"
    assert "with a zone" in naive.value.content[0]["message"]


def test_describe_and_picklist_fields(sandbox: SalesforceSandbox, tls_dir: Path) -> None:
    sf = client(sandbox)
    fields = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert "MailingCountryCode" not in fields
    assert fields["AccountId"]["relationshipName"] == "Account"
    assert fields["OwnerId"]["relationshipName"] == "Owner"
    assert fields["SystemModstamp"]["type"] == "datetime"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id, MailingCountryCode FROM Contact")
    assert error_code(caught) == "INVALID_FIELD"
    assert "No such column 'MailingCountryCode' on entity 'Contact'" in str(
        caught.value.content[0]["message"]
    )

    with SalesforceSandbox(tls_dir=tls_dir, picklists_enabled=True) as org:
        org.insert({"LastName": "Coded", "MailingCountryCode": "GB"})
        sf2 = client(org)
        names = {f["name"] for f in sf2.Contact.describe()["fields"]}
        rows = sf2.query("SELECT MailingCountryCode, MailingCountry FROM Contact")["records"]
    assert {"MailingStateCode", "MailingCountryCode"} <= names
    assert rows[0]["MailingCountryCode"] == "GB"
    assert rows[0]["MailingCountry"] == "United Kingdom"


def test_relationship_fields_come_back_nested(sandbox: SalesforceSandbox) -> None:
    acme = sandbox.insert_account("Acme", "Customer")
    with_account, without = sandbox.insert_many(
        [{"LastName": "A", "AccountId": acme}, {"LastName": "B", "DoNotCall": True, "Phone": ""}]
    )
    sf = client(sandbox)
    rows = {
        r["Id"]: r
        for r in sf.query_all(
            "SELECT Id, Account.Name, Account.Type, Owner.Name, DoNotCall, Phone FROM Contact"
        )["records"]
    }

    assert rows[with_account]["Account"] == {
        "attributes": {"type": "Account", "url": f"/services/data/v62.0/sobjects/Account/{acme}"},
        "Name": "Acme",
        "Type": "Customer",
    }
    assert rows[without]["Account"] is None
    assert rows[without]["Owner"]["Name"] == "Sandbox Admin"
    assert rows[without]["DoNotCall"] is True and rows[with_account]["DoNotCall"] is False
    assert rows[without]["Phone"] is None  # an empty text is stored as null


def test_query_errors(sandbox: SalesforceSandbox) -> None:
    sf = client(sandbox)
    cases = {
        "SELECT Id FROM Account": "INVALID_TYPE",
        "SELECT Id FROM Contact WHERE": "MALFORMED_QUERY",
        "SELECT Id FROM Contact WHERE SystemModstamp > 2026-01-01": "INVALID_QUERY_FILTER_OPERATOR",
    }
    for text, code in cases.items():
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.query(text)
        assert error_code(caught) == code, text
    with pytest.raises(SalesforceMalformedRequest) as locator:
        sf.query_more("/services/data/v62.0/query/01gXXXXXXXXXXXXXXX-2000", identifier_is_url=True)
    assert error_code(locator) == "INVALID_QUERY_LOCATOR"
    with pytest.raises(SalesforceResourceNotFound) as missing:
        sf.restful("sobjects/Nothing/here")
    assert missing.value.content == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


def test_expired_sessions_answer_401(sandbox: SalesforceSandbox, clock: Clock) -> None:
    sf = client(sandbox)
    sf.query("SELECT Id FROM Contact")
    sandbox.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as caught:
        sf.query("SELECT Id FROM Contact")
    assert error_code(caught) == "INVALID_SESSION_ID"

    sf = client(sandbox)
    clock.advance(hours=2, seconds=1)
    with pytest.raises(SalesforceExpiredSession):
        sf.Contact.describe()
    no_token = http(sandbox).get(
        f"{sandbox.url}/services/data/v62.0/query/?q=SELECT+Id+FROM+Contact"
    )
    assert no_token.status_code == 401


def test_api_limit_and_usage_header(sandbox: SalesforceSandbox) -> None:
    sf = client(sandbox)
    sf.query("SELECT Id FROM Contact")
    sf.query("SELECT Id FROM Contact")
    assert (sf.api_usage["api-usage"].used, sf.api_usage["api-usage"].total) == (2, 1_000_000)
    sandbox.set_api_limit(2)
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM Contact")
    assert caught.value.status == 403
    assert error_code(caught) == "REQUEST_LIMIT_EXCEEDED"


def test_injected_faults(sandbox: SalesforceSandbox) -> None:
    sf = client(sandbox)
    sandbox.fail_next(1, 503, "SERVER_UNAVAILABLE", "maintenance", path_contains="/query")
    sandbox.fail_next(1, 500, "UNKNOWN_EXCEPTION", "boom")
    with pytest.raises(SalesforceGeneralError) as failed:
        sf.Contact.describe()  # the first fault only matches /query paths
    assert failed.value.status == 500
    assert failed.value.content == [{"message": "boom", "errorCode": "UNKNOWN_EXCEPTION"}]
    with pytest.raises(SalesforceGeneralError) as unavailable:
        sf.query("SELECT Id FROM Contact")
    assert unavailable.value.status == 503
    assert isinstance(unavailable.value.content, str)  # an outage page, not JSON
    assert sf.query("SELECT Id FROM Contact")["done"]
    assert sandbox.api_usage == 3


def test_client_credentials_errors(sandbox: SalesforceSandbox) -> None:
    good = token(sandbox)
    assert good.status_code == 200
    body = good.json()
    assert body["instance_url"] == sandbox.url and body["token_type"] == "Bearer"
    assert abs(int(body["issued_at"]) / 1000 - sandbox.now().timestamp()) < 1
    wrong = token(sandbox, client_secret="nope")
    assert wrong.status_code == 400
    assert wrong.json() == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }
    other = token(sandbox, grant_type="password")
    assert other.status_code == 400 and other.json()["error"] == "unsupported_grant_type"


def test_jwt_bearer(tls_dir: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with SalesforceSandbox(
        tls_dir=tls_dir, jwt_public_key_pem=public, jwt_username="sync@example.com"
    ) as box:

        def grant(**claims: Any) -> requests.Response:
            base = {
                "iss": box.client_id,
                "sub": "sync@example.com",
                "aud": "https://login.salesforce.com",
                "exp": int(time.time()) + 180,
            }
            assertion = jwt.encode({**base, **claims}, key, algorithm="RS256")
            form = {
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            }
            return http(box).post(f"{box.url}/services/oauth2/token", data=form, timeout=10)

        ok = grant(aud=box.url)
        assert ok.status_code == 200
        sf = Salesforce(
            session_id=ok.json()["access_token"],
            instance_url=box.url,
            version="62.0",
            session=http(box),
        )
        assert sf.query("SELECT Id FROM Contact")["totalSize"] == 0
        assert grant().status_code == 200
        for bad in (
            {"aud": "https://example.com"},
            {"sub": "else@example.com"},
            {"iss": "other"},
            {"exp": int(time.time()) - 10},
        ):
            refused = grant(**bad)
            assert refused.status_code == 400, bad
            assert refused.json()["error"] == "invalid_grant"


def test_admin_routes(sandbox: SalesforceSandbox) -> None:
    session, base = http(sandbox), f"{sandbox.url}/_sandbox"
    one = session.post(f"{base}/contacts", json={"LastName": "One"}, timeout=10).json()["ids"]
    two = session.post(
        f"{base}/contacts",
        json={"contacts": [{"LastName": "Two"}, {"LastName": "Three"}]},
        timeout=10,
    ).json()["ids"]
    assert (
        session.patch(
            f"{base}/contacts/{one[0]}", json={"Phone": "+1 415 555 1212"}, timeout=10
        ).status_code
        == 204
    )
    assert session.delete(f"{base}/contacts/{two[0]}?hard=true", timeout=10).status_code == 204
    assert session.delete(f"{base}/contacts/{two[1]}", timeout=10).status_code == 204
    live = session.get(f"{base}/contacts", timeout=10).json()
    assert [(r["Id"], r["Phone"]) for r in live] == [(one[0], "+1 415 555 1212")]
    assert session.post(f"{base}/contacts", json={"Nope": 1}, timeout=10).status_code == 400
    session.post(
        f"{base}/fail-next",
        json={"n": 1, "status": 500, "error_code": "X", "message": "m"},
        timeout=10,
    )
    session.post(f"{base}/expire-sessions", timeout=10)
    assert session.get(f"{base}/stats", timeout=10).json() == {"api_usage": 0, "requests": 0}
    assert sandbox.contact(two[1]) is not None and sandbox.contact(two[0]) is None


def test_late_rows_become_visible_with_their_old_stamp(
    sandbox: SalesforceSandbox, clock: Clock
) -> None:
    early = clock.now - timedelta(minutes=5)
    sandbox.insert({"LastName": "Seen"})
    late = sandbox.insert_late({"LastName": "Late"}, stamp=early)
    sf = client(sandbox)
    rows = sf.query_all(ORDERED)["records"]
    assert rows[0]["Id"] == late
    assert rows[0]["SystemModstamp"] == format_datetime(early)
