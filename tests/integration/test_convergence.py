"""Convergence (issue 10): whatever went wrong before, the next cycle repairs the list.

Each test reproduces one defect of the edge-triggered engine at the level of outcomes (what
the dialer's list holds), against the loopback sandboxes, on SQLite and Postgres.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import Popen

import pytest

from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.server import Handler, Request, Response, SandboxServer
from dialsync.settings import SalesforceSettings
from dialsync.store.store import SqlSyncStore
from tests.integration.helpers import engine_for, ours, person, run


@contextmanager
def intercept(
    server: SandboxServer,
    match: Callable[[Request], bool],
    handle: Callable[[Request, Callable[[Request], Response]], Response],
    times: int = 1,
) -> Iterator[list[Request]]:
    """The first ``times`` requests that ``match`` go to ``handle(request, original)``."""
    seen: list[Request] = []
    lock = threading.Lock()

    def dispatch(request: Request, original: Handler) -> Response:
        with lock:
            mine = match(request) and len(seen) < times
            if mine:
                seen.append(request)
        return handle(request, original) if mine else original(request)

    with server.intercept(dispatch):
        yield seen


def bulk(method: str) -> Callable[[Request], bool]:
    return lambda r: r.method == method and r.path.endswith("/records/bulks")


def refuse_delete(request: Request, original: Callable[[Request], Response]) -> Response:
    """A bulk delete answered with every record failed, none removed (reasons undocumented)."""
    items = request.json()
    failed = [{**item, "errors": ["OTHER"]} for item in items]
    return Response(
        200,
        {"total_deleted": 0, "total_errors": len(failed), "_embedded": {"failed_records": failed}},
    )


def errors_output(store: SqlSyncStore) -> list[str]:
    """What `dialsync errors` prints."""
    from dialsync.render import errors_lines
    from dialsync.store.protocol import ProblemFilter

    where = ProblemFilter()
    return errors_lines(store.problem_summary(where), store.problem_rows(where, 100), 100)


def failing_removals(db_url: str) -> float:
    from dialsync.metrics import StateCollector

    samples = [s for m in StateCollector(db_url).collect() for s in m.samples]
    return sum(s.value for s in samples if s.name == "dialsync_failing_removals")


@pytest.mark.slow
def test_a_failed_removal_is_retried_until_the_opted_out_contact_is_gone(
    sandboxes: Sandboxes, db_url: str
) -> None:
    sf = sandboxes.salesforce
    ids = sf.insert_many([person(i) for i in range(3)])
    run(sandboxes, db_url)
    assert set(ours(sandboxes)) == set(ids)
    time.sleep(1.1)
    sf.update(ids[0], {"DoNotCall": True})
    with intercept(sandboxes.talkdesk.server, bulk("DELETE"), refuse_delete) as refused:
        run(sandboxes, db_url)
    assert refused, "the removal was sent"
    assert ids[0] in ours(sandboxes)  # the dialer refused it this time
    # an operator sees it, loudly: a contact that must not be called is still in the list
    problems = {r["external_id"]: r for r in engine_for(sandboxes, db_url).store.problem_rows()}
    assert problems[ids[0]]["status"] == "retrying"
    assert problems[ids[0]]["reason_code"] == "DELETE_FAILED"
    assert problems[ids[0]]["must_remove"] is True
    shown = errors_output(engine_for(sandboxes, db_url).store)
    assert any(ids[0] in line and "STILL IN THE LIST" in line for line in shown)
    assert failing_removals(db_url) == 1
    time.sleep(1.1)  # past its backoff (RETRY_BASE_SECONDS=1 in the sandbox settings)
    run(sandboxes, db_url)
    assert set(ours(sandboxes)) == set(ids[1:])
    assert failing_removals(db_url) == 0


def after(
    action: Callable[[], None],
) -> Callable[[Request, Callable[[Request], Response]], Response]:
    """Apply the request, run ``action`` (while the client waits for the answer), answer."""

    def handle(request: Request, original: Callable[[Request], Response]) -> Response:
        response = original(request)
        action()
        return response

    return handle


def test_a_push_answer_never_overwrites_a_newer_change_pulled_meanwhile(
    sandboxes: Sandboxes, db_url: str
) -> None:
    """Service mode: worker A sends an update; while the dialer answers, the contact changes
    again and worker B pulls it. A's answer must not mark the newer state as sent."""
    sf = sandboxes.salesforce
    start = datetime.now(UTC) - timedelta(seconds=60)
    ids = sf.insert_many([person(i) for i in range(3)], stamp=start)
    run(sandboxes, db_url)
    sf.update(ids[0], {"LastName": "Second"}, stamp=start + timedelta(seconds=20))
    worker_a, worker_b = engine_for(sandboxes, db_url), engine_for(sandboxes, db_url)
    try:
        worker_a.pull()

        def newer_change_pulled_by_b() -> None:
            sf.update(ids[0], {"LastName": "Third"}, stamp=start + timedelta(seconds=40))
            worker_b.pull()

        with intercept(sandboxes.talkdesk.server, bulk("PATCH"), after(newer_change_pulled_by_b)):
            worker_a.push()
        # the row stays due: a push (this one or the next, any worker) sends B's newer state
        worker_a.push()
    finally:
        worker_a.close()
        worker_b.close()
    assert ours(sandboxes)[ids[0]]["last_name"] == "Third"
    run(sandboxes, db_url)
    assert ours(sandboxes)[ids[0]]["last_name"] == "Third"


