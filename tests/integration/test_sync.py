"""The core sync, end to end over real HTTP: real simple-salesforce and httpx clients against
the loopback sandboxes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import math
import time
from datetime import timedelta

from dialsync.sandbox.harness import Sandboxes
from tests.integration.helpers import engine_for, ours, person, run, writes


def test_initial_load_maps_contacts_and_second_run_writes_nothing(
    sandboxes: Sandboxes, db_url: str
) -> None:
    sf = sandboxes.salesforce
    acme = sf.insert_account("Acme", "Customer")
    joey = sf.insert(
        {
            "FirstName": "  Joey ",
            "LastName": "Tribbiani",
            "AccountId": acme,
            "MobilePhone": "+351 929 312 312",
            "Phone": "+1 (415) 555-1212 x23",
            "HomePhone": "+351929312312",
            "Email": "joey@example.com",
            "Title": "Actor",
            "MailingCity": "Lisbon",
            "MailingCountry": "Portugal",
        }
    )
    dnc = sf.insert(person(2, DoNotCall=True))
    nophone = sf.insert({"FirstName": "No", "LastName": "Phone", "Phone": "n/a"})
    blank = sf.insert(
        {
            "FirstName": "",
            "LastName": "Solo",
            "MobilePhone": "020 7946 0958",
            "MailingCountry": "United Kingdom",
        }
    )

    report = run(sandboxes, db_url)
    assert report.counts["created"] == 2
    assert report.counts["skipped"] == 2
    listed = ours(sandboxes)
    assert set(listed) == {joey, blank}
    rec = listed[joey]
    assert rec["first_name"] == "Joey" and rec["last_name"] == "Tribbiani"
    assert rec["phone_numbers"] == [
        {"phone_number": "+351929312312", "phone_type": "MOBILE"},
        {"phone_number": "+14155551212", "phone_type": "OFFICE"},
    ]
    # a Portuguese mobile spans three zones (mainland, Azores, Madeira): the first phone with
    # exactly one zone gives it
    assert rec["timezone"] == "America/Los_Angeles"
    assert rec["external_url"] == f"{sf.url}/lightning/r/Contact/{joey}/view"
    assert rec["sync_external_id"] is True
    assert rec["extra_data"]["account_name"] == "Acme"
    assert rec["extra_data"]["office_extension"] == "23"
    assert listed[blank]["first_name"]  # never empty
    assert listed[blank]["phone_numbers"][0]["phone_number"] == "+442079460958"
    assert listed[blank]["timezone"] == "Europe/London"

    engine = engine_for(sandboxes, db_url)
    reasons = {r["external_id"]: r["reason_code"] for r in engine.store.problem_rows()}
    assert reasons == {dnc: "do_not_call", nophone: "no_valid_phone"}

    before = writes(sandboxes)
    second = run(sandboxes, db_url)
    assert writes(sandboxes) == before
    assert second.counts["created"] == second.counts["updated"] == 0


def test_adds_updates_deletes_dnc_and_lost_phones_in_one_run(
    sandboxes: Sandboxes, db_url: str
) -> None:
    sf = sandboxes.salesforce
    ids = sf.insert_many([person(i) for i in range(30)])
    run(sandboxes, db_url)
    assert set(ours(sandboxes)) == set(ids)
    time.sleep(1.1)  # one-second SystemModstamp precision
    sf.update(ids[0], {"LastName": "Changed"})
    sf.update(ids[1], {"DoNotCall": True})
    sf.update(ids[2], {"MobilePhone": None})
    sf.soft_delete(ids[3])
    winner, loser = ids[5], ids[6]
    sf.merge(winner, loser)
    new = sf.insert(person(100))
    before = writes(sandboxes)
    report = run(sandboxes, db_url)
    listed = ours(sandboxes)
    expected = (set(ids) - {ids[1], ids[2], ids[3], loser}) | {new}
    assert set(listed) == expected
    assert listed[ids[0]]["last_name"] == "Changed"
    assert report.counts["created"] == 1
    assert report.counts["deleted"] == 4
    # one create, one update (or two: the merge winner is re-stamped), one delete call
    assert writes(sandboxes) - before <= 3
    store = engine_for(sandboxes, db_url).store
    reasons = {r["external_id"]: r["reason_code"] for r in store.problem_rows()}
    assert reasons.get(ids[1]) is None  # removed, not skipped: it was in the list
    status = {(d, s): n for (d, _l, s), n in store.status_counts().items()}
    assert status[("talkdesk", "removed")] == 4
    reasons = {r["external_id"]: r["reason_code"] for r in store.problem_rows()}


def test_thousands_sharing_one_modstamp_across_pages(sandboxes: Sandboxes, db_url: str) -> None:
    sf = sandboxes.salesforce
    ids = sf.insert_many([person(i) for i in range(2500)])  # one insert: one stamp
    report = run(sandboxes, db_url, settings={})
    assert report.counts["queried"] == 2500
    assert set(ours(sandboxes)) == set(ids)
    # writes at the floor: ceil(n/100) creates
    assert sandboxes.talkdesk.stats()["creates_bulk"] == math.ceil(2500 / 100)


def test_small_pages_and_late_commit_inside_the_lookback(
    sandboxes: Sandboxes, sqlite_url: str
) -> None:
    from pydantic import SecretStr

    from dialsync.settings import SalesforceSettings

    sf = sandboxes.salesforce
    ids = sf.insert_many([person(i) for i in range(450)])
    small = SalesforceSettings(
        login_url=sf.url,
        client_id=sf.client_id,
        client_secret=SecretStr(sf.client_secret),
        page_size=200,
    )
    run(sandboxes, sqlite_url, settings={"salesforce": small})
    assert set(ours(sandboxes)) == set(ids)
    # 450 rows in 200-row pages, after the initial load's SELECT COUNT()
    assert len(sf.server.requests("GET", "/query")) == 4
    # A long transaction commits a row stamped before the cursor: the lookback finds it.
    time.sleep(1.1)
    sf.insert(person(999))

    from dialsync.sources.salesforce import CURSOR

    cursor = engine_for(sandboxes, sqlite_url).store.get_cursor(CURSOR).modstamp
    assert cursor is not None
    late = sf.insert_late(person(1000), cursor - timedelta(seconds=120))
    run(sandboxes, sqlite_url, settings={"salesforce": small})
    assert late in ours(sandboxes)


def test_record_deleted_in_the_dialer_by_hand_is_restored(
    sandboxes: Sandboxes, db_url: str
) -> None:
    sf, td = sandboxes.salesforce, sandboxes.talkdesk
    ids = sf.insert_many([person(i) for i in range(5)])
    run(sandboxes, db_url)
    victim = ours(sandboxes)[ids[0]]["id"]
    td.remove_record(sandboxes.list_id, victim)
    run(sandboxes, db_url)  # the list holds fewer records than we put there: it is checked
    assert set(ours(sandboxes)) == set(ids)
    # and when the contact changes after a hand deletion, the update finds it gone
    td.remove_record(sandboxes.list_id, ours(sandboxes)[ids[1]]["id"])
    td.add_record(
        sandboxes.list_id,
        {
            "first_name": "x",
            "last_name": "y",
            "phone_numbers": [{"phone_number": "+14155550001", "phone_type": "HOME"}],
            "external_provider": "csv",
            "external_id": "2",
        },
    )
    time.sleep(1.1)
    sf.update(ids[1], {"LastName": "Edited"})
    run(sandboxes, db_url)
    listed = ours(sandboxes)
    assert set(listed) == set(ids)
    assert listed[ids[1]]["last_name"] == "Edited"


def test_changes_cost_at_most_ceil_n_over_100_plus_constant(
    sandboxes: Sandboxes, sqlite_url: str
) -> None:
    sf = sandboxes.salesforce
    ids = sf.insert_many([person(i) for i in range(1000)])
    run(sandboxes, sqlite_url)
    time.sleep(1.1)
    changed = ids[:250]
    for cid in changed:
        sf.update(cid, {"Title": "Buyer", "LastName": "New"})
    before = writes(sandboxes)
    report = run(sandboxes, sqlite_url)
    assert report.counts["updated"] == 250
    assert writes(sandboxes) - before <= math.ceil(250 / 100) + 1


def test_a_run_that_never_recorded_its_end_is_marked_interrupted(
    sandboxes: Sandboxes, sqlite_url: str
) -> None:
    from sqlalchemy import update

    from dialsync.store.tables import runs

    sandboxes.salesforce.insert_many([person(i) for i in range(3)])
    run(sandboxes, sqlite_url)
    store = engine_for(sandboxes, sqlite_url).store
    with store.engine.begin() as conn:  # as if the process was killed mid-run
        conn.execute(update(runs).values(status="running", finished_at=None, pid=2**22 + 7))
    run(sandboxes, sqlite_url)
    last, previous = store.recent_runs(2)
    assert last["status"] == "ok"
    assert previous["status"] == "interrupted" and "killed" in previous["error"]
