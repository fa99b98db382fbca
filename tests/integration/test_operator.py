"""The operator's commands against the sandboxes: plan (and that it predicts the sync), routing
to two record lists, runs, preview, mapping check, and the progress bar on a terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dialsync.plan import Plan, make_plan
from dialsync.sandbox.harness import Sandboxes
from dialsync.settings import MappingSettings
from dialsync.sources.salesforce import CURSOR
from dialsync.store.protocol import RUN_COUNTERS
from dialsync.store.store import open_store
from tests.integration.helpers import person, run
from tests.integration.test_cli import DIALSYNC, cli

MAPPING = """# customers and prospects are called by different teams
[priority]
field = "LeadSource"
values = {{ Web = 9, "Partner Referral" = 7 }}

[routing]
field = "Account.Type"
[routing.lists]
Customer = "{customers}"
Prospect = "{prospects}"
"""


class Clock:
    """The sandbox org's clock and the engine's, so a test can let a minute pass."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def org(box: Sandboxes) -> dict[str, Any]:
    """Contacts at a Customer, a Prospect, a Partner account and none; DNC and phoneless too."""
    sf = box.salesforce
    accounts = {
        "Customer": sf.insert_account("Acme", "Customer"),
        "Prospect": sf.insert_account("Globex", "Prospect"),
        "Partner": sf.insert_account("Initech", "Partner"),
    }
    kinds = ["Customer", "Prospect", "Partner", None]
    rows = []
    for i in range(48):
        kind = kinds[i % 4]
        extra = {"AccountId": accounts[kind]} if kind else {}
        rows.append(person(i, LeadSource=["Web", "Partner Referral", None][i % 3], **extra))
    rows.append(person(90, DoNotCall=True, AccountId=accounts["Prospect"]))
    rows.append({"LastName": "NoPhone", "AccountId": accounts["Customer"]})
    ids = sf.insert_many(rows)
    return {"accounts": accounts, "ids": ids, "kinds": [kinds[i % 4] for i in range(48)]}


def with_prospects(box: Sandboxes, tmp_path: Path) -> tuple[str, Path]:
    prospects = box.talkdesk.create_list("Prospects", "EXTERNAL")
    path = tmp_path / "mapping.toml"
    path.write_text(MAPPING.format(customers=box.list_id, prospects=prospects))
    return prospects, path


def ours_in(box: Sandboxes, list_id: str) -> dict[str, dict[str, Any]]:
    records = [
        r for r in box.talkdesk.records(list_id) if r.get("external_provider") == "salesforce"
    ]
    assert len({r["external_id"] for r in records}) == len(records), "duplicates"
    return {r["external_id"]: r for r in records}


def reasons(plan: Plan, list_id: str, category: str) -> dict[str, int]:
    return next(item.reasons[category] for item in plan.lists if item.list_id == list_id)


def test_routing_to_two_lists_and_the_plan_predicts_each_sync(tmp_path: Path, db_url: str) -> None:
    clock = Clock()
    with Sandboxes(tmp_path / "box", salesforce={"clock": clock}) as box:
        sf, td = box.salesforce, box.talkdesk
        prospects, path = with_prospects(box, tmp_path)
        made = org(box)
        ids, accounts = made["ids"], made["accounts"]
        overrides = {"mapping": MappingSettings(file=path)}
        settings = box.settings(db_url, **overrides)
        store = open_store(db_url)

        def plan_then_sync() -> Plan:
            writes, cursor = td.stats()["writes"], store.get_cursor(CURSOR)
            runs = len(store.recent_runs(1000))
            plan = make_plan(settings, clock=clock)
            # The plan wrote nothing: no dialer call, no cursor move, no run recorded.
            assert td.stats()["writes"] == writes
            assert store.get_cursor(CURSOR) == cursor
            assert len(store.recent_runs(1000)) == runs
            report = run(box, db_url, settings=overrides, clock=clock)
            assert plan.counts == report.as_dict()
            for item in plan.lists:
                assert item.records_after == len(ours_in(box, item.list_id)), item.name
            return plan

        first = plan_then_sync()
        assert first.counts["created"] == 48
        customers_now, prospects_now = ours_in(box, box.list_id), ours_in(box, prospects)
        by_kind = dict(zip(ids, made["kinds"], strict=False))
        assert {i for i, k in by_kind.items() if k == "Prospect"} == set(prospects_now)
        assert {i for i, k in by_kind.items() if k != "Prospect"} == set(customers_now)
        assert reasons(first, prospects, "skip")["routed_elsewhere"] == 36
        # priority from the LeadSource picklist; the rest get DIALSYNC_MAPPING__PRIORITY (5)
        assert {r["priority"] for r in prospects_now.values()} == {9, 7, 5}

        clock.offset += timedelta(seconds=2)  # SystemModstamp has one-second precision
        customer_ids = [i for i, k in by_kind.items() if k == "Customer"]
        prospect_ids = [i for i, k in by_kind.items() if k == "Prospect"]
        for cid in customer_ids[:3]:
            sf.update(cid, {"FirstName": "Renamed"})
        sf.update(customer_ids[3], {"DoNotCall": True})
        sf.update(customer_ids[4], {"AccountId": accounts["Prospect"]})  # moves list
        sf.soft_delete(customer_ids[5])
        sf.hard_delete(customer_ids[6])
        new = sf.insert_many([person(95, AccountId=accounts["Prospect"]), person(96)])
        td.remove_record(prospects, prospects_now[prospect_ids[0]]["id"])  # by hand
        clock.offset += timedelta(seconds=61)  # getDeleted reports by whole minutes

        second = plan_then_sync()
        assert reasons(second, box.list_id, "update") == {"first_name": 3}
        assert reasons(second, box.list_id, "delete") == {
            "deleted": 2,
            "do_not_call": 1,
            "routed_elsewhere": 1,
        }
        assert reasons(second, prospects, "create") == {
            "moved here from another list": 1,
            "new": 1,
            "removed from the list by hand": 1,
        }
        assert reasons(second, box.list_id, "create") == {"new": 1}
        assert set(ours_in(box, prospects)) == {*prospect_ids, customer_ids[4], new[0]}

        third = plan_then_sync()
        assert third.counts["created"] == third.counts["updated"] == third.counts["deleted"] == 0