def test_an_opt_out_pulled_while_its_create_is_in_flight_is_removed(
    sandboxes: Sandboxes, db_url: str
) -> None:
    """The create's answer (OK) must not mark the row synced: it now must be removed."""
    sf = sandboxes.salesforce
    start = datetime.now(UTC) - timedelta(seconds=60)
    ids = sf.insert_many([person(i) for i in range(3)], stamp=start)
    worker_a, worker_b = engine_for(sandboxes, db_url), engine_for(sandboxes, db_url)
    try:
        worker_a.pull()

        def opt_out_pulled_by_b() -> None:
            sf.update(ids[0], {"DoNotCall": True}, stamp=start + timedelta(seconds=20))
            worker_b.pull()

        with intercept(sandboxes.talkdesk.server, bulk("POST"), after(opt_out_pulled_by_b)):
            worker_a.push()
        worker_a.push()
    finally:
        worker_a.close()
        worker_b.close()
    assert set(ours(sandboxes)) == set(ids[1:])


def test_a_second_edit_in_the_same_second_is_sent(sandboxes: Sandboxes, db_url: str) -> None:
    sf = sandboxes.salesforce
    start = datetime.now(UTC) - timedelta(seconds=60)
    ids = sf.insert_many([person(i) for i in range(2)], stamp=start)
    run(sandboxes, db_url)
    same_second = start + timedelta(seconds=20)
    sf.update(ids[0], {"LastName": "First"}, stamp=same_second)
    run(sandboxes, db_url)
    assert ours(sandboxes)[ids[0]]["last_name"] == "First"
    sf.update(ids[0], {"LastName": "Second"}, stamp=same_second)
    sf.update(ids[1], {"DoNotCall": True}, stamp=start)  # the stamp it was synced with
    run(sandboxes, db_url)
    listed = ours(sandboxes)
    assert listed[ids[0]]["last_name"] == "Second"
    assert ids[1] not in listed


