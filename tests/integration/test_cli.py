"""The `dialsync` command as an operator runs it: a real subprocess, env vars, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dialsync.sandbox.harness import Sandboxes
from tests.cli_fork import run_cli
from tests.integration.helpers import ours, person

DIALSYNC = [sys.executable, "-m", "dialsync.cli"]


def cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m dialsync.cli ARGS` in a child process (forked from a preloaded server, see
    tests/cli_fork.py)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIALSYNC_")}
    return run_cli(args, {**clean, **env}, cwd, timeout)


def test_sync_json_status_errors(sandboxes: Sandboxes, tmp_path: Path) -> None:
    sf = sandboxes.salesforce
    ids = sf.insert_many([person(i) for i in range(10)])
    sf.insert(person(50, DoNotCall=True))
    env = sandboxes.env()
    result = cli(["sync", "--json"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts == {
        "queried": 11,
        "created": 10,
        "updated": 0,
        "deleted": 0,
        "unchanged": 0,
        "skipped": 1,
        "rejected": 0,
        "retrying": 0,
    }
    assert set(ours(sandboxes)) == set(ids)
    again = json.loads(cli(["sync", "--json"], env, tmp_path).stdout.strip().splitlines()[-1])
    assert again["created"] == again["updated"] == again["deleted"] == 0

    status = json.loads(cli(["status", "--json"], env, tmp_path).stdout)
    states = status["records"]["talkdesk"][sandboxes.list_id]
    assert states == {"synced": 10, "skipped": 1}
    assert status["cursor"]["system_modstamp"]
    assert status["last_run"]["status"] == "ok"
    errors = json.loads(cli(["errors", "--json"], env, tmp_path).stdout)
    assert [r["reason_code"] for r in errors["records"]] == ["do_not_call"]
    human = cli(["status"], env, tmp_path)
    assert "synced 10" in human.stdout


def test_dry_run_writes_nothing_and_keeps_the_cursor(sandboxes: Sandboxes, tmp_path: Path) -> None:
    sandboxes.salesforce.insert_many([person(i) for i in range(5)])
    env = sandboxes.env()
    result = cli(["sync", "--dry-run", "--json"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["created"] == 5
    assert sandboxes.talkdesk.stats()["writes"] == 0
    status = json.loads(cli(["status", "--json"], env, tmp_path).stdout)
    assert status["cursor"]["system_modstamp"] is None


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        ("DIALSYNC_TALKDESK__RECORD_LIST_ID", "DIALSYNC_TALKDESK__RECORD_LIST_ID"),
        ("DIALSYNC_SALESFORCE__CLIENT_SECRET", "DIALSYNC_SALESFORCE__CLIENT_SECRET"),
    ],
)
def test_missing_setting_exits_2_naming_it(
    sandboxes: Sandboxes, tmp_path: Path, unset: str, named: str
) -> None:
    env = sandboxes.env()
    env.pop(unset)
    result = cli(["sync"], env, tmp_path)
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_setting_exits_2(sandboxes: Sandboxes, tmp_path: Path) -> None:
    env = {**sandboxes.env(), "DIALSYNC_SYNC__INTERVAL_SECONDS": "often"}
    result = cli(["sync"], env, tmp_path)
    assert result.returncode == 2
    assert "DIALSYNC_SYNC__INTERVAL_SECONDS" in result.stderr


def test_wrong_credentials_exit_2_in_one_line(sandboxes: Sandboxes, tmp_path: Path) -> None:
    env = {**sandboxes.env(), "DIALSYNC_SALESFORCE__CLIENT_SECRET": "wrong-secret-value"}
    result = cli(["sync"], env, tmp_path)
    assert result.returncode == 2  # the operator must fix a credential
    lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "invalid_client" in lines[0]
    assert "Traceback" not in result.stderr
    assert "wrong-secret-value" not in result.stderr
    env = {**sandboxes.env(), "DIALSYNC_TALKDESK__CLIENT_SECRET": "nope-nope"}
    result = cli(["sync"], env, tmp_path)
    assert result.returncode == 2 and "talkdesk" in result.stderr
    debug = cli(["sync", "--debug"], env, tmp_path)
    assert "Traceback" in debug.stderr and "nope-nope" not in debug.stderr


def test_unreachable_api_exits_1(sandboxes: Sandboxes, tmp_path: Path) -> None:
    env = {
        **sandboxes.env(),
        "DIALSYNC_TALKDESK__API_URL": "http://127.0.0.1:9",
        "DIALSYNC_TALKDESK__MAX_ATTEMPTS": "1",
    }
    result = cli(["sync"], env, tmp_path)
    assert result.returncode == 1
    assert "cannot connect" in result.stderr


@pytest.mark.parametrize(
    "bad", ["003' OR Id != '", "003", "0030O000024ukNtQADX", "003000000000001ZZZ", "; DROP TABLE"]
)
def test_hostile_resync_ids_are_refused_before_any_query(
    sandboxes: Sandboxes, tmp_path: Path, bad: str
) -> None:
    result = cli(["resync", "--contact", bad], sandboxes.env(), tmp_path)
    assert result.returncode == 2
    assert sandboxes.salesforce.server.requests() == []


def test_resync_contact_and_all(sandboxes: Sandboxes, tmp_path: Path) -> None:
    sf, td = sandboxes.salesforce, sandboxes.talkdesk
    ids = sf.insert_many([person(i) for i in range(3)])
    env = sandboxes.env()
    assert cli(["sync"], env, tmp_path).returncode == 0
    # someone edits the record in the dialer; resync puts ours back without a Salesforce change
    record = ours(sandboxes)[ids[0]]
    td.add_record(
        sandboxes.list_id,
        {
            "first_name": "x",
            "last_name": "x",
            "phone_numbers": [{"phone_number": "+14155550199", "phone_type": "HOME"}],
        },
    )
    short = ids[0][:15]
    result = cli(["resync", "--contact", short, "--json"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["updated"] == 1
    assert ours(sandboxes)[ids[0]]["id"] == record["id"]
    result = cli(["resync", "--all", "--json"], env, tmp_path)
    assert json.loads(result.stdout.strip().splitlines()[-1])["updated"] == 3
    assert cli(["resync"], env, tmp_path).returncode == 2


def test_second_sync_waits_or_exits_0(sandboxes: Sandboxes, tmp_path: Path) -> None:
    from dialsync.store.locks import writer_lock
    from dialsync.store.store import open_store

    env = sandboxes.env()
    store = open_store(env["DIALSYNC_DATABASE_URL"])
    with writer_lock(store.engine, "sync"):
        result = cli(["sync", "--json"], env, tmp_path)
    assert result.returncode == 0
    assert "another dialsync sync is running" in result.stderr
    assert sandboxes.talkdesk.stats()["writes"] == 0


def test_db_upgrade_and_help(tmp_path: Path) -> None:
    from dialsync.store import migrate

    env = {"DIALSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = cli(["db", "upgrade"], env, tmp_path)
    assert result.returncode == 0 and f"revision {migrate.head_revision()}" in result.stdout
    for command in ("sync", "status", "errors", "resync", "demo", "db"):
        assert cli([command, "--help"], env, tmp_path).returncode == 0
