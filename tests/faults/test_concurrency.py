"""7. Two workers, two beats and two `dialsync sync` at the same time: no duplicate, no double
send. A NOTHING list accepts anything twice, so every record sent twice would show."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialsync.sandbox.harness import Sandboxes
from tests.faults.conftest import FaultReport
from tests.faults.helpers import measure, settled
from tests.faults.hooks import runs_since
from tests.faults.servers import PrivateRedis
from tests.integration.helpers import person
from tests.integration.service import Processes, processes, service_env, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.redis, pytest.mark.postgres]


def two_syncs_at_once(procs: Processes) -> list[subprocess.CompletedProcess[str]]:
    """Start two `dialsync sync --wait 60` together and wait for both (bounded)."""
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "dialsync.cli", "sync", "--json", "--wait", "60"],
            env=procs.env,
            cwd=procs.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    done = []
    for proc in started:
        out, err = proc.communicate(timeout=180)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def test_two_workers_two_beats_and_two_syncs_never_send_twice(
    tmp_path: Path, fault_pg_url: str, private_redis: PrivateRedis, fault_report: FaultReport
) -> None:
    with (
        Sandboxes(
            tmp_path / "box", unique_identifier_type="NOTHING", talkdesk={"latency": 0.02}
        ) as box,
        processes(service_env(box, fault_pg_url, private_redis.url), tmp_path) as procs,
    ):
        sf, td = box.salesforce, box.talkdesk
        ids = sf.insert_many([person(i) for i in range(800)])
        began = datetime.now(UTC)
        for n in (1, 2):
            procs.start("worker", "-c", "2", name=f"worker{n}")
            procs.start(
                "beat",
                name=f"beat{n}",
                DIALSYNC_SYNC__BEAT_SCHEDULE_FILE=str(tmp_path / f"beat{n}"),
            )
        syncs = two_syncs_at_once(procs)
        assert all(s.returncode == 0 for s in syncs), [s.stderr[-500:] for s in syncs]
        wait_until(lambda: settled(box, fault_pg_url), timeout=120, what="initial load")
        first_cycles = runs_since(fault_pg_url, began, ("pull", "sync"))
        time.sleep(5)  # more beat cycles: nothing more may be sent
        stats = td.stats()
        assert stats["records_created"] == 800  # every record sent exactly once
        assert stats["records_updated"] == stats["records_deleted"] == 0

        # Changes while all six run: each must be sent exactly once.
        time.sleep(1.1)
        for cid in ids[:200]:
            sf.update(cid, {"LastName": "Changed"})
        for cid in ids[200:250]:
            sf.update(cid, {"DoNotCall": True})
        sf.insert_many([person(i) for i in range(5000, 5100)])
        changed = datetime.now(UTC)
        syncs = two_syncs_at_once(procs)
        assert all(s.returncode == 0 for s in syncs), [s.stderr[-500:] for s in syncs]
        wait_until(lambda: settled(box, fault_pg_url), timeout=120, what="the changes")
        second_cycles = runs_since(fault_pg_url, changed, ("pull", "sync"))
        time.sleep(5)
        stats = td.stats()
        m = measure(box)
        fault_report.record(
            "7. two workers, two beats, two `dialsync sync`",
            fault="everything twice at once: 2 workers (2 processes each), 2 beats, "
            "2 `dialsync sync`",
            injected="800 new contacts, then 200 changes, 50 DoNotCall, 100 new, with all six "
            "running (NOTHING list, Postgres, Redis)",
            cycles=max(first_cycles, second_cycles),
            lost=m.lost,
            duplicated=m.duplicated,
            records_created=stats["records_created"],
            records_updated=stats["records_updated"],
            records_deleted=stats["records_deleted"],
        )
        assert m.ok, m
        assert stats["records_created"] == 900
        assert stats["records_updated"] == 200
        assert stats["records_deleted"] == 50
        assert len(td.records(box.list_id)) == 850
