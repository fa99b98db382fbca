"""What only Everbridge or only Conga asks of its adapter, against its sandbox over HTTP:
Everbridge's id_token bearer, seed errors, full replacement and write throttle; Conga's
unknown-field errors, user-id header and partial updates."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dialsync.destinations.base import Outcome, WriteItem
from dialsync.destinations.common import DestinationConfigError
from dialsync.destinations.conga import CongaDestination
from dialsync.destinations.everbridge import EverbridgeDestination, render_contact
from dialsync.destinations.http import LocalRateLimiter
from dialsync.errors import AuthError, ConfigError
from dialsync.models import Phone, PhoneType
from dialsync.sandbox.conga import CONTACT_SCHEMA, CongaSandbox
from dialsync.sandbox.everbridge import EverbridgeSandbox
from dialsync.settings import EverbridgeSettings
from tests.contract.kits import cg_settings, eb_settings, record, upsert
from tests.contract.spec_check import checked


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingLimiter:
    def __init__(self) -> None:
        self.acquired = 0

    def acquire(self) -> None:
        self.acquired += 1

    def pause(self, seconds: float) -> None:
        return


# -- Everbridge -----------------------------------------------------------------------------
def test_everbridge_bearer_is_the_id_token(eb: EverbridgeSandbox) -> None:
    form = {
        "grant_type": "password",
        "client_id": eb.client_id,
        "client_secret": eb.client_secret,
        "username": eb.username,
        "password": eb.password,
        "scope": "openid user-profile role",
    }
    tokens = httpx.post(eb.token_url, data=form).json()
    path = f"{eb.api_url}/contacts/{eb.organization_id}"
    as_access = httpx.get(path, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    as_id = httpx.get(path, headers={"Authorization": f"Bearer {tokens['id_token']}"})
    assert (as_access.status_code, as_id.status_code) == (401, 200)
    dest = EverbridgeDestination(eb_settings(eb))
    dest.open()
    assert upsert(dest, 1, 2) == [Outcome.OK, Outcome.OK]
    list(dest.scan())
    # one token for all of it: cached for its 8 hours
    assert eb.stats()["token_requests"] == 2  # ours, and the one this test asked for


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ({"record_type_name": "Contractor"}, "DIALSYNC_EVERBRIDGE__RECORD_TYPE_NAME"),
        ({"record_type_id": 42}, "DIALSYNC_EVERBRIDGE__RECORD_TYPE_ID"),
    ],
)
def test_everbridge_unknown_record_type_names_the_setting(
    eb: EverbridgeSandbox, override: dict[str, Any], setting: str
) -> None:
    dest = EverbridgeDestination(eb_settings(eb, **override))
    with pytest.raises(DestinationConfigError) as caught:
        upsert(dest, 1)
    assert caught.value.setting == setting
    assert eb.contacts() == []


def test_everbridge_render_owns_the_whole_contact() -> None:
    settings = EverbridgeSettings(
        attributes={"title": "Job Title", "account_name": "Company"},
        email_path="241901148045323",
        record_type_id=1533823015714817,
    )
    rec = record(1).model_copy(
        update={
            "phones": (
                Phone(number="+14152000001", type=PhoneType.MOBILE, region="US"),
                Phone(number="+442079460958", type=PhoneType.OFFICE, region="GB"),
                Phone(number="+14152000002", type=PhoneType.EXTRA_1, region="US"),
                Phone(number="+14152000003", type=PhoneType.EXTRA_2, region="US"),
            )
        }
    )
    contact = render_contact(rec, settings)
    assert contact["recordTypeId"] == 1533823015714817 and "recordTypeName" not in contact
    assert contact["paths"] == [  # preference order; the second "Other Phone" is left out
        {"prompt": "Mobile Phone", "countryCode": "US", "value": "+14152000001"},
        {"prompt": "Work Phone", "countryCode": "GB", "value": "+442079460958"},
        {"prompt": "Other Phone", "countryCode": "US", "value": "+14152000002"},
        {"pathId": 241901148045323, "countryCode": "US", "value": "p1@example.com"},
    ]
    # only the attributes we own, and only those with a value
    assert contact["contactAttributes"] == [{"name": "Job Title", "values": ["Buyer"]}]
    national = render_contact(rec, settings.model_copy(update={"phone_format": "national"}))
    assert national["paths"][1]["value"] == "2079460958"


def test_everbridge_national_values_are_accepted_too(eb: EverbridgeSandbox) -> None:
    dest = EverbridgeDestination(eb_settings(eb, phone_format="national"))
    assert upsert(dest, 1) == [Outcome.OK]
    [stored] = eb.contacts()
    assert stored["paths"][0]["value"] == "4152000001"


def test_everbridge_sandbox_clears_what_a_write_omits(eb: EverbridgeSandbox) -> None:
    """The sandbox keeps the reference's full replacement, so the engine tests can rely on it."""
    dest = EverbridgeDestination(eb_settings(eb, attributes={"title": "Job Title"}))
    rec = record(1)
    assert upsert(dest, 1) == [Outcome.OK]
    partial = {"externalId": rec.external_id, "firstName": "F", "lastName": "L"}
    partial["recordTypeName"] = "Employee"
    [result] = dest.update([WriteItem(rec.external_id, rec.external_id, partial)])
    assert result.outcome is Outcome.OK
    stored = eb.contact(rec.external_id)
    assert stored is not None
    assert "paths" not in stored and "contactAttributes" not in stored