@pytest.mark.slow
def test_cli_plan_json_is_what_sync_json_reports(sandboxes: Sandboxes, tmp_path: Path) -> None:
    box = sandboxes
    prospects, path = with_prospects(box, tmp_path)
    org(box)
    env = {**box.env(), "DIALSYNC_MAPPING__FILE": str(path)}

    def plan_and_sync() -> tuple[dict[str, Any], dict[str, Any]]:
        writes = box.talkdesk.stats()["writes"]
        planned = cli(["plan", "--json"], env, tmp_path)
        assert planned.returncode == 0, planned.stderr
        dry = cli(["sync", "--dry-run", "--json"], env, tmp_path)
        assert box.talkdesk.stats()["writes"] == writes
        synced = cli(["sync", "--json"], env, tmp_path)
        assert synced.returncode == 0, synced.stderr
        plan = json.loads(planned.stdout)
        done = json.loads(synced.stdout.strip().splitlines()[-1])
        for name in RUN_COUNTERS:
            assert plan[name] == done[name] == json.loads(dry.stdout)[name], name
        return plan, done

    state_db = Path(env["DIALSYNC_DATABASE_URL"].removeprefix("sqlite:///"))
    assert cli(["plan"], env, tmp_path).returncode == 0
    assert not state_db.exists()  # a plan before the first sync creates no state database
    plan, _ = plan_and_sync()
    by_list = {item["list_id"]: item for item in plan["lists"]}
    assert set(by_list) == {box.list_id, prospects}
    assert by_list[prospects]["records_after"] == len(ours_in(box, prospects)) == 12
    assert by_list[prospects]["examples"]["create"][0]["reason"] == "new"

    some = list(ours_in(box, box.list_id))[:2]
    for cid in some:
        box.salesforce.update(cid, {"LastName": "Changed"})
    plan, done = plan_and_sync()
    assert done["updated"] == 2
    human = cli(["plan"], env, tmp_path)
    assert human.returncode == 0, human.stderr
    assert f"talkdesk list {prospects} 'Prospects'" in human.stdout
    assert "a sync would report: queried" in human.stdout
    assert "nothing was written to the dialer" in human.stdout


def test_runs_lists_the_last_runs(sandboxes: Sandboxes, tmp_path: Path) -> None:
    box = sandboxes
    box.salesforce.insert_many([person(i) for i in range(5)])
    env = box.env()
    outputs = []
    for _ in range(2):
        result = cli(["sync", "--json"], env, tmp_path)
        outputs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    assert cli(["plan"], env, tmp_path).returncode == 0  # a plan is no run
    listed = json.loads(cli(["runs", "--json"], env, tmp_path).stdout)["runs"]
    assert [r["kind"] for r in listed] == ["sync", "sync"]
    for shown, counts in zip(listed, reversed(outputs), strict=True):
        assert {k: shown[k] for k in RUN_COUNTERS} == counts
        assert shown["status"] == "ok" and shown["seconds"] >= 0
    assert listed[0]["id"] > listed[1]["id"]
    only = json.loads(cli(["runs", "--json", "--kind", "push"], env, tmp_path).stdout)
    assert only["runs"] == []
    human = cli(["runs", "--limit", "1"], env, tmp_path).stdout.splitlines()
    assert human[0].split()[:4] == ["run", "kind", "status", "started"]
    assert len(human) == 2 and " sync " in human[1] and " ok " in human[1]


