"""One Salesforce org feeding Talkdesk, Everbridge and Conga at once through the real engine,
over real HTTP: each destination converges on its own rows, one failing destination never holds
back the others, and Everbridge's full replacement never clears a field we own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from dialsync.destinations.common import DestinationConfigError
from dialsync.engine import RunReport
from dialsync.sandbox.demo import held, run_demo
from dialsync.sandbox.harness import Sandboxes
from tests.integration.helpers import engine_for, person, run

ALL = ("talkdesk", "everbridge", "conga")


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandboxes]:
    with Sandboxes(tmp_path / "box", destinations=ALL) as found:
        yield found


def holds(box: Sandboxes, name: str) -> set[str]:
    ours, _ = held(box, name)
    assert all(n == 1 for n in ours.values()), f"{name} holds duplicates"
    return set(ours)


def failed(report: RunReport) -> dict[str, str]:
    """The run's failed destinations by name (the engine keys them name:target)."""
    return {key.partition(":")[0]: reason for key, reason in report.failed.items()}


def writes(box: Sandboxes) -> dict[str, int]:
    return {name: int(box.sandbox(name).stats()["writes"]) for name in box.destinations}


def statuses(box: Sandboxes, db_url: str) -> dict[tuple[str, str], int]:
    counts = engine_for(box, db_url).store.status_counts()
    return {(dest, status): n for (dest, _target, status), n in counts.items()}


@pytest.mark.slow
def test_one_pull_feeds_all_three_and_each_converges(box: Sandboxes, db_url: str) -> None:
    sf = box.salesforce
    ids = sf.insert_many([person(i) for i in range(30)])
    dnc = sf.insert(person(100, DoNotCall=True))
    ann = sf.insert(
        {
            "FirstName": "Ann",
            "LastName": "Lee",
            "MobilePhone": "+1 415 200 0001",
            "Phone": "+44 20 7946 0958",
            "Email": "ann@example.com",
            "Title": "Buyer",
            "MailingCountry": "United States",
        }
    )
    queries = len(sf.server.requests("GET", "/query"))
    report = run(box, db_url)
    # one pull for all three (and the initial load's SELECT COUNT())
    assert len(sf.server.requests("GET", "/query")) - queries == 2
    assert not report.failed
    want = {*ids, ann}
    assert {name: holds(box, name) for name in ALL} == dict.fromkeys(ALL, want)
    assert report.counts["created"] == 3 * len(want)
    # the same contact, mapped for each system
    [td] = [r for r in box.talkdesk.records(box.list_id) if r["external_id"] == ann]
    assert [p["phone_number"] for p in td["phone_numbers"]] == ["+14152000001", "+442079460958"]
    eb = box.everbridge.contact(ann)
    assert eb is not None
    prompt = {i: name for i, (name, _) in box.everbridge.paths.items()}  # stored by pathId
    assert [(prompt[p["pathId"]], p["countryCode"], p["value"]) for p in eb["paths"]] == [
        ("Mobile Phone", "US", "+14152000001"),
        ("Work Phone", "GB", "+442079460958"),
    ]
    assert (eb["firstName"], eb["lastName"], eb["recordTypeId"]) == ("Ann", "Lee", 1533823015714817)
    cg = box.conga.contact(ann)
    assert cg is not None
    assert (cg["MobilePhone"], cg["Phone"], cg["Email"], cg["Title"]) == (
        "+14152000001",
        "+442079460958",
        "ann@example.com",
        "Buyer",
    )
    # each destination has rows of its own in the sync table
    counts = statuses(box, db_url)
    for name in ALL:
        assert counts[(name, "synced")] == len(want)
        assert counts[(name, "skipped")] == 1  # the DoNotCall contact

    time.sleep(1.1)  # SystemModstamp has one-second precision
    sf.update(ids[0], {"LastName": "Changed"})
    sf.update(ids[1], {"DoNotCall": True})
    sf.soft_delete(ids[2])
    sf.update(dnc, {"DoNotCall": False})
    new = sf.insert(person(200))
    report = run(box, db_url)
    assert not report.failed
    want = (want - {ids[1], ids[2]}) | {dnc, new}
    assert {name: holds(box, name) for name in ALL} == dict.fromkeys(ALL, want)
    assert [r["last_name"] for r in box.talkdesk.records(box.list_id) if r["external_id"] == ids[0]]
    assert (box.everbridge.contact(ids[0]) or {})["lastName"] == "Changed"
    assert (box.conga.contact(ids[0]) or {})["LastName"] == "Changed"

    before = writes(box)
    report = run(box, db_url)
    assert writes(box) == before  # nothing changed: no destination is written to
    assert report.counts["unchanged"] == 3 * (len(want) + 2)


