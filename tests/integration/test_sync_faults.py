"""The core sync under the failures the issue names: a crash between the dialer's answer and the
commit, Salesforce sessions expiring mid-paging, the API limit, dialer 429s, 5xx and expiring
tokens. Each ends with the list equal to what the org implies and no duplicate."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from dialsync.engine import CURSOR, SyncEngine
from dialsync.errors import RateLimited
from dialsync.sandbox.harness import Sandboxes
from dialsync.settings import SalesforceSettings
from dialsync.store.store import SyncStore
from tests.integration.helpers import engine_for, ours, person, run


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing catches it."""


def died(store: SyncStore) -> None:
    """The crashed process's claims now name a pid that no longer exists, as after a real
    crash (this test process is still alive, so its own pid would look busy)."""
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE sync_records SET claimed_by = :dead WHERE claimed_by IS NOT NULL"),
            {"dead": f"{socket.gethostname()[:30]}:{2**22 + 12345}:gone"},
        )


def one_call_at_a_time(engine: SyncEngine) -> None:
    engine.options = replace(engine.options, push_threads=1)


@pytest.mark.parametrize("unique", ["NOTHING", "EXTERNAL", "PHONE_NUMBER"])
def test_crash_after_the_dialer_applied_a_create_duplicates_nothing(
    tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'state.db'}"
    with Sandboxes(tmp_path / "box", unique_identifier_type=unique) as box:
        ids = box.salesforce.insert_many([person(i) for i in range(250)])
        original = SyncStore.update_rows
        calls = {"n": 0}

        def dying(self: SyncStore, changes: list[dict[str, object]]) -> None:
            # the second batch's answer arrives, then the process dies before recording it
            if any(c.get("status") == "synced" for c in changes):
                calls["n"] += 1
                if calls["n"] == 2:
                    raise Crash
            original(self, changes)

        monkeypatch.setattr(SyncStore, "update_rows", dying)
        with pytest.raises(Crash):
            run(box, db)
        monkeypatch.setattr(SyncStore, "update_rows", original)
        # at least two batches reached the dialer, and one of them was never recorded
        assert box.talkdesk.stats()["records_created"] >= 200
        store = engine_for(box, db).store
        died(store)
        store.release_dead_claims()  # what the next run does first
        assert store.uncertain_creates("talkdesk", box.list_id) in (50, 100)  # one batch
        run(box, db)
        assert set(ours(box)) == set(ids)  # ours() fails on any duplicate
        assert box.talkdesk.stats()["records_created"] == 250


def test_session_expiring_mid_paging_is_renewed_and_nothing_is_missed(
    sandboxes: Sandboxes, sqlite_url: str
) -> None:
    sf = sandboxes.salesforce
    ids = sf.insert_many([person(i) for i in range(700)])
    small = SalesforceSettings(
        login_url=sf.url,
        client_id=sf.client_id,
        client_secret=SecretStr(sf.client_secret),
        page_size=200,
    )
    # the first page is served, then every session dies: the next page must be asked again
    original = sf.server.dispatch
    served = {"pages": 0}

    def expire_after_first_page(request):  # type: ignore[no-untyped-def]
        response = original(request)
        if "/query" in request.path and response.status == 200:
            served["pages"] += 1
            if served["pages"] == 1:
                sf.expire_sessions()
        return response

    sf.server.dispatch = expire_after_first_page  # type: ignore[method-assign]
    report = run(sandboxes, sqlite_url, settings={"salesforce": small})
    assert report.counts["queried"] == 700
    assert set(ours(sandboxes)) == set(ids)
    tokens = sf.server.requests("POST", "/services/oauth2/token")
    assert len(tokens) == 2  # renewed exactly once


def test_request_limit_ends_the_cycle_cleanly_and_a_later_one_resumes(
    sandboxes: Sandboxes, sqlite_url: str
) -> None:
    sf = sandboxes.salesforce
    ids = sf.insert_many([person(i) for i in range(450)])
    small = SalesforceSettings(
        login_url=sf.url,
        client_id=sf.client_id,
        client_secret=SecretStr(sf.client_secret),
        page_size=200,
    )
    sf.set_api_limit(sf.api_usage + 2)  # describe and the first page pass, the second does not
    with pytest.raises(RateLimited):
        run(sandboxes, sqlite_url, settings={"salesforce": small})
    store = engine_for(sandboxes, sqlite_url).store
    assert store.get_cursor(CURSOR).modstamp is None  # nothing durable: the cursor is unmoved
    assert store.last_runs(1)[0]["status"] == "failed"
    assert "REQUEST_LIMIT_EXCEEDED" in store.last_runs(1)[0]["error"]
    sf.set_api_limit(1_000_000)
    run(sandboxes, sqlite_url, settings={"salesforce": small})
    assert set(ours(sandboxes)) == set(ids)


def test_dialer_429_with_retry_after_is_honoured(sandboxes: Sandboxes, sqlite_url: str) -> None:
    td = sandboxes.talkdesk
    ids = sandboxes.salesforce.insert_many([person(i) for i in range(120)])
    td.fail_next(2, 429, retry_after=0.3)
    run(sandboxes, sqlite_url, prepare=one_call_at_a_time)
    assert set(ours(sandboxes)) == set(ids)
    log = [r for r in td.server.requests("POST", "/records/bulks")]
    statuses = [r.status for r in log]
    assert statuses[:2] == [429, 429]
    assert log[1].at - log[0].at >= 0.29 and log[2].at - log[1].at >= 0.29


def test_5xx_and_expiring_tokens_converge(tmp_path: Path, sqlite_url: str) -> None:
    with Sandboxes(
        tmp_path / "box", unique_identifier_type="NOTHING", talkdesk={"token_ttl": 1.0, "seed": 3}
    ) as box:
        ids = box.salesforce.insert_many([person(i) for i in range(400)])
        box.talkdesk.set_faults(error_500_rate=0.25, drop_after_apply_rate=0.1)
        for _ in range(8):
            report = run(box, sqlite_url)
            if set(ours(box)) == set(ids) and report.counts["retrying"] == 0:
                break
            import time

            time.sleep(1.2)  # let retry times come due (retry_base 1 s in the test settings)
        assert set(ours(box)) == set(ids)


def test_poison_record_does_not_block_its_batch(
    sandboxes: Sandboxes, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record the dialer refuses whole (400 for the request) is isolated by halving."""
    from dialsync.destinations import talkdesk

    ids = sandboxes.salesforce.insert_many([person(i) for i in range(40)])
    poison = ids[17]
    original = talkdesk.render_record

    def render(record):  # type: ignore[no-untyped-def]
        payload = original(record)
        if record.external_id == poison:
            payload["extra_data"] = {"nested": {"not": "flat"}}  # per record: OTHER
            payload["phone_numbers"] = "not-a-list"  # the sandbox refuses the body: 400
        return payload

    monkeypatch.setattr(talkdesk, "render_record", render)
    report = run(sandboxes, sqlite_url)
    assert set(ours(sandboxes)) == set(ids) - {poison}
    assert report.counts["rejected"] == 1
    rows = {r["external_id"]: r for r in engine_for(sandboxes, sqlite_url).store.problem_rows()}
    assert rows[poison]["status"] == "rejected"