@pytest.mark.slow
def test_creates_lost_in_a_crash_are_resent_at_once_on_an_external_id_list(
    sandboxes: Sandboxes, db_url: str, tmp_path: Path
) -> None:
    """`dialsync sync` killed with creates in flight: on a list that refuses a second record
    with the same external id, the rerun re-sends them at once (no settle wait), nothing is
    duplicated, and a rerun that leaves contacts missing does not exit 0."""
    from tests.integration.service import Processes, processes

    assert sandboxes.unique_identifier_type == "EXTERNAL"
    ids = sandboxes.salesforce.insert_many([person(i) for i in range(500)])
    env = sandboxes.env(db_url)  # a 5 s timeout: creates would wait 10 s to settle
    held: dict[str, Popen[bytes]] = {}

    def die_before_it_arrives(
        request: Request, original: Callable[[Request], Response]
    ) -> Response:
        # the process dies after marking the batch in flight, before the dialer got it
        Processes.kill(held["p"])
        return Response(0, drop=True)

    with processes(env, tmp_path) as procs:
        with intercept(
            sandboxes.talkdesk.server, bulk("POST"), die_before_it_arrives, times=1
        ) as killed:
            held["p"] = procs.start("sync", name="sync-killed")
            held["p"].wait(timeout=120)
        assert killed
        assert len(ours(sandboxes)) < len(ids)
        rerun = procs.run("sync", "--json")
        assert set(ours(sandboxes)) == set(ids), rerun.stderr[-2000:]
        assert rerun.returncode == 0, rerun.stderr[-2000:]


@pytest.mark.slow
def test_a_rerun_that_cannot_settle_lost_creates_yet_does_not_exit_0(
    db_url: str, tmp_path: Path
) -> None:
    """On a list that accepts duplicates, a lost create is settled only after its grace: until
    then the rerun reports those rows as retrying (not unchanged) and exits non-zero."""
    import json

    from tests.integration.service import Processes, processes

    with Sandboxes(tmp_path / "box", unique_identifier_type="NOTHING") as box:
        ids = box.salesforce.insert_many([person(i) for i in range(300)])
        # an 8 s timeout: a lost create is taken as never made 16 s after it was sent (long
        # enough that the rerun ends within the grace even on a loaded machine)
        env = {**box.env(db_url), "DIALSYNC_TALKDESK__TIMEOUT_SECONDS": "8"}
        held: dict[str, Popen[bytes]] = {}

        def die(request: Request, original: Callable[[Request], Response]) -> Response:
            Processes.kill(held["p"])
            return Response(0, drop=True)

        with processes(env, tmp_path) as procs:
            with intercept(box.talkdesk.server, bulk("POST"), die):
                held["p"] = procs.start("sync", name="sync-killed")
                held["p"].wait(timeout=120)
            killed_at = time.monotonic()  # the lost creates were sent just before this
            missing = len(ids) - len(ours(box))
            assert missing > 0
            rerun = procs.run("sync", "--json")
            counts = json.loads(rerun.stdout.strip().splitlines()[-1])
            assert len(ours(box)) < len(ids)  # still within the grace: not a success
            assert rerun.returncode == 1, rerun.stderr[-2000:]
            # the rows whose create is unconfirmed are retrying, not "unchanged"
            assert counts["retrying"] >= len(ids) - len(ours(box))
            time.sleep(max(0.0, killed_at + 16.5 - time.monotonic()))  # past the grace
            final = procs.run("sync", "--json")
            assert final.returncode == 0, final.stderr[-2000:]
        assert set(ours(box)) == set(ids)


def phones_of(record: dict[str, object]) -> set[str]:
    return {p["phone_number"] for p in record["phone_numbers"]}  # type: ignore[attr-defined]