def test_preview_shows_the_contact_and_its_record_per_list(
    sandboxes: Sandboxes, tmp_path: Path
) -> None:
    box = sandboxes
    prospects, path = with_prospects(box, tmp_path)
    account = box.salesforce.insert_account("Globex", "Prospect")
    cid = box.salesforce.insert(
        person(7, AccountId=account, LeadSource="Web", Phone="(212) 555-0199 x12")
    )
    env = {**box.env(), "DIALSYNC_MAPPING__FILE": str(path)}

    def preview() -> dict[str, Any]:
        result = cli(["preview", "--contact", cid[:15], "--json"], env, tmp_path)
        assert result.returncode == 0, result.stderr
        return {item["list_id"]: item for item in json.loads(result.stdout)["lists"]}

    before = preview()
    record = before[prospects]["payload"]
    assert record["priority"] == 9
    assert record["extra_data"]["office_extension"] == "12"
    assert {p["phone_number"] for p in record["phone_numbers"]} == {"+14152070007", "+12125550199"}
    assert before[prospects]["next_sync"] == "create"
    assert before[box.list_id]["payload"] is None
    assert before[box.list_id]["reason"] == "routed_elsewhere"
    assert cli(["sync"], env, tmp_path).returncode == 0
    after = preview()
    assert after[prospects]["status"] == "synced" and after[prospects]["record_id"]
    assert after[prospects]["next_sync"] == "nothing (in step)"
    human = cli(["preview", "--contact", cid], env, tmp_path).stdout
    assert f"Contact {cid}" in human and "Account.Type" in human and "+12125550199" in human
    missing = cli(["preview", "--contact", "003000000000009AAA"], env, tmp_path)
    assert missing.returncode == 1 and "no Contact" in missing.stdout
    assert cli(["preview", "--contact", "x' OR Id != '"], env, tmp_path).returncode == 2


def test_mapping_check_names_lines_and_org_fields(sandboxes: Sandboxes, tmp_path: Path) -> None:
    box = sandboxes
    _, path = with_prospects(box, tmp_path)
    env = {**box.env(), "DIALSYNC_MAPPING__FILE": str(path)}
    good = cli(["mapping", "check"], env, tmp_path)
    assert good.returncode == 0, good.stderr
    assert f"{path}: valid" in good.stdout
    assert f"routing: Account.Type: Customer -> {box.list_id}" in good.stdout
    assert f"{path}:7: routing.field: Account.Type is read through a relationship" in good.stdout

    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("phones:\n  MobilePhone: MOBILE\n  Pager__c: EXTRA_1\n")
    result = cli(["mapping", "check", "--file", str(unknown)], env, tmp_path)
    assert result.returncode == 2
    assert f"{unknown}:3: phones.Pager__c: Contact has no field 'Pager__c'" in result.stderr
    offline = cli(
        ["mapping", "check", "--offline", "--file", str(unknown), "--json"], env, tmp_path
    )
    assert json.loads(offline.stdout)["valid"] is True
    as_json = cli(["mapping", "check", "--file", str(unknown), "--json"], env, tmp_path)
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["errors"][0].startswith(f"{unknown}:3:")

    broken = tmp_path / "broken.toml"
    broken.write_text("[phones]\nMobilePhone = MOBILE\n")
    result = cli(["mapping", "check", "--file", str(broken)], env, tmp_path)
    assert result.returncode == 2 and f"{broken}:2: TOML syntax" in result.stderr

    # A sync with a field the org lacks stops before any write, naming the line.
    box.salesforce.insert(person(1))
    result = cli(["sync"], {**env, "DIALSYNC_MAPPING__FILE": str(unknown)}, tmp_path)
    assert result.returncode == 2 and f"{unknown}:3" in result.stderr
    assert box.talkdesk.stats()["writes"] == 0


@pytest.mark.slow
def test_sync_shows_a_progress_bar_only_on_a_terminal(sandboxes: Sandboxes, tmp_path: Path) -> None:
    box = sandboxes
    box.salesforce.insert_many([person(i) for i in range(3000)])
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DIALSYNC_")}, **box.env()}
    leader, follower = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.run(
        [*DIALSYNC, "sync"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=follower,
        timeout=120,
        check=False,
    )
    os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    terminal = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "[########################] 100%" in terminal
    # An initial load: the contacts were counted first, so the bar knows the whole.
    assert "read 3,000 of 3,000 · created 3,000 · updated 0" in terminal
    frames = [f for f in re.split(r"[\r\n]", terminal) if f.startswith("[")]
    shares = [int(m.group(1)) for f in frames if (m := re.search(r"\]\s+(\d+)%", f))]
    assert len(shares) >= 3, frames
    assert shares == sorted(shares), shares  # the bar never goes backwards
    tail = re.compile(r"[\d,]+ contacts/s · (ETA -|ETA \d+m\d\ds|done)$")
    assert all(tail.search(f.rstrip()) for f in frames), frames
    assert any("ETA" in f for f in frames) and frames[-1].rstrip().endswith("done")
    box.salesforce.insert(person(40))
    piped = cli(["sync"], box.env(), tmp_path)
    assert piped.returncode == 0 and "· created" not in piped.stderr


@pytest.mark.parametrize("command", ["plan", "runs", "preview", "mapping", "doctor"])
def test_help(command: str, tmp_path: Path) -> None:
    result = cli([command, "--help"], {}, tmp_path)
    assert result.returncode == 0 and "Usage" in result.stdout
