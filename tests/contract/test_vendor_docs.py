"""What the vendors' own documents say, and the adapters relied on otherwise (issue 12).

Each test names the numbered finding it covers. The sandboxes answer as the specs document
(see their docstrings); these tests pin the adapters' side of each finding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dialsync.destinations.base import Outcome, WriteItem
from dialsync.destinations.common import DestinationConfigError
from dialsync.destinations.conga import CongaDestination
from dialsync.destinations.everbridge import EverbridgeDestination
from dialsync.errors import AuthError
from dialsync.sandbox.conga import CongaSandbox
from dialsync.sandbox.everbridge import EverbridgeSandbox
from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.server import Request, Response
from tests.contract.kits import cg_settings, eb_settings, record, upsert
from tests.contract.spec_check import checked


def bodies(box: EverbridgeSandbox | CongaSandbox, method: str, path_part: str) -> list[Any]:
    return [
        e.request.json()
        for e in box.server.exchanges
        if e.request.method == method and path_part in e.request.path
    ]


# -- 1. the token request names an OpenID scope ------------------------------------------------
def test_1_everbridge_token_request_asks_for_an_openid_scope(eb: EverbridgeSandbox) -> None:
    dest = EverbridgeDestination(eb_settings(eb))
    dest.open()  # fails without a scope: the token endpoint refuses the request
    [token] = [e.request for e in eb.server.exchanges if "tokens" in e.request.path]
    form = token.form()
    assert form["scope"].split()[0] == "openid"
    assert {"grant_type", "client_id", "client_secret", "scope"} <= set(form)


def test_1_everbridge_scope_without_openid_is_refused_by_settings() -> None:
    from dialsync.errors import ConfigError
    from dialsync.settings import EverbridgeSettings

    with pytest.raises((ConfigError, ValueError)):
        EverbridgeSettings(scope="user-profile role")


# -- 2. batch-level answers, confirmed per contact by one batched read -------------------------
def test_2_everbridge_outcomes_come_from_the_documented_batch_answer(
    eb: EverbridgeSandbox,
) -> None:
    dest = EverbridgeDestination(eb_settings(eb))
    dest.open()
    assert upsert(dest, 1, 2, 3) == [Outcome.OK] * 3
    # one read confirms the whole batch (GET ?externalIds=a,b,c), not one read per contact
    reads = [
        e.request
        for e in eb.server.exchanges
        if e.request.method == "GET" and e.request.arg("externalIds")
    ]
    assert len(reads) == 1 and len(str(reads[0].arg("externalIds")).split(",")) == 3
    gone = dest.delete([WriteItem(record(n).external_id) for n in (1, 2)])
    assert [r.outcome for r in gone] == [Outcome.OK, Outcome.OK]
    assert [c["externalId"] for c in eb.contacts()] == [record(3).external_id]


def test_2_everbridge_a_contact_the_batch_dropped_is_not_taken_as_written() -> None:
    """A server that applies a batch's valid contacts and drops the others, answering 100 OK
    all the same (the sandbox's undocumented skip_invalid): the read after the write tells."""
    with EverbridgeSandbox(skip_invalid=True) as box, checked("everbridge", box):
        dest = EverbridgeDestination(eb_settings(box))
        dest.open()
        good, bad = record(1), record(2)
        spoiled = dict(dest.render(bad))
        spoiled["paths"] = [{"prompt": "Mobile Phone", "countryCode": "US", "value": "12"}]
        results = dest.create(
            [
                WriteItem(good.external_id, None, dest.render(good)),
                WriteItem(bad.external_id, None, spoiled),
            ]
        )
        assert [r.outcome for r in results] == [Outcome.OK, Outcome.REJECTED]
        assert results[1].code


def test_2_everbridge_one_refused_contact_is_isolated_by_halving(eb: EverbridgeSandbox) -> None:
    dest = EverbridgeDestination(eb_settings(eb))
    dest.open()
    items = [WriteItem(record(n).external_id, None, dest.render(record(n))) for n in range(1, 9)]
    bad = items[5]
    path = {"prompt": "Mobile Phone", "countryCode": "US", "value": "12"}
    spoiled = {**(bad.payload or {}), "paths": [path]}
    items[5] = WriteItem(bad.external_id, None, spoiled)
    results = dest.create(items)
    outcomes = {r.external_id: r.outcome for r in results}
    assert outcomes.pop(bad.external_id) is Outcome.REJECTED
    assert set(outcomes.values()) == {Outcome.OK}
    assert len(eb.contacts()) == 7
    # halving 8 to find 1: at most 1 + 2 * log2(8) = 7 writes, not one per contact
    assert eb.stats()["upserts_batch"] <= 7


# -- 3. documented 401s; an unknown id on delete is already gone --------------------------------
def test_3_everbridge_delete_of_a_contact_removed_by_hand_is_already_gone(
    eb: EverbridgeSandbox,
) -> None:
    dest = EverbridgeDestination(eb_settings(eb))
    dest.open()
    assert upsert(dest, 1, 2, 3) == [Outcome.OK] * 3
    eb.remove(record(1).external_id)
    ids = [record(n).external_id for n in (1, 2)]
    results = dest.delete([WriteItem(i, i) for i in ids])
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
    assert [c["externalId"] for c in eb.contacts()] == [record(3).external_id]
    # the 401 is about the contacts, not the token: no renewal for it
    assert eb.stats()["token_requests"] == 1


def test_3_everbridge_wrong_organization_reads_the_documented_message(
    eb: EverbridgeSandbox,
) -> None:
    dest = EverbridgeDestination(eb_settings(eb, organization_id="999"))
    with pytest.raises(DestinationConfigError) as caught:
        dest.open()
    assert caught.value.setting == "DIALSYNC_EVERBRIDGE__ORGANIZATION_ID"
    assert "Org 999 is invalid." in caught.value.message


# -- 4. the bulk upsert updates by ExternalId --------------------------------------------------
def test_4_conga_bulk_upsert_updates_known_records_in_one_call(cg: CongaSandbox) -> None:
    dest = CongaDestination(cg_settings(cg))
    assert upsert(dest, 1, 2) == [Outcome.OK, Outcome.OK]
    changed = [record(n, last_name="Changed") for n in (1, 2)]
    results = dest.update(
        [WriteItem(r.external_id, r.external_id, dest.render(r)) for r in changed]
    )
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
    stats = cg.stats()
    assert (stats["upserts_bulk"], stats.get("upserts_single", 0)) == (2, 0)
    assert {c["LastName"] for c in cg.contacts()} == {"Changed"}
    [patch, _] = [e.request for e in cg.server.exchanges if e.request.method == "PATCH"]
    assert patch.arg("UpdateByField") == "ExternalId"


# -- 5. the total comes from the query, not the listing ----------------------------------------
def test_5_conga_open_counts_every_record(cg: CongaSandbox) -> None:
    dest = CongaDestination(cg_settings(cg))
    assert upsert(dest, 1, 2, 3) == [Outcome.OK] * 3
    cg.add_contact({"ExternalId": "erp-1", "LastName": "Import"})
    assert dest.open().records_count == 4
    [query] = [e.request for e in cg.server.exchanges if e.request.path.endswith("/query")]
    assert query.arg("IncludeTotalCount") == "true"


# -- 6. the single PUT updates only; new records are created -----------------------------------
def test_6_conga_fallback_creates_new_records_and_updates_known_ones(cg: CongaSandbox) -> None:
    dest = CongaDestination(cg_settings(cg))
    assert upsert(dest, 1) == [Outcome.OK]
    known, new, bad = record(1, last_name="Changed"), record(2), record(3)
    spoiled = {**dest.render(bad), "Email": "not an address"}
    results = dest.create(
        [
            WriteItem(known.external_id, None, dest.render(known)),
            WriteItem(new.external_id, None, dest.render(new)),
            WriteItem(bad.external_id, None, spoiled),
        ]
    )
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK, Outcome.REJECTED]
    assert (cg.contact(known.external_id) or {})["LastName"] == "Changed"
    assert cg.contact(new.external_id) is not None and cg.contact(bad.external_id) is None
    # the single PUT's body is the Contact schema: the path carries the key
    for body in bodies(cg, "PUT", "/by-externalId/"):
        assert "ExternalId" not in body and "Id" not in body