def test_phone_clash_is_retried_when_the_holder_changes_and_swaps_resolve(
    db_url: str, tmp_path: Path
) -> None:
    with Sandboxes(tmp_path / "box", unique_identifier_type="PHONE_NUMBER") as box:
        sf = box.salesforce
        start = datetime.now(UTC) - timedelta(seconds=60)
        a, b, c = sf.insert_many(
            [
                person(1, MobilePhone="(415) 201-0001"),
                person(2, MobilePhone="(415) 201-0002"),
                person(3, MobilePhone="(415) 201-0001"),  # A's number: refused
            ],
            stamp=start,
        )
        run(box, db_url)
        assert set(ours(box)) == {a, b}
        # the holder changes number: the refused contact gets in, in the same sync
        sf.update(a, {"MobilePhone": "(415) 201-0003"}, stamp=start + timedelta(seconds=10))
        run(box, db_url)
        listed = ours(box)
        assert set(listed) == {a, b, c}
        assert phones_of(listed[c]) == {"+14152010001"}
        # two contacts swap numbers: each clashes with the other's old record
        sf.update(a, {"MobilePhone": "(415) 201-0002"}, stamp=start + timedelta(seconds=20))
        sf.update(b, {"MobilePhone": "(415) 201-0003"}, stamp=start + timedelta(seconds=20))
        run(box, db_url)
        listed = ours(box)
        assert set(listed) == {a, b, c}
        assert phones_of(listed[a]) == {"+14152010002"}
        assert phones_of(listed[b]) == {"+14152010003"}


def other_provider(n: int) -> dict[str, object]:
    return {
        "first_name": f"Csv{n}",
        "last_name": "Upload",
        "phone_numbers": [{"phone_number": f"+1415555{n:04d}", "phone_type": "HOME"}],
        "external_provider": "csv",
        "external_id": f"csv-{n}",
    }


def test_records_removed_by_hand_are_restored_when_other_providers_share_the_list(
    sandboxes: Sandboxes, db_url: str
) -> None:
    sf, td = sandboxes.salesforce, sandboxes.talkdesk
    for n in range(3):
        td.add_record(sandboxes.list_id, other_provider(n))
    ids = sf.insert_many([person(i) for i in range(5)])
    run(sandboxes, db_url)
    assert set(ours(sandboxes)) == set(ids)
    # two of ours removed by hand, three records of another provider added: the list holds
    # more records than ours, as it always did (a removal exactly offset by additions is left
    # to the full reconciliation, which compares every record)
    for cid in ids[:2]:
        td.remove_record(sandboxes.list_id, ours(sandboxes)[cid]["id"])
    for n in range(3, 6):
        td.add_record(sandboxes.list_id, other_provider(n))
    run(sandboxes, db_url)
    assert set(ours(sandboxes)) == set(ids)
    assert len(td.records(sandboxes.list_id)) == len(ids) + 6  # the others untouched


def test_a_full_pass_keeps_a_contact_edited_while_it_runs(
    sandboxes: Sandboxes, db_url: str
) -> None:
    """A contact edited after the window's end is not in the window: it is not gone."""
    sf = sandboxes.salesforce
    ids = sf.insert_many(
        [person(i) for i in range(5)], stamp=datetime.now(UTC) - timedelta(seconds=60)
    )
    run(sandboxes, db_url)
    before = ours(sandboxes)[ids[0]]["id"]

    def edit_first(request: Request, original: Callable[[Request], Response]) -> Response:
        later = datetime.now(UTC) + timedelta(seconds=5)  # after the window's end
        sf.update(ids[0], {"Title": "Edited meanwhile"}, stamp=later)
        return original(request)

    def window_query(request: Request) -> bool:
        return "/query" in request.path and "SystemModstamp" in (request.arg("q") or "")

    with intercept(sf.server, window_query, edit_first):
        run(sandboxes, db_url, full=True)
    listed = ours(sandboxes)
    assert set(listed) == set(ids)
    assert listed[ids[0]]["id"] == before  # never removed and created anew