@pytest.mark.parametrize("failure", ["wrong_credentials", "server_down"])
def test_a_failing_destination_never_holds_back_the_others(
    box: Sandboxes, sqlite_url: str, failure: str
) -> None:
    sf = box.salesforce
    ids = set(sf.insert_many([person(i) for i in range(12)]))
    overrides: dict[str, Any] = {}
    if failure == "wrong_credentials":
        failing = "conga"
        wrong = SecretStr("not-the-secret")
        overrides["conga"] = box.settings().conga.model_copy(update={"client_secret": wrong})
    else:
        failing = "everbridge"
        box.everbridge.stop()
    report = run(box, sqlite_url, settings=overrides)
    assert set(failed(report)) == {failing}
    healthy = [name for name in ALL if name != failing]
    assert {name: holds(box, name) for name in healthy} == dict.fromkeys(healthy, ids)
    store = engine_for(box, sqlite_url).store
    [last] = store.recent_runs(1)
    assert last["status"] == "partial" and failing in str(last["error"])
    # its rows wait in the table for the destination to come back
    assert statuses(box, sqlite_url)[(failing, "pending")] == len(ids)

    if failure == "server_down":
        box.everbridge.start()  # the same port: the settings still point at it
    report = run(box, sqlite_url)
    assert not report.failed
    assert {name: holds(box, name) for name in ALL} == dict.fromkeys(ALL, ids)
    assert store.recent_runs(1)[0]["status"] == "ok"


def test_conga_schema_error_stops_conga_alone_and_names_the_field(
    box: Sandboxes, sqlite_url: str
) -> None:
    box.conga.schema.discard("AssistantPhone")
    ids = set(box.salesforce.insert_many([person(i) for i in range(5)]))
    report = run(box, sqlite_url)
    assert set(failed(report)) == {"conga"}
    assert "AssistantPhone" in failed(report)["conga"]
    assert "DIALSYNC_CONGA__SKIP_FIELDS" in failed(report)["conga"]
    assert holds(box, "talkdesk") == holds(box, "everbridge") == ids
    # stopped at the first refusal (one more call only if a slow answer was retried)
    assert box.conga.stats()["writes"] <= 2
    # the operator leaves the field out: the queued rows go without a resync
    fixed = box.settings().conga.model_copy(update={"skip_fields": "AssistantPhone"})
    report = run(box, sqlite_url, settings={"conga": fixed})
    assert not report.failed
    assert holds(box, "conga") == ids


