"""The deployed service: real Redis, PostgreSQL, Celery worker and beat processes, Flower."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from dialsync.sandbox.harness import Sandboxes
from dialsync.store.store import open_store
from tests.integration.helpers import ours, person
from tests.integration.service import (
    FLOWER_AUTH,
    flower_env,
    free_port,
    processes,
    service_env,
    wait_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def converged(box: Sandboxes, expected: set[str]) -> bool:
    try:
        return set(ours(box)) == expected
    except AssertionError:
        return False


def test_change_reaches_the_dialer_with_no_manual_call(
    tmp_path: Path, pg_url: str, broker_url: str
) -> None:
    with (
        Sandboxes(tmp_path / "box") as box,
        # beat every second: the load and the change go out a pull sooner
        processes(
            service_env(box, pg_url, broker_url, DIALSYNC_SYNC__INTERVAL_SECONDS="1"), tmp_path
        ) as procs,
    ):
        sf = box.salesforce
        ids = sf.insert_many([person(i) for i in range(150)])
        assert procs.run("db", "upgrade").returncode == 0
        procs.start("worker", "-c", "2", name="worker")
        procs.start("beat", name="beat")
        wait_until(lambda: converged(box, set(ids)), what="initial load")
        time.sleep(1.1)
        sf.update(ids[0], {"LastName": "Changed"})
        sf.update(ids[1], {"DoNotCall": True})
        wait_until(
            lambda: (
                converged(box, set(ids) - {ids[1]}) and ours(box)[ids[0]]["last_name"] == "Changed"
            ),
            what="the change",
        )


def test_resync_from_the_cli_and_from_flower(tmp_path: Path, pg_url: str, broker_url: str) -> None:
    port = free_port()
    with (
        Sandboxes(tmp_path / "box") as box,
        processes(service_env(box, pg_url, broker_url, **flower_env(port)), tmp_path) as procs,
    ):
        ids = box.salesforce.insert_many([person(i) for i in range(20)])
        assert procs.run("sync").returncode == 0
        procs.start("worker", "-c", "1", name="worker")
        procs.start("flower", name="flower")
        store = open_store(pg_url)

        def resync_runs() -> list[dict[str, object]]:
            return [
                r for r in store.recent_runs(50) if r["kind"] == "resync" and r["status"] == "ok"
            ]

        queued = procs.run("resync", "--all", "--json")
        assert queued.returncode == 0, queued.stderr
        assert json.loads(queued.stdout.strip().splitlines()[-1])["queued"]
        wait_until(lambda: len(resync_runs()) == 1, what="the CLI resync")
        assert resync_runs()[0]["updated"] == 20

        base = f"http://127.0.0.1:{port}"

        def flower_up() -> bool:
            try:
                return (
                    httpx.get(f"{base}/api/workers", auth=FLOWER_AUTH, timeout=2).status_code == 200
                )
            except httpx.HTTPError:
                return False

        wait_until(flower_up, timeout=60, what="Flower")
        assert httpx.get(f"{base}/api/tasks", timeout=5).status_code == 401  # never without auth
        sent = httpx.post(
            f"{base}/api/task/async-apply/dialsync.resync",
            json={"kwargs": {"contact_ids": [ids[0]]}},
            auth=FLOWER_AUTH,
            timeout=10,
        )
        assert sent.status_code == 200, sent.text
        task_id = sent.json()["task-id"]
        wait_until(lambda: len(resync_runs()) == 2, what="the Flower resync")

        def listed() -> bool:
            tasks = httpx.get(f"{base}/api/tasks", auth=FLOWER_AUTH, timeout=5).json()
            return task_id in tasks and tasks[task_id]["state"] == "SUCCESS"

        wait_until(listed, what="the task in Flower's /api/tasks")