def test_a_list_scan_that_overlaps_a_removal_draws_no_wrong_conclusion(
    db_url: str, tmp_path: Path
) -> None:
    """Pages are numbered: a record removed while the list is paged shifts the next page, and
    the record that slid onto the page already read is never seen. Taking it as removed by
    hand would create it again: a duplicate on a list that accepts them."""
    with Sandboxes(tmp_path / "box", unique_identifier_type="NOTHING") as box:
        td = box.talkdesk
        ids = box.salesforce.insert_many([person(i) for i in range(150)])
        run(box, db_url)
        by_order = [r["id"] for r in td.records(box.list_id)]
        td.remove_record(box.list_id, by_order[0])  # by hand: the next run scans the list

        def first_page(request: Request) -> bool:
            return (
                request.method == "GET"
                and request.path.endswith("/records")
                and request.arg("page") in (None, "1")
            )

        def remove_while_paging(
            request: Request, original: Callable[[Request], Response]
        ) -> Response:
            response = original(request)
            td.remove_record(box.list_id, by_order[1])  # by hand, while the scan pages
            return response

        with intercept(td.server, first_page, remove_while_paging) as paged:
            run(box, db_url)
        assert paged
        run(box, db_url)
        assert set(ours(box)) == set(ids)  # ours() fails on a duplicate


def edit_by_hand(box: Sandboxes, record: dict[str, object], **changes: object) -> None:
    """Change a record in the dialer's UI: same record id, other content."""
    box.talkdesk.remove_record(box.list_id, str(record["id"]))
    box.talkdesk.add_record(box.list_id, {**record, **changes})


def test_sync_full_repairs_a_list_damaged_by_hand_in_every_way(db_url: str, tmp_path: Path) -> None:
    with Sandboxes(tmp_path / "box", unique_identifier_type="NOTHING") as box:
        sf, td = box.salesforce, box.talkdesk
        start = datetime.now(UTC) - timedelta(seconds=60)
        ids = sf.insert_many([person(i) for i in range(8)], stamp=start)
        td.add_record(box.list_id, other_provider(1))
        sf.update(ids[7], {"DoNotCall": True}, stamp=start + timedelta(seconds=5))
        run(box, db_url)
        clean = ours(box)
        assert set(clean) == set(ids[:7])
        # the damage, by hand in the dialer:
        td.remove_record(box.list_id, clean[ids[0]]["id"])  # a record deleted
        edit_by_hand(box, clean[ids[1]], last_name="Typo")  # edited: a name
        edit_by_hand(  # edited: the number to call
            box,
            clean[ids[2]],
            phone_numbers=[{"phone_number": "+14155550199", "phone_type": "MOBILE"}],
        )
        edit_by_hand(box, clean[ids[3]], timezone="Asia/Tokyo")  # edited: the calling window
        td.add_record(box.list_id, {**clean[ids[4]], "id": None})  # duplicated
        opted_out = {**clean[ids[5]], "id": None, "external_id": ids[7]}
        td.add_record(box.list_id, opted_out)  # an opted-out contact re-added
        run(box, db_url, full=True)
        repaired = ours(box)  # fails on a duplicate
        assert set(repaired) == set(ids[:7])
        for cid in ids[:7]:
            for field in ("first_name", "last_name", "phone_numbers", "timezone", "extra_data"):
                assert repaired[cid].get(field) == clean[cid].get(field), (cid, field)
        others = [r for r in td.records(box.list_id) if r["external_provider"] == "csv"]
        assert len(others) == 1  # never touched


def test_an_update_clears_the_fields_the_mapping_no_longer_gives(
    sandboxes: Sandboxes, db_url: str
) -> None:
    sf = sandboxes.salesforce
    start = datetime.now(UTC) - timedelta(seconds=60)
    (cid,) = sf.insert_many([person(1, MobilePhone="(415) 201-0005")], stamp=start)
    run(sandboxes, db_url)
    assert ours(sandboxes)[cid]["timezone"] == "America/Los_Angeles"
    # its only phone becomes toll-free: no time zone can be told from it
    sf.update(cid, {"MobilePhone": "(800) 555-0199"}, stamp=start + timedelta(seconds=10))
    run(sandboxes, db_url)
    record = ours(sandboxes)[cid]
    assert phones_of(record) == {"+18005550199"}
    assert record.get("timezone") is None