def test_conga_schema_error_exits_2_when_conga_is_the_only_destination(tmp_path: Path) -> None:
    with Sandboxes(tmp_path / "box", destinations=("conga",)) as box:
        box.conga.schema.discard("AssistantPhone")
        box.salesforce.insert(person(1))
        clean = {k: v for k, v in os.environ.items() if not k.startswith("DIALSYNC_")}
        result = subprocess.run(
            [sys.executable, "-m", "dialsync.cli", "sync"],
            env={**clean, **box.env()},
            cwd=tmp_path,
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert "AssistantPhone" in result.stderr
        assert "DIALSYNC_CONGA__SKIP_FIELDS" in result.stderr


def test_everbridge_unknown_record_type_fails_the_run_until_fixed(
    tmp_path: Path, sqlite_url: str
) -> None:
    with Sandboxes(tmp_path / "box", destinations=("everbridge",)) as box:
        ids = set(box.salesforce.insert_many([person(i) for i in range(3)]))
        wrong = box.settings().everbridge.model_copy(update={"record_type_name": "Contractor"})
        with pytest.raises(DestinationConfigError) as caught:
            run(box, sqlite_url, settings={"everbridge": wrong})
        assert caught.value.setting == "DIALSYNC_EVERBRIDGE__RECORD_TYPE_NAME"
        store = engine_for(box, sqlite_url).store
        assert store.recent_runs(1)[0]["status"] == "failed"
        assert box.everbridge.contacts() == []
        # fixed: the rows queued with the wrong type go at once (their claims were released)
        report = run(box, sqlite_url)
        assert report.counts["created"] == len(ids)
        assert holds(box, "everbridge") == ids
        assert {c["recordTypeId"] for c in box.everbridge.contacts()} == {1533823015714817}


def test_everbridge_full_replacement_never_clears_what_we_own(
    tmp_path: Path, sqlite_url: str
) -> None:
    with Sandboxes(tmp_path / "box", destinations=("everbridge",)) as box:
        eb_settings = box.settings().everbridge.model_copy(
            update={
                "attributes": {"title": "Job Title", "account_name": "Company"},
                "email_path": "Email Address",
            }
        )
        settings = {"settings": {"everbridge": eb_settings}}
        sf, eb = box.salesforce, box.everbridge
        acme = sf.insert_account("Acme", "Customer")
        ann = sf.insert(
            {
                "FirstName": "Ann",
                "LastName": "Lee",
                "AccountId": acme,
                "MobilePhone": "+1 415 200 0001",
                "Phone": "+44 20 7946 0958",
                "Email": "ann@example.com",
                "Title": "Buyer",
                "MailingCountry": "United States",
            }
        )
        run(box, sqlite_url, **settings)
        first = eb.contact(ann)
        assert first is not None
        ours = ("firstName", "recordTypeId", "paths", "contactAttributes")
        prompt = {i: name for i, (name, _) in eb.paths.items()}  # stored by pathId
        assert [prompt[p["pathId"]] for p in first["paths"]] == [
            "Mobile Phone",
            "Work Phone",
            "Email Address",
        ]
        assert {a["name"]: a["values"] for a in first["contactAttributes"]} == {
            "Job Title": ["Buyer"],
            "Company": ["Acme"],
        }

        time.sleep(1.1)
        sf.update(ann, {"LastName": "Lee-Smith"})  # one field changes in Salesforce
        run(box, sqlite_url, **settings)
        after = eb.contact(ann)
        assert after is not None and after["lastName"] == "Lee-Smith"
        # the write replaced the whole contact, and everything we own was in it
        assert {k: after[k] for k in ours} == {k: first[k] for k in ours}

        # edited by hand in Everbridge: our fields come back with the next change
        shift = {"name": "Shift", "values": ["Night"], "orgAttrId": eb.attributes["Shift"]}
        eb.edit(ann, firstName="Hand", paths=[], contactAttributes=[shift], timezoneId="UTC")
        time.sleep(1.1)
        sf.update(ann, {"Title": "Head Buyer"})
        run(box, sqlite_url, **settings)
        restored = eb.contact(ann)
        assert restored is not None
        assert restored["firstName"] == "Ann" and restored["paths"] == first["paths"]
        assert {a["name"]: a["values"] for a in restored["contactAttributes"]} == {
            "Job Title": ["Head Buyer"],
            "Company": ["Acme"],
        }
        # what we do not own is cleared by the full replacement (docs/destinations.md says so)
        assert "timezoneId" not in restored


@pytest.mark.slow
def test_the_demo_runs_against_all_three(tmp_path: Path) -> None:
    lines: list[str] = []
    assert run_demo(contacts=150, workdir=str(tmp_path), echo=lines.append, destinations=ALL)
    checks = [line for line in lines if " check: " in line]
    # three syncs, then the stream's changes: each followed by a check of every destination
    assert len(checks) == 4 * len(ALL) and all(line.endswith("-> OK") for line in checks)
    assert any("reached the lists in" in line for line in lines)
