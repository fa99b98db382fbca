"""A Talkdesk record list holds at most so many records (issue 11 item 12), as the operator sees it.

The sandbox enforces a small capacity per list (Talkdesk's is 250,000): creates that would pass
it wait in the sync table with the reason LIST_FULL instead of failing batch after batch, go
out once records are removed, and `doctor` says when a list passes 80% or is full.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from dialsync.sandbox.harness import Sandboxes
from tests.integration.helpers import person
from tests.integration.test_cli import cli


def sync(env: dict[str, str], cwd: Path, code: int = 0) -> tuple[dict[str, int], str]:
    """One `dialsync sync`; a run that leaves creates waiting has not converged: exit 1."""
    result = cli(["sync", "--json"], env, cwd)
    assert result.returncode == code, result.stderr
    if code:
        assert "records are not in their desired state in the dialer yet" in result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def errors(env: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    result = cli(["errors", "--json"], env, cwd)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)["records"]
    return rows


def doctor(env: dict[str, str], cwd: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    result = cli(["doctor", "--json", "--no-scan"], env, cwd)
    return result.returncode, {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def in_list(box: Sandboxes) -> set[str]:
    return {r["external_id"] for r in box.talkdesk.records(box.list_id)}


def test_creates_past_the_limit_wait_and_go_out_when_room_appears(tmp_path: Path) -> None:
    with Sandboxes(tmp_path / "box", talkdesk={"list_capacity": 10}) as box:
        sf, td = box.salesforce, box.talkdesk
        ids = sf.insert_many([person(i) for i in range(14)])
        env = {**box.env(), "DIALSYNC_TALKDESK__LIST_CAPACITY": "10"}

        counts, stderr = sync(env, tmp_path, code=1)
        assert counts["created"] == 10 and counts["retrying"] == 4 and counts["rejected"] == 0
        assert len(in_list(box)) == 10
        stats = td.stats()
        # Held, not sent: one bulk create of the 10 that fit, and no refusal from the dialer.
        assert stats["creates_bulk"] == 1 and 400 not in stats["status_counts"]
        assert "is full (10 of at most 10 records (100%)): 4 creates wait" in stderr
        waiting = errors(env, tmp_path)
        assert {r["external_id"] for r in waiting} == set(ids) - in_list(box)
        assert {(r["status"], r["reason_code"]) for r in waiting} == {("retrying", "LIST_FULL")}
        assert "10 of at most 10 records" in waiting[0]["reason_message"]
        human = cli(["errors"], env, tmp_path).stdout
        assert re.search(r"retrying\s+LIST_FULL\s+4\n", human), human  # the summary by reason
        assert human.count("the create waits until records are removed from the list") == 4

        code, checks = doctor(env, tmp_path)
        full = checks["talkdesk list Outbound capacity"]
        assert code != 0 and full["status"] == "fail", checks
        assert "full, 10 of at most 10 records (100%)" in full["detail"]
        assert "route contacts to another list" in full["fix"]

        # Five contacts must not be called any more: their removal makes room for four.
        gone = sorted(in_list(box))[:5]
        for cid in gone:
            sf.update(cid, {"DoNotCall": True})
        counts, stderr = sync(env, tmp_path)
        # (A create tried before the deletes made room is held once more, counted as retrying,
        # and sent in the same run once the removals freed the room.)
        assert counts["deleted"] == 5 and counts["created"] == 4, stderr
        assert in_list(box) == set(ids) - set(gone)
        assert "holds 10 of at most 10 records (100%)" in stderr  # said as the list is opened
        assert [r for r in errors(env, tmp_path) if r["reason_code"] == "LIST_FULL"] == []

        code, checks = doctor(env, tmp_path)
        warned = checks["talkdesk list Outbound capacity"]
        assert code == 0 and warned["status"] == "warn", checks
        assert "9 of at most 10 records (90%), past Talkdesk's 80% warning" in warned["detail"]


def test_a_list_that_refuses_creates_as_full_holds_them_without_retrying_each(
    tmp_path: Path,
) -> None:
    """The dialer's list is smaller than dialsync was told: its refusal holds the creates."""
    with Sandboxes(tmp_path / "box", talkdesk={"list_capacity": 10}) as box:
        ids = box.salesforce.insert_many([person(i) for i in range(14)])
        env = box.env()  # LIST_CAPACITY left at Talkdesk's 250,000
        counts, stderr = sync(env, tmp_path, code=1)
        assert counts["created"] == 0 and counts["rejected"] == 0 and counts["retrying"] == 14
        stats = box.talkdesk.stats()
        assert stats["creates_bulk"] == 1  # not split and sent again record by record
        assert stats["status_counts"].get(400) == 1
        assert "refused creates as full" in stderr
        waiting = errors(env, tmp_path)
        assert {r["external_id"] for r in waiting} == set(ids)
        assert {r["reason_code"] for r in waiting} == {"LIST_FULL"}
        assert in_list(box) == set()


def test_creates_held_for_room_go_out_in_the_run_whose_removals_make_it(tmp_path: Path) -> None:
    """The held creates' retry time is far off (an hour): the removals of this very run make
    room, so they are due at once, not an hour later."""
    with Sandboxes(tmp_path / "box", talkdesk={"list_capacity": 10}) as box:
        ids = box.salesforce.insert_many([person(i) for i in range(14)])
        env = {
            **box.env(),
            "DIALSYNC_TALKDESK__LIST_CAPACITY": "10",
            "DIALSYNC_SYNC__RETRY_BASE_SECONDS": "3600",
            "DIALSYNC_SYNC__RETRY_MAX_SECONDS": "3600",
        }
        sync(env, tmp_path, code=1)
        gone = sorted(in_list(box))[:5]
        for cid in gone:
            box.salesforce.update(cid, {"DoNotCall": True})
        counts, stderr = sync(env, tmp_path)
        assert counts["deleted"] == 5 and counts["created"] == 4, stderr
        assert in_list(box) == set(ids) - set(gone)


def test_plan_says_which_creates_a_full_list_would_hold(tmp_path: Path) -> None:
    with Sandboxes(tmp_path / "box", talkdesk={"list_capacity": 10}) as box:
        box.salesforce.insert_many([person(i) for i in range(14)])
        env = {**box.env(), "DIALSYNC_TALKDESK__LIST_CAPACITY": "10"}
        result = cli(["plan"], env, tmp_path)
        assert result.returncode == 0, result.stderr
        assert "note: 4 creates wait: talkdesk list" in result.stdout
        assert "would hold 10 of at most 10 records (100%)" in result.stdout
        assert "created 10, updated 0, deleted 0" in result.stdout and "retrying 4" in result.stdout
        assert in_list(box) == set()