def test_everbridge_writes_are_throttled_and_reads_are_not(eb: EverbridgeSandbox) -> None:
    limiter = CountingLimiter()
    dest = EverbridgeDestination(eb_settings(eb), limiter=limiter)
    dest.open()
    upsert(dest, 1, 2)
    list(dest.scan())
    dest.delete([WriteItem(record(1).external_id, record(1).external_id)])
    assert limiter.acquired == 2  # the upsert and the delete; not the open or the scan


def test_everbridge_300_a_minute_is_waited_out() -> None:
    clock = FakeClock()
    with EverbridgeSandbox(writes_per_minute=2, clock=clock) as box, checked("everbridge", box):
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            clock.advance(seconds)

        dest = EverbridgeDestination(
            eb_settings(box, max_backoff_seconds=120),
            limiter=LocalRateLimiter(None, clock=clock, sleep=sleep),
            sleep=sleep,
        )
        outcomes = [upsert(dest, n) for n in (1, 2, 3)]
        assert outcomes == [[Outcome.OK]] * 3
        assert sleeps == [60.0]  # the third write waited for the minute to roll over
        assert box.stats()["status_counts"][429] == 1


# -- Conga ----------------------------------------------------------------------------------
def test_conga_unknown_field_is_a_config_error_naming_it(cg: CongaSandbox) -> None:
    cg.schema.discard("AssistantPhone")
    dest = CongaDestination(cg_settings(cg))
    with pytest.raises(DestinationConfigError) as caught:
        upsert(dest, 1, 2)
    assert "AssistantPhone" in caught.value.message
    assert caught.value.setting == "DIALSYNC_CONGA__SKIP_FIELDS"
    assert cg.stats()["writes"] == 1  # stopped at once, not record by record
    skipping = CongaDestination(cg_settings(cg, skip_fields="AssistantPhone"))
    assert upsert(skipping, 1, 2) == [Outcome.OK, Outcome.OK]


def test_conga_skip_fields_must_name_optional_fields_we_send(cg: CongaSandbox) -> None:
    for bad in ("LastName", "Birthdate"):
        with pytest.raises(ConfigError) as caught:
            CongaDestination(cg_settings(cg, skip_fields=bad))
        assert caught.value.setting == "DIALSYNC_CONGA__SKIP_FIELDS"


def test_conga_user_id_header() -> None:
    with CongaSandbox(require_user_id="user-7") as box, checked("conga", box):
        with pytest.raises(AuthError) as caught:
            CongaDestination(cg_settings(box)).open()
        assert "DIALSYNC_CONGA__USER_ID" in caught.value.message
        dest = CongaDestination(cg_settings(box, user_id="user-7"))
        dest.open()
        assert upsert(dest, 1) == [Outcome.OK]


def test_conga_payload_mirrors_salesforce_and_clears_what_is_gone(cg: CongaSandbox) -> None:
    dest = CongaDestination(cg_settings(cg))
    rec = record(1)
    payload = dest.render(rec)
    assert set(payload) <= CONTACT_SCHEMA and "Id" not in payload
    assert upsert(dest, 1) == [Outcome.OK]
    stored = cg.contact(rec.external_id)
    assert stored is not None
    assert (stored["MobilePhone"], stored["Email"], stored["Title"]) == (
        "+14152000001",
        "p1@example.com",
        "Buyer",
    )
    # The update is partial in Conga: a phone the contact lost is sent as null, not left out.
    moved = rec.model_copy(
        update={"phones": (Phone(number="+14152000009", type=PhoneType.HOME, region="US"),)}
    )
    [result] = dest.update([WriteItem(rec.external_id, rec.external_id, dest.render(moved))])
    assert result.outcome is Outcome.OK
    stored = cg.contact(rec.external_id)
    assert stored is not None
    assert "MobilePhone" not in stored and stored["HomePhone"] == "+14152000009"


def test_conga_valid_batch_is_one_bulk_call_and_a_bad_one_falls_back(cg: CongaSandbox) -> None:
    dest = CongaDestination(cg_settings(cg))
    assert upsert(dest, 1, 2, 3) == [Outcome.OK] * 3
    assert (cg.stats()["upserts_bulk"], cg.stats().get("upserts_single", 0)) == (1, 0)
    good, bad = record(4), record(5)
    spoiled = {**dest.render(bad), "Email": "nope"}
    results = dest.create(
        [
            WriteItem(good.external_id, None, dest.render(good)),
            WriteItem(bad.external_id, None, spoiled),
        ]
    )
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.REJECTED]
    assert "Email" in results[1].message
