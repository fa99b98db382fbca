"""`dialsync run` through a short outage of its state database (issue 11, item 3).

The embedded runner is one process with nothing to restart it but systemd: a lost connection
must be a transient failure it retries, with backoff, saying so, not a crash with exit 1.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dialsync.sandbox.harness import Sandboxes
from tests.faults.servers import PrivatePostgres
from tests.integration.helpers import ours, person
from tests.integration.service import processes, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.postgres]


def test_run_survives_a_database_outage(
    tmp_path: Path, private_postgres: PrivatePostgres, fault_pg_url: str
) -> None:
    with Sandboxes(tmp_path / "box") as box:
        ids = box.salesforce.insert_many([person(i) for i in range(20)])
        # The outage's wait is capped at the interval: at 1 s every wait is 1 s and no backoff
        # could show; at 4 s the first three are 1, 2 and 4 s.
        env = {**box.env(fault_pg_url), "DIALSYNC_SYNC__INTERVAL_SECONDS": "4"}
        with processes(env, tmp_path) as procs:
            run = procs.start("run", name="run")
            wait_until(lambda: set(ours(box)) == set(ids), what="the first sync")
            private_postgres.stop("fast")
            try:
                wait_until(
                    lambda: "(attempt 3)" in procs.log("run"), timeout=90, what="three retries"
                )
            finally:
                private_postgres.start()
            late = box.salesforce.insert(person(99))
            wait_until(lambda: late in ours(box), timeout=90, what="the sync after the outage")
            # the record lands before the cycle that sent it logs its end
            wait_until(lambda: "cycle succeeded again" in procs.log("run"), what="the cycle's end")
            assert run.poll() is None  # it never exited
            log = procs.log("run")
    retries = re.findall(r"state database unavailable \(.*\); retrying in (\d+) s", log)
    assert len(retries) >= 3
    waits = [int(w) for w in retries[:3]]
    assert waits == sorted(waits) and waits[0] < waits[-1], waits  # backing off
    assert "unexpected" not in log and "Traceback" not in log
    assert "cycle succeeded again" in log