# -- 7. the envelope: StatusCode names, Errors [{Message}], delete Data: true -------------------
def test_7_conga_delete_reads_success_and_data(cg: CongaSandbox) -> None:
    dest = CongaDestination(cg_settings(cg))
    assert upsert(dest, 1, 2, 3) == [Outcome.OK] * 3
    refusals = {
        # as the spec's own 403 example answers: Success false, StatusCode "OK"
        record(1).external_id: {"Success": False, "Errors": [{"Message": "the record is locked"}]},
        # a delete's Data is documented as true; false says nothing was deleted
        record(2).external_id: {"Success": True, "Data": False},
    }

    def refuse_delete(request: Request) -> Response | None:
        refusal = refusals.get(request.path.rsplit("/", 1)[-1])
        if request.method == "DELETE" and refusal is not None:
            return Response(200, {**refusal, "StatusCode": "OK"})
        return None

    cg.server.before_request = refuse_delete
    results = dest.delete([WriteItem(record(n).external_id) for n in (1, 2, 3)])
    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.REJECTED, Outcome.OK]
    assert "locked" in results[0].message


def test_7_conga_errors_carry_conga_s_message() -> None:
    with CongaSandbox(require_user_id="user-7") as box, checked("conga", box):
        with pytest.raises(AuthError) as caught:
            CongaDestination(cg_settings(box)).open()
        assert "user-id header" in caught.value.message