def test_a_lookback_under_a_minute_is_refused_naming_the_setting(
    sandboxes: Sandboxes, tmp_path: Path
) -> None:
    """getDeleted refuses a window under a minute (INVALID_REPLICATION_DATE): every sync in
    the same minute would fail; the setting is refused at start instead."""
    from tests.integration.test_cli import cli

    env = {**sandboxes.env(), "DIALSYNC_SALESFORCE__LOOKBACK_SECONDS": "30"}
    result = cli(["sync"], env, tmp_path)
    assert result.returncode == 2
    assert "DIALSYNC_SALESFORCE__LOOKBACK_SECONDS" in result.stderr
    assert sandboxes.talkdesk.stats()["writes"] == 0


def customers_only(box: Sandboxes) -> tuple[SalesforceSettings, str, str, str, str]:
    """SOQL_WHERE keeps the contacts of customer accounts: (those settings, a customer and a
    prospect account, a contact of each: inside the scope and outside it)."""
    from pydantic import SecretStr

    sf = box.salesforce
    scoped = SalesforceSettings(
        login_url=sf.url,
        client_id=sf.client_id,
        client_secret=SecretStr(sf.client_secret),
        soql_where="Account.Type = 'Customer'",
    )
    customer = sf.insert_account("Acme", "Customer")
    prospect = sf.insert_account("Initech", "Prospect")
    inside = sf.insert(person(1, AccountId=customer))
    outside = sf.insert(person(2, AccountId=prospect))
    return scoped, customer, prospect, inside, outside


def test_a_contact_entering_the_scope_through_its_account_is_added_by_the_reconciliation(
    sandboxes: Sandboxes, db_url: str
) -> None:
    sf = sandboxes.salesforce
    scoped, _, prospect, inside, outside = customers_only(sandboxes)
    run(sandboxes, db_url, settings={"salesforce": scoped})
    assert set(ours(sandboxes)) == {inside}
    # the account becomes a customer: its contact's own SystemModstamp does not move
    sf.update_account(prospect, Type="Customer")
    run(sandboxes, db_url, settings={"salesforce": scoped}, full=True)
    assert set(ours(sandboxes)) == {inside, outside}


def test_the_scope_asked_of_a_few_ids_is_what_the_listing_holds(
    sandboxes: Sandboxes, db_url: str
) -> None:
    """``in_scope`` (the sweep's question) answers from Salesforce what ``ids()`` lists, for
    the Ids asked only: live, within SOQL_WHERE (through a related record too)."""
    sf = sandboxes.salesforce
    scoped, customer, _, inside, outside = customers_only(sandboxes)
    deleted = sf.insert(person(3, AccountId=customer))
    sf.soft_delete(deleted)
    unasked = sf.insert(person(4, AccountId=customer))
    engine = engine_for(sandboxes, db_url, salesforce=scoped)
    try:
        source = engine.source
        source.open()
        asked = [inside, outside, deleted, "not an id"]
        assert source.in_scope(asked) == {inside}
        assert set(source.ids(None, scoped=True)) == {inside, unasked}
    finally:
        engine.close()


def test_a_quiet_cycle_rewrites_no_row_and_old_runs_are_pruned(
    sandboxes: Sandboxes, db_url: str
) -> None:
    from sqlalchemy import select

    from dialsync.store.tables import runs, sync_records

    sf = sandboxes.salesforce
    sf.insert_many([person(i) for i in range(20)])
    run(sandboxes, db_url)

    def written() -> dict[str, object]:
        store = engine_for(sandboxes, db_url).store
        with store.engine.connect() as conn:
            rows = conn.execute(select(sync_records.c.external_id, sync_records.c.updated_at))
            return {r.external_id: r.updated_at for r in rows}

    before = written()
    time.sleep(0.01)  # so that a rewrite would show a later updated_at
    run(sandboxes, db_url)  # the lookback re-reads all 20: none changed
    assert written() == before

    store = engine_for(sandboxes, db_url).store
    store.runs_kept = 5
    for _ in range(12):
        store.finish_run(store.start_run("pull"), "ok", {})
    with store.engine.connect() as conn:
        kinds = [r.kind for r in conn.execute(select(runs.c.kind).order_by(runs.c.id))]
    assert kinds.count("pull") == 5
    assert "sync" in kinds  # the last run of each kind is kept


