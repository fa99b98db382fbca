"""A credential refusal backs off (issue 11, item 3): the remote is asked again after 2x, 4x
... the interval, up to DIALSYNC_SYNC__RETRY_MAX_SECONDS, not every interval forever; and the
healthcheck reports it (item 2)."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from dialsync.sandbox.harness import Sandboxes
from tests.integration.helpers import ours, person
from tests.integration.service import processes, service_env, wait_until

ANNOUNCED = re.compile(r"refusal (\d+) in a row, backing off: next attempt in (\d+) s")


@pytest.mark.slow
def test_run_backs_off_after_a_credential_refusal(sandboxes: Sandboxes, tmp_path: Path) -> None:
    sandboxes.salesforce.insert_many([person(i) for i in range(3)])
    env = {
        **sandboxes.env(),
        "DIALSYNC_TALKDESK__CLIENT_SECRET": "wrong-secret-value",
        "DIALSYNC_SYNC__INTERVAL_SECONDS": "1",
        "DIALSYNC_SYNC__RETRY_MAX_SECONDS": "5",
    }
    with processes(env, tmp_path) as procs:
        run = procs.start("run", name="run")
        wait_until(lambda: "refusal 3 in a row" in procs.log("run"), timeout=60, what="refusals")
        assert run.poll() is None  # still running: it may be fixed on the remote side
        health = procs.run("health")
    found = [(int(n), int(s)) for n, s in ANNOUNCED.findall(procs.log("run"))]
    assert found[:3] == [(1, 2), (2, 4), (3, 5)]  # doubled from the interval, capped
    assert "DIALSYNC_TALKDESK__CLIENT_" in procs.log("run")
    assert "wrong-secret-value" not in procs.log("run")
    assert health.returncode == 1 and "unhealthy" in health.stdout


@pytest.mark.redis
@pytest.mark.slow
def test_worker_backs_off_after_a_credential_refusal_until_restarted(
    sandboxes: Sandboxes, tmp_path: Path, broker_url: str
) -> None:
    ids = sandboxes.salesforce.insert_many([person(i) for i in range(3)])
    db = f"sqlite:///{tmp_path / 'state.db'}"
    env = service_env(sandboxes, db, broker_url)
    secret = env["DIALSYNC_TALKDESK__CLIENT_SECRET"]
    env.update(
        {
            "DIALSYNC_TALKDESK__CLIENT_SECRET": "wrong-secret-value",
            "DIALSYNC_SYNC__INTERVAL_SECONDS": "1",
            "DIALSYNC_SYNC__RETRY_MAX_SECONDS": "600",
        }
    )
    with processes(env, tmp_path) as procs:
        worker = procs.start("worker", "-c", "1", name="worker")
        procs.start("beat", name="beat")
        wait_until(
            lambda: "refusal 4 in a row" in procs.log("worker"), timeout=120, what="refusals"
        )
        health = procs.run("health")
        log = procs.log("worker")
        # The operator fixes the secret and restarts the worker: it pulls at once, the pause
        # of the refusals (16 s now, up to 600) does not outlast the restart.
        procs.kill(worker, signal.SIGTERM)
        procs.start("worker", "-c", "1", name="fixed", DIALSYNC_TALKDESK__CLIENT_SECRET=secret)
        wait_until(lambda: set(ours(sandboxes)) == set(ids), timeout=60, what="the fixed sync")
        fixed = procs.log("fixed")
    found = [(int(n), int(s)) for n, s in ANNOUNCED.findall(log)]
    assert found[:4] == [(1, 2), (2, 4), (3, 8), (4, 16)]
    # between refusals, beat's pulls were skipped without asking Talkdesk again
    assert "credentials were refused: backing off" in log
    assert health.returncode == 1 and "a setting or credential" in health.stdout
    assert "backing off" not in fixed
