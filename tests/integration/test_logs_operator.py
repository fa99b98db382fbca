"""Logs an operator can use (issue 11, item 8): each call at DEBUG, masked; an expected failure
in one WARNING line without traceback; JSON lines with fields, Celery's own lines included."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dialsync.sandbox.harness import Sandboxes
from tests.integration.helpers import ours, person
from tests.integration.service import processes, wait_until
from tests.integration.test_cli import cli


@pytest.mark.parametrize("how", ["--debug", "DIALSYNC_LOG_LEVEL=DEBUG"])
def test_debug_shows_each_query_and_dialer_call_masked(
    sandboxes: Sandboxes, tmp_path: Path, how: str
) -> None:
    box = sandboxes
    box.salesforce.insert_many([person(i) for i in range(5)])
    env = box.env()
    args = ["sync"]
    if how == "--debug":
        args.append("--debug")
    else:
        env["DIALSYNC_LOG_LEVEL"] = "DEBUG"
    result = cli(args, env, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    query = [
        line for line in lines if "salesforce GET /services/data/" in line and "SELECT" in line
    ]
    assert query, result.stderr
    # The SOQL, the status, the duration and the records the page held.
    assert re.search(
        r"FROM Contact WHERE SystemModstamp <= \S+ ORDER BY SystemModstamp, Id -> 200 in "
        r"\d+\.\d{3}s, 5 records",
        "\n".join(query),
    ), query
    # The initial load is counted first, with one SELECT COUNT().
    assert sum("SELECT COUNT() FROM Contact" in line for line in lines) == 1
    write = [
        line for line in lines if f"talkdesk POST /record-lists/{box.list_id}/records/bulks" in line
    ]
    assert len(write) == 1 and re.search(r"-> 201 in \d+\.\d{3}s, 5 records", write[0]), write
    assert any("talkdesk POST /oauth/token -> 200" in line for line in lines)
    # Nothing personal or secret: no secret, number or name of a contact.
    for secret in (box.salesforce.client_secret, box.talkdesk.client_secret):
        assert secret not in result.stderr
    for i in range(5):
        assert f"Last{i}" not in result.stderr and f"2{i:02d}-{i:04d}" not in result.stderr
    assert "4152" not in result.stderr


@pytest.mark.slow
@pytest.mark.redis
def test_worker_json_logs_have_fields_and_a_503_is_one_warning(
    sandboxes: Sandboxes, tmp_path: Path, broker_url: str
) -> None:
    box = sandboxes
    ids = box.salesforce.insert_many([person(i) for i in range(8)])
    env = {
        **box.env(),
        "DIALSYNC_BROKER_URL": broker_url,
        "DIALSYNC_SYNC__INTERVAL_SECONDS": "1",
        "DIALSYNC_LOG_FORMAT": "json",
        # the failed pull's retries (about 1, 2 and 4 s by default) in a fraction of a second
        "DIALSYNC_SALESFORCE__MAX_BACKOFF_SECONDS": "0.1",
    }
    # Salesforce answers 503 more times than its client retries within one pull (4 for the
    # count of the initial load, 4 for the query): that pull fails, transiently; a later one
    # goes through.
    box.salesforce.fail_next(8, 503, "SERVER_UNAVAILABLE", "down for maintenance", "query")
    with processes(env, tmp_path) as procs:
        assert procs.run("db", "upgrade").returncode == 0
        procs.start("worker", "-c", "1", name="worker")
        procs.start("beat", name="beat")
        wait_until(lambda: set(ours(box)) == set(ids), what="the sync after the outage")
        wait_until(lambda: '"kind": "push"' in procs.log("worker"), what="a push run's line")
    for name in ("worker", "beat"):
        text = procs.log(name)
        entries = []
        for line in text.splitlines():
            if "Warm shutdown" in line:  # Celery prints this from its signal handler, then stops
                break
            if line.strip():
                entries.append(json.loads(line))  # every line is JSON, Celery's included
        assert any(e["logger"].startswith("celery") for e in entries), name
    worker = [json.loads(line) for line in procs.log("worker").splitlines() if line[:1] == "{"]
    # (the test stops the worker's whole process group at the end: that is no failure to log)
    assert "Traceback" not in procs.log("worker").split("Warm shutdown")[0]
    failed = [
        e for e in worker if e["level"] in ("warning", "error") and "dialsync.pull" in e["message"]
    ]
    assert len(failed) == 1, failed  # one line for the failed pull, nothing else about it
    assert not any("raised expected" in e["message"] for e in worker)  # Celery's own, dropped
    assert failed[0]["level"] == "warning" and failed[0]["status"] == 503
    assert failed[0]["task_name"] == "dialsync.pull" and "exc" not in failed[0]
    finished = [e for e in worker if e.get("kind") == "pull" and e.get("status") == "ok"]
    assert finished and isinstance(finished[-1]["counts"], dict)
    # every contact reached the list through a pull that read it: the counts are the run's own
    assert sum(e["counts"]["queried"] for e in finished) >= len(ids)
    assert finished[-1]["run_id"] >= 1
    assert isinstance(finished[-1]["seconds"], float)
    started = [e for e in worker if e["message"].startswith("run ") and "started" in e["message"]]
    assert started and all("run_id" in e and "kind" in e for e in started)
