"""4. Salesforce faults mid-paging: INVALID_SESSION_ID, 503s, REQUEST_LIMIT_EXCEEDED;
8. deletes beyond getDeleted's reach. Real simple-salesforce over HTTPS to the sandbox org."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from dialsync.errors import RateLimited, TransientError
from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.server import Handler, Request, Response
from dialsync.settings import SalesforceSettings
from dialsync.sources.salesforce import CURSOR
from tests.faults.conftest import FaultReport
from tests.faults.helpers import measure, run_until_settled
from tests.integration.helpers import engine_for, person, run

pytestmark = pytest.mark.faults
GROUPS, PER_GROUP, PAGE = 4, 1000, 500  # 8 pages; the engine makes a batch durable per 2000


def org_in_hours(box: Sandboxes) -> list[str]:
    """4,000 contacts stamped in four groups an hour apart, so a resumed cycle is visible: the
    lookback (10 minutes) re-reads only the group at the cursor."""
    now = datetime.now(UTC)
    ids: list[str] = []
    for g in range(GROUPS):
        stamp = now - timedelta(hours=GROUPS - g)
        people = [person(g * PER_GROUP + i) for i in range(PER_GROUP)]
        ids += box.salesforce.insert_many(people, stamp=stamp)
    return ids


def small_pages(box: Sandboxes) -> dict[str, SalesforceSettings]:
    sf = box.salesforce
    return {
        "salesforce": SalesforceSettings(
            login_url=sf.url,
            client_id=sf.client_id,
            client_secret=SecretStr(sf.client_secret),
            page_size=PAGE,
            timeout_seconds=10,
        )
    }


def refused(box: Sandboxes, status: int) -> int:
    return len([r for r in box.salesforce.server.requests(path_contains="/services/data/")
                if r.status == status])  # fmt: skip


def test_session_expiring_mid_paging_is_renewed_and_nothing_is_missed(
    tmp_path: Path, sqlite_url: str, fault_report: FaultReport
) -> None:
    with Sandboxes(tmp_path / "box") as box:
        sf = box.salesforce
        org_in_hours(box)
        served = {"pages": 0}

        def expire_after_third_page(request: Request, original: Handler) -> Response:
            response = original(request)
            counting = "COUNT()" in str(request.arg("q") or "")  # the initial load's count
            if "/query" in request.path and response.status == 200 and not counting:
                served["pages"] += 1
                if served["pages"] == 3:
                    sf.expire_sessions()  # every session dies: the next page must be asked again
            return response

        sf.server.intercept(expire_after_third_page)
        report = run(box, sqlite_url, settings=small_pages(box))
        m = measure(box)
        fault_report.record(
            "4a. Salesforce session expired mid-paging",
            fault="Salesforce INVALID_SESSION_ID in the middle of paging",
            injected="every session revoked after the 3rd of 8 query pages (4,000 contacts)",
            cycles=1,
            lost=m.lost,
            duplicated=m.duplicated,
            refused_401=refused(box, 401),
        )
        assert m.ok, m
        assert report.counts["queried"] == GROUPS * PER_GROUP
        assert refused(box, 401) == 1  # the page was asked again once, with a new token
        assert len(sf.server.requests("POST", "/services/oauth2/token")) == 2


def test_503s_mid_paging_are_retried_then_a_later_cycle_resumes(
    tmp_path: Path, sqlite_url: str, fault_report: FaultReport
) -> None:
    with Sandboxes(tmp_path / "box") as box:
        sf = box.salesforce
        org_in_hours(box)
        settings = small_pages(box)
        # two 503s on a page: retried inside the cycle (about 1 s, 2 s, jittered), nothing lost
        sf.fail_next(2, 503, "SERVER_UNAVAILABLE", "maintenance", path_contains="/query/01g")
        report = run(box, sqlite_url, settings=settings)
        assert report.counts["queried"] == GROUPS * PER_GROUP
        assert refused(box, 503) == 2
        m1 = measure(box)
        assert m1.ok, m1
        # then an outage longer than the client's retries, in the middle of a full re-read
        sf.fail_next(4, 503, "SERVER_UNAVAILABLE", "maintenance", path_contains="/query/01g")
        with pytest.raises(TransientError):
            run(box, sqlite_url, settings=settings, full=True)
        cycles, _ = run_until_settled(box, sqlite_url, limit=3, settings=settings, full=True)
        m = measure(box)
        fault_report.record(
            "4b. Salesforce 503s",
            fault="Salesforce 503 Service Unavailable while paging",
            injected="2 pages answered 503 (retried in the cycle); then 4 in a row, more than "
            "the client retries: that cycle fails, the next one runs",
            cycles=1 + cycles,
            lost=m.lost,
            duplicated=m.duplicated,
            refused_503=refused(box, 503),
        )
        assert m.ok, m
        assert refused(box, 503) == 6


def test_request_limit_stops_the_cycle_and_a_later_one_resumes(
    tmp_path: Path, sqlite_url: str, fault_report: FaultReport
) -> None:
    with Sandboxes(tmp_path / "box") as box:
        sf = box.salesforce
        org_in_hours(box)
        settings = small_pages(box)
        # describe + 5 pages pass; the 6th page is refused: 2,000 contacts were made durable
        sf.set_api_limit(sf.api_usage + 6)
        with pytest.raises(RateLimited):
            run(box, sqlite_url, settings=settings)
        assert refused(box, 403) == 1  # the limit stops the cycle: asked once, not hammered
        store = engine_for(box, sqlite_url).store
        cursor = store.get_cursor(CURSOR).modstamp
        assert cursor is not None  # the first batch is durable, the cursor moved past it
        assert "REQUEST_LIMIT_EXCEEDED" in store.recent_runs(1)[0]["error"]
        sf.set_api_limit(1_000_000)  # the next day
        report = run(box, sqlite_url, settings=settings)
        # resumed from the cursor: the lookback re-reads one group, not the whole org
        assert report.counts["queried"] == 3 * PER_GROUP
        m = measure(box)
        fault_report.record(
            "4c. Salesforce REQUEST_LIMIT_EXCEEDED",
            fault="Salesforce REQUEST_LIMIT_EXCEEDED mid-paging",
            injected="the daily API limit reached at the 6th of 8 query pages; raised later",
            cycles=2,
            lost=m.lost,
            duplicated=m.duplicated,
            queried_by_the_resumed_cycle=report.counts["queried"],
        )
        assert m.ok, m


class Clock:
    """A shared clock for the sandbox org and the engine, so days can pass instantly."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def test_hard_delete_found_by_get_deleted(
    tmp_path: Path, sqlite_url: str, fault_report: FaultReport
) -> None:
    clock = Clock()
    with Sandboxes(tmp_path / "box", salesforce={"clock": clock}) as box:
        sf = box.salesforce
        ids = sf.insert_many([person(i) for i in range(6)])
        run(box, sqlite_url, clock=clock)
        clock.offset += timedelta(seconds=5)
        sf.hard_delete(ids[0])  # never in the recycle bin: only getDeleted reports it
        run(box, sqlite_url, clock=clock)
        clock.offset += timedelta(minutes=2)  # getDeleted works in whole minutes
        report = run(box, sqlite_url, clock=clock)
        assert not report.reconciled  # getDeleted reached back far enough
        m = measure(box)
        assert m.ok, m


