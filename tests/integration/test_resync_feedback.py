"""Resync feedback that tells the truth (issue 11, item 6): a refused resync is a FAILED task with
its reason, Ids Salesforce does not know are named, and the CLI can wait for a queued resync."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.salesforce import make_id
from tests.integration.helpers import person
from tests.integration.service import (
    FLOWER_AUTH,
    flower_env,
    free_port,
    processes,
    service_env,
    wait_until,
)
from tests.integration.test_cli import cli

# Well-formed (the checksum suffix is right) but no contact of the sandbox org has it.
UNKNOWN = make_id("003", 999_999)


def test_inline_resync_names_the_ids_salesforce_does_not_know(
    sandboxes: Sandboxes, tmp_path: Path
) -> None:
    ids = sandboxes.salesforce.insert_many([person(i) for i in range(2)])
    env = sandboxes.env()
    assert cli(["sync"], env, tmp_path).returncode == 0
    result = cli(["resync", "--contact", ids[0], "--contact", UNKNOWN, "--json"], env, tmp_path)
    assert result.returncode == 1
    assert UNKNOWN in result.stderr and "not in Salesforce" in result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["not_in_salesforce"] == [UNKNOWN] and counts["updated"] == 1


@pytest.mark.redis
@pytest.mark.slow
def test_queued_resync_waits_reports_unknown_ids_and_fails_refused_tasks(
    tmp_path: Path, broker_url: str
) -> None:
    port = free_port()
    auth = FLOWER_AUTH
    base = f"http://127.0.0.1:{port}"
    with Sandboxes(tmp_path / "box") as box:
        db = f"sqlite:///{tmp_path / 'state.db'}"
        env = service_env(box, db, broker_url, **flower_env(port))
        env["DIALSYNC_SYNC__INTERVAL_SECONDS"] = "3600"  # only the resyncs run
        ids = box.salesforce.insert_many([person(i) for i in range(5)])
        with processes(env, tmp_path) as procs:
            assert procs.run("sync").returncode == 0
            procs.start("worker", "-c", "1", name="worker")
            procs.start("flower", name="flower")

            # The CLI waits for the queued task, and names the id Salesforce does not know.
            waited = procs.run("resync", "--contact", ids[0], "--contact", UNKNOWN, "--wait", "90")
            assert waited.returncode == 1, waited.stderr
            assert f"{base}/task/" in waited.stdout  # where to follow it
            assert UNKNOWN in waited.stderr and ids[0] not in waited.stderr
            done = procs.run("resync", "--all", "--wait", "90", "--json")
            assert done.returncode == 0, done.stderr
            result = json.loads(done.stdout.strip().splitlines()[-1])
            assert result["updated"] == 5 and result["not_in_salesforce"] == []

            def flower_up() -> bool:
                try:
                    return httpx.get(f"{base}/api/workers", auth=auth, timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(flower_up, timeout=60, what="Flower")

            def finished(task_id: str) -> dict[str, Any]:
                """Flower's /api/task/result once the task has finished (it reads the state
                before waiting, so ask until the state is final)."""
                answers: list[dict[str, Any]] = []

                def final() -> bool:
                    answers.append(
                        httpx.get(
                            f"{base}/api/task/result/{task_id}",
                            params={"timeout": 5},
                            auth=auth,
                            timeout=15,
                        ).json()
                    )
                    return answers[-1]["state"] in ("SUCCESS", "FAILURE")

                wait_until(final, timeout=90, what=f"task {task_id}")
                return answers[-1]

            # Through Flower: a malformed id is a FAILED task whose result says why.
            sent = httpx.post(
                f"{base}/api/task/async-apply/dialsync.resync",
                json={"kwargs": {"contact_ids": ["003' OR Id != '"]}},
                auth=auth,
                timeout=10,
            )
            assert sent.status_code == 200, sent.text
            task_id = sent.json()["task-id"]
            answer = finished(task_id)
            assert answer["state"] == "FAILURE", answer
            reason = str(answer["result"])
            assert "refused" in reason and "contains only ASCII letters and digits" in reason
            # A well-formed unknown id: SUCCESS, and the result lists it.
            sent = httpx.post(
                f"{base}/api/task/async-apply/dialsync.resync",
                json={"kwargs": {"contact_ids": [UNKNOWN]}},
                auth=auth,
                timeout=10,
            )
            task_id = sent.json()["task-id"]
            answer = finished(task_id)
            assert answer["state"] == "SUCCESS", answer
            assert answer["result"]["not_in_salesforce"] == [UNKNOWN]
        assert "Traceback" not in procs.log("worker")  # a refusal is expected, not a crash
