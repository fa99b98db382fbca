"""2. Redis restarted during a run; PostgreSQL restarted during a run.

Both are private servers started for the test (the shared ones are never touched). Redis runs
without persistence, so its restart loses every queued task message and the pull lock: the sync
table is the queue of record, and beat's next messages must finish the work. PostgreSQL is
stopped with every connection cut while pushes write to it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialsync.sandbox.harness import Sandboxes
from tests.faults.conftest import FaultReport
from tests.faults.helpers import measure, settled
from tests.faults.hooks import runs_since
from tests.faults.servers import PrivatePostgres, PrivateRedis
from tests.integration.helpers import person
from tests.integration.service import processes, service_env, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.redis, pytest.mark.postgres]
CONTACTS = 1500


def converge_after_restart(
    tmp_path: Path, db_url: str, broker_url: str, restart: Callable[[], None]
) -> tuple[Sandboxes, int, dict[str, object]]:
    """Start a worker and beat, restart a server once creates are under way, wait for
    convergence; returns the sandboxes (stopped), the pull cycles after the restart, details."""
    box = Sandboxes(
        tmp_path / "box", unique_identifier_type="NOTHING", talkdesk={"latency": 0.2}
    ).start()
    try:
        box.salesforce.insert_many([person(i) for i in range(CONTACTS)])
        with processes(service_env(box, db_url, broker_url), tmp_path) as procs:
            worker = procs.start("worker", "-c", "2", name="worker")
            procs.start("beat", name="beat")
            wait_until(
                lambda: box.talkdesk.stats()["creates_bulk"] >= 3, timeout=120, what="creates"
            )
            before = box.talkdesk.stats()["records_created"]
            restart()
            restarted = datetime.now(UTC)
            wait_until(lambda: settled(box, db_url), timeout=240, what="convergence")
            cycles = 1 + runs_since(db_url, restarted)  # the cycle it hit, then later pulls
            details: dict[str, object] = {
                "created_before_restart": before,
                "worker_survived": worker.poll() is None,
                "created_by_dialer": box.talkdesk.stats()["records_created"],
            }
        return box, cycles, details
    finally:
        box.stop()


def test_redis_restarted_during_a_run(
    tmp_path: Path, fault_pg_url: str, private_redis: PrivateRedis, fault_report: FaultReport
) -> None:
    box, cycles, details = converge_after_restart(
        tmp_path, fault_pg_url, private_redis.url, private_redis.restart
    )
    m = measure(box)
    fault_report.record(
        "2a. Redis restarted",
        fault="Redis (broker, pull lock, rate limit) restarted during a run",
        injected=f"Redis killed and restarted empty (no persistence) 1 s later, after 3 of "
        f"{CONTACTS // 100} bulk creates (NOTHING list, Postgres)",
        cycles=cycles,
        lost=m.lost,
        duplicated=m.duplicated,
        **details,
    )
    assert m.ok, m
    assert details["worker_survived"]  # it reconnected; nobody restarted it
    assert details["created_by_dialer"] == CONTACTS  # nothing sent twice


def test_postgres_restarted_during_a_run(
    tmp_path: Path,
    private_postgres: PrivatePostgres,
    fault_pg_url: str,
    private_redis: PrivateRedis,
    fault_report: FaultReport,
) -> None:
    box, cycles, details = converge_after_restart(
        tmp_path, fault_pg_url, private_redis.url, private_postgres.restart
    )
    m = measure(box)
    fault_report.record(
        "2b. PostgreSQL restarted",
        fault="PostgreSQL (the state DB) restarted during a run",
        injected=f"PostgreSQL stopped (fast: every connection cut), started 1 s later, after "
        f"3 of {CONTACTS // 100} bulk creates (NOTHING list)",
        cycles=cycles,
        lost=m.lost,
        duplicated=m.duplicated,
        **details,
    )
    assert m.ok, m
    assert details["worker_survived"]
    assert details["created_by_dialer"] == CONTACTS