def refuse_create(request: Request, original: Callable[[Request], Response]) -> Response:
    """A bulk create answered with every record failed (a one-off refusal), none created."""
    items = request.json()["records"]
    entries = [{**item, "errors": ["OTHER"]} for item in items]
    return Response(
        201,
        {
            "has_errors": True,
            "total_errors": len(entries),
            "total_created": 0,
            "_embedded": {"records": entries},
        },
    )


def test_a_full_sync_retries_records_refused_once(sandboxes: Sandboxes, db_url: str) -> None:
    """A create refused per record stays rejected until its contact changes; a full sync is
    the reconciliation: what refused it may have changed, so it is tried again."""
    box = sandboxes
    start = datetime.now(UTC) - timedelta(seconds=60)
    ids = box.salesforce.insert_many([person(i) for i in range(3)], stamp=start)
    with intercept(box.talkdesk.server, bulk("POST"), refuse_create):
        report = run(box, db_url)
    assert report.counts["rejected"] == 3 and ours(box) == {}
    assert run(box, db_url).counts["created"] == 0  # an incremental sync leaves it refused
    report = run(box, db_url, full=True)
    assert report.counts["created"] == 3
    assert set(ours(box)) == set(ids)


@contextmanager
def a_worker_sending(box: Sandboxes, db_url: str) -> Iterator[tuple[list[str], threading.Event]]:
    """Three contacts pulled; a service worker's push has sent their create and waits for the
    dialer's answer, which comes when the yielded event is set (or 30 s later)."""
    ids = box.salesforce.insert_many([person(i) for i in range(3)])
    worker = engine_for(box, db_url)
    arrived, answer = threading.Event(), threading.Event()

    def slow(request: Request, original: Callable[[Request], Response]) -> Response:
        arrived.set()
        answer.wait(30)
        return original(request)

    try:
        worker.pull()
        with intercept(box.talkdesk.server, bulk("POST"), slow):
            pushing = threading.Thread(target=worker.push)
            pushing.start()
            assert arrived.wait(30)
            try:
                yield ids, answer
            finally:
                answer.set()
                pushing.join(30)
    finally:
        worker.close()


def test_a_sync_waits_for_rows_another_worker_is_sending_before_it_reports(
    sandboxes: Sandboxes, db_url: str
) -> None:
    """Service mode with a hand `dialsync sync` beside it: the workers' push holds some rows
    while the sync ends. The sync may not call them unsettled (exit 1) while another process
    is delivering them, nor leave behind what that process gave back unsent."""
    with a_worker_sending(sandboxes, db_url) as (ids, answer):
        threading.Timer(1.0, answer.set).start()  # the worker's answer comes back later
        report = run(sandboxes, db_url)
    assert report.unsettled == 0
    assert set(ours(sandboxes)) == set(ids)
    assert sandboxes.talkdesk.stats()["records_created"] == 3


def test_the_streams_refresh_does_not_wait_for_rows_another_worker_is_sending(
    sandboxes: Sandboxes, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream's refresh goes back to its events at once (an opt-out may be next): it does
    not wait for a batch another push holds, as a reporting `sync` does."""
    from dialsync.engine import frame

    def no_waiting(ctx: object, **kw: object) -> None:
        raise AssertionError("the refresh waited for another worker's batch")

    stream = engine_for(sandboxes, db_url)
    try:
        with a_worker_sending(sandboxes, db_url) as (ids, _), monkeypatch.context() as patch:
            patch.setattr(frame, "await_others", no_waiting)
            stream.refresh(ids[:1])
    finally:
        stream.close()
    assert set(ours(sandboxes)) == set(ids)