@pytest.mark.parametrize("how", ["recycle bin emptied", "20 days without a sync"])
def test_deletes_beyond_reach_trigger_a_reconciliation_of_all_ids(
    tmp_path: Path, sqlite_url: str, how: str, fault_report: FaultReport
) -> None:
    clock = Clock()
    with Sandboxes(tmp_path / "box", salesforce={"clock": clock}) as box:
        sf = box.salesforce
        ids = sf.insert_many([person(i) for i in range(300)])
        run(box, sqlite_url, clock=clock)
        clock.offset += timedelta(minutes=5)
        run(box, sqlite_url, clock=clock)  # an incremental cycle: the cursor is recent
        if how == "20 days without a sync":
            clock.offset += timedelta(days=20)
        else:
            clock.offset += timedelta(minutes=30)
        gone = ids[:25]
        for cid in gone:
            sf.hard_delete(cid)
        # getDeleted forgets them: its earliestDateAvailable moves past the cursor
        sf.purge_deleted_before(clock())
        report = run(box, sqlite_url, clock=clock)
        m = measure(box)
        fault_report.record(
            f"8. deletes beyond reach ({how})",
            fault="hard deletes getDeleted can no longer report",
            injected=f"25 of 300 contacts hard-deleted, then {how}: getDeleted's "
            "earliestDateAvailable is later than the cursor",
            cycles=1,
            lost=m.lost,
            duplicated=m.duplicated,
            reconciled=report.reconciled,
            removed=report.counts["deleted"],
        )
        assert report.reconciled
        if how == "recycle bin emptied":  # getDeleted was asked, and said it cannot reach
            assert sf.server.requests("GET", "/sobjects/Contact/deleted")
        assert m.ok, m  # the 25 are gone from the list
        assert report.counts["deleted"] == 25
