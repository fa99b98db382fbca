"""1. A process dies right after the dialer applied a bulk create and before the answer was
committed to the sync table: `dialsync sync` and a Celery worker, both SIGKILLed. Then restart.

The lists are NOTHING lists: the dialer would accept a second create of the same contact, so
only the write-ahead marker and the list scan stand between a kill and a duplicate.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dialsync.engine import SyncEngine
from dialsync.rowstate.transitions import Change
from dialsync.sandbox.harness import Sandboxes
from dialsync.store.store import open_store
from dialsync.store.tables import sync_records
from dialsync.store.target import StoreTarget
from tests.faults.conftest import FaultReport
from tests.faults.helpers import measure, settled
from tests.faults.hooks import AfterBulkCreate, runs_since
from tests.faults.servers import PrivateRedis
from tests.integration.helpers import person, run
from tests.integration.service import Processes, processes, service_env, wait_until

pytestmark = pytest.mark.faults


def in_flight(db_url: str) -> int:
    store = open_store(db_url)
    try:
        with store.engine.connect() as conn:
            query = (
                select(func.count())
                .select_from(sync_records)
                .where(sync_records.c.inflight == "create", sync_records.c.record_id.is_(None))
            )
            return int(conn.execute(query).scalar_one())
    finally:
        store.engine.dispose()


def test_sigkill_of_dialsync_sync_after_the_dialer_applied_a_create(
    tmp_path: Path, fault_report: FaultReport
) -> None:
    db = f"sqlite:///{tmp_path / 'state.db'}"
    with Sandboxes(tmp_path / "box", unique_identifier_type="NOTHING") as box:
        box.salesforce.insert_many([person(i) for i in range(500)])
        # 2 s timeout: a create in flight at the kill is taken as never made 4 s after it was
        # sent (it might still land until then), so convergence takes that long at most
        env = {**box.env(db), "DIALSYNC_TALKDESK__TIMEOUT_SECONDS": "2"}
        with processes(env, tmp_path) as procs:
            held: dict[str, object] = {}

            def kill() -> None:
                Processes.kill(held["proc"])  # type: ignore[arg-type]

            with AfterBulkCreate(box.talkdesk.server, 3, kill) as hook:
                proc = held["proc"] = procs.start("sync", name="sync-killed")
                returncode = proc.wait(timeout=120)
            assert hook.fired.wait(20) and returncode == -signal.SIGKILL
            # three batches applied (more when calls run in parallel), the third's answer lost
            assert box.talkdesk.stats()["records_created"] >= 300
            assert in_flight(db) >= 100  # ... and its rows are marked in flight, written ahead
            cycles = 1
            for _ in range(6):  # restart, as cron or systemd would
                cycles += 1
                restart = procs.run("sync", "--json")
                # a run that leaves creates unconfirmed (within their grace) exits 1
                assert restart.returncode in (0, 1), restart.stderr
                if settled(box, db):
                    assert restart.returncode == 0, restart.stderr
                    break
                time.sleep(2)
        m = measure(box)
        fault_report.record(
            "1a. SIGKILL of `dialsync sync`",
            fault="`dialsync sync` killed after the dialer applied a bulk create, before commit",
            injected="SIGKILL right after the 3rd bulk create of 500 contacts was applied "
            "(NOTHING list, 4 calls in flight); `dialsync sync` run again",
            cycles=cycles,  # the killed run, then the restarts
            lost=m.lost,
            duplicated=m.duplicated,
            created_by_dialer=box.talkdesk.stats()["records_created"],
        )
        assert m.ok, m
        assert box.talkdesk.stats()["records_created"] == 500  # no contact created twice


@pytest.mark.redis
@pytest.mark.postgres
def test_sigkill_of_a_worker_after_the_dialer_applied_a_create(
    tmp_path: Path, fault_pg_url: str, private_redis: PrivateRedis, fault_report: FaultReport
) -> None:
    with Sandboxes(
        tmp_path / "box", unique_identifier_type="NOTHING", talkdesk={"latency": 0.05}
    ) as box:
        box.salesforce.insert_many([person(i) for i in range(600)])
        env = service_env(box, fault_pg_url, private_redis.url)
        with processes(env, tmp_path) as procs:
            assert procs.run("db", "upgrade").returncode == 0
            held: dict[str, object] = {}

            def kill() -> None:
                Processes.kill(held["worker"])  # type: ignore[arg-type]

            with AfterBulkCreate(box.talkdesk.server, 3, kill) as hook:
                held["worker"] = procs.start("worker", "-c", "2", name="worker1")
                procs.start("beat", name="beat")
                wait_until(hook.fired.is_set, timeout=120, what="the third bulk create")
            assert in_flight(fault_pg_url) >= 100  # the killed batch, marked in flight
            restarted = datetime.now(UTC)
            procs.start("worker", "-c", "2", name="worker2")
            wait_until(
                lambda: settled(box, fault_pg_url), timeout=120, what="convergence after restart"
            )
            cycles = 1 + runs_since(fault_pg_url, restarted)  # the killed cycle, then pulls
        m = measure(box)
        fault_report.record(
            "1b. SIGKILL of a worker",
            fault="Celery worker killed after the dialer applied a bulk create, before commit",
            injected="SIGKILL of the worker's process group right after the 3rd bulk create "
            "of 600 contacts was applied (NOTHING list, Postgres, Redis); start a new worker",
            cycles=cycles,
            lost=m.lost,
            duplicated=m.duplicated,
            created_by_dialer=box.talkdesk.stats()["records_created"],
        )
        assert m.ok, m
        assert box.talkdesk.stats()["records_created"] == 600


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing catches it."""


@pytest.mark.parametrize("unique", ["NOTHING", "EXTERNAL", "PHONE_NUMBER"])
def test_crash_between_the_answer_and_the_commit_on_every_list_type(
    tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch, fault_report: FaultReport
) -> None:
    db = f"sqlite:///{tmp_path / 'state.db'}"
    with Sandboxes(tmp_path / "box", unique_identifier_type=unique) as box:
        box.salesforce.insert_many([person(i) for i in range(250)])
        original = StoreTarget.record
        calls = {"n": 0}

        def dying(
            self: StoreTarget, changes: list[Change], evidence: Any = (), *, unblock: bool = False
        ) -> None:
            # the second batch's answer arrives, then the process dies before recording it
            if any(c.values.get("status") == "synced" for c in changes):
                calls["n"] += 1
                if calls["n"] == 2:
                    raise Crash
            original(self, changes, evidence, unblock=unblock)

        monkeypatch.setattr(StoreTarget, "record", dying)
        crashed: list[SyncEngine] = []
        with pytest.raises(Crash):
            run(box, db, prepare=crashed.append)
        monkeypatch.setattr(StoreTarget, "record", original)
        # The process died: its claims are a dead process's, which the next run frees (the
        # test's process lives on, so the crashed run's store frees them as its own).
        crashed[0].store.release_dead_claims()
        # at least two batches reached the dialer (more when calls run in parallel)
        assert box.talkdesk.stats()["records_created"] >= 200
        run(box, db)
        m = measure(box)
        fault_report.record(
            f"1c. crash before commit, {unique} list",
            fault=f"process dies between the dialer's answer and the commit ({unique} list)",
            injected="the 2nd bulk create's answer arrives, the process dies before recording "
            "it (250 contacts); run again",
            cycles=2,  # the crashed run and the next
            lost=m.lost,
            duplicated=m.duplicated,
        )
        assert m.ok, m
        assert box.talkdesk.stats()["records_created"] == 250