# -- 8. numeric ids preferred once known; doctor shows them; externalId <= 50 ------------------
def test_8_everbridge_sends_the_ids_open_resolved(eb: EverbridgeSandbox) -> None:
    dest = EverbridgeDestination(eb_settings(eb, email_path="Email Address"))
    dest.open()
    assert upsert(dest, 1) == [Outcome.OK]
    [batch] = bodies(eb, "POST", "/batch")
    [contact] = batch
    assert contact["recordTypeId"] == 1533823015714817 and "recordTypeName" not in contact
    assert [p["pathId"] for p in contact["paths"]] == [241901148045319, 241901148045323]
    assert all("prompt" not in p for p in contact["paths"])
    assert dest.resolved_ids() == {
        "record type": {"Employee": 1533823015714817},
        "paths": {
            "Mobile Phone": 241901148045319,
            "Work Phone": 241901148045320,
            "Home Phone": 241901148045321,
            "Other Phone": 241901148045322,
            "Email Address": 241901148045323,
        },
    }


def test_8_everbridge_unknown_path_name_is_a_config_error(eb: EverbridgeSandbox) -> None:
    dest = EverbridgeDestination(eb_settings(eb, paths={"MOBILE": "Cell"}))
    with pytest.raises(DestinationConfigError) as caught:
        dest.open()
    assert caught.value.setting == "DIALSYNC_EVERBRIDGE__PATHS"
    assert "Cell" in caught.value.message


def test_8_everbridge_external_id_over_50_is_rejected_alone(eb: EverbridgeSandbox) -> None:
    dest = EverbridgeDestination(eb_settings(eb))
    dest.open()
    good = record(1)
    long_id = "x" * 51
    payload = {**dest.render(good), "externalId": long_id}
    results = dest.create(
        [WriteItem(good.external_id, None, dest.render(good)), WriteItem(long_id, None, payload)]
    )
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.REJECTED]
    assert results[1].code == "EXTERNAL_ID_TOO_LONG"
    assert [c["externalId"] for c in eb.contacts()] == [good.external_id]


def test_8_doctor_shows_everbridge_numeric_ids(tmp_path: Path) -> None:
    from dialsync.doctor import run_doctor

    with (
        Sandboxes(tmp_path / "box", destinations=("everbridge",)) as box,
        checked("everbridge", box.everbridge),
    ):
        settings = box.settings().model_copy(
            update={"database_url": f"sqlite:///{tmp_path / 'state.db'}"}
        )
        checks = {c.name: c for c in run_doctor(lambda: settings, scan=False).checks}
    ids = checks["everbridge ids"]
    assert ids.status == "ok"
    assert "record type Employee (recordTypeId:1533823015714817)" in ids.detail
    assert "path Mobile Phone (pathId:241901148045319)" in ids.detail


def test_8_everbridge_keeps_the_seed_names_when_listings_are_refused() -> None:
    """An API user not allowed to list record types and paths: the names seed 002 shows
    working are sent (not checked against the batch schema, which wants the ids)."""
    with EverbridgeSandbox() as box:
        box.server.record = True

        def forbid_listings(request: Request) -> Response | None:
            if "/recordTypes/" in request.path or "/contactPaths/" in request.path:
                return Response(403, {"message": "Forbidden", "status": 403})
            return None

        box.server.before_request = forbid_listings
        dest = EverbridgeDestination(eb_settings(box))
        dest.open()
        assert upsert(dest, 1) == [Outcome.OK]
        [[contact]] = bodies(box, "POST", "/batch")
        assert contact["recordTypeName"] == "Employee" and "recordTypeId" not in contact
        assert contact["paths"][0]["prompt"] == "Mobile Phone"
        assert dest.resolved_ids() == {"record type": {}, "paths": {}}
