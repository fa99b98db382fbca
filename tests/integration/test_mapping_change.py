"""A mapping change reaches the dialer (issue 11 item 1), run as the operator runs it.

Each test syncs, changes one input that shapes payloads (the mapping file's priority or
routing, DIALSYNC_MAPPING__PRIORITY, __DEFAULT_REGION, a destination's field setting), then runs
`dialsync plan` and `dialsync sync` as subprocesses: the plan names the change and its count,
the sync sends exactly the records whose payload changed, and the next sync sends nothing.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dialsync.sandbox.harness import Sandboxes
from tests.integration.helpers import person
from tests.integration.test_cli import cli

LEAD_SOURCES = ["Web", "Partner Referral", None]  # by i % 3


def sync(env: dict[str, str], cwd: Path) -> dict[str, int]:
    result = cli(["sync", "--json"], env, cwd)
    assert result.returncode == 0, result.stderr
    counts: dict[str, int] = json.loads(result.stdout.strip().splitlines()[-1])
    return counts


def plan(env: dict[str, str], cwd: Path) -> tuple[str, dict[str, Any]]:
    text = cli(["plan"], env, cwd)
    assert text.returncode == 0, text.stderr
    data = cli(["plan", "--json"], env, cwd)
    assert data.returncode == 0, data.stderr
    return text.stdout, json.loads(data.stdout)


def in_list(box: Sandboxes, list_id: str) -> dict[str, dict[str, Any]]:
    records = box.talkdesk.records(list_id)
    ours = {r["external_id"]: r for r in records if r.get("external_provider") == "salesforce"}
    assert len(ours) == len(records), "a duplicate or a foreign record"
    return ours


def writes(box: Sandboxes) -> int:
    return int(box.talkdesk.stats()["writes"])


def the_same_again(box: Sandboxes, env: dict[str, str], cwd: Path) -> None:
    """Once applied, the change is recorded: the next sync sends nothing."""
    before = writes(box)
    again = sync(env, cwd)
    assert again["created"] == again["updated"] == again["deleted"] == 0, again
    assert writes(box) == before
    text, _ = plan(env, cwd)
    assert "the mapping changed" not in text


def test_priority_setting_change_updates_every_record(tmp_path: Path, db_url: str) -> None:
    with Sandboxes(tmp_path / "box") as box:
        ids = box.salesforce.insert_many([person(i) for i in range(6)])
        env = box.env(db_url)  # SQLite and PostgreSQL: the plan copies the fingerprints too
        assert sync(env, tmp_path)["created"] == 6
        assert {r["priority"] for r in in_list(box, box.list_id).values()} == {5}

        env["DIALSYNC_MAPPING__PRIORITY"] = "8"
        text, data = plan(env, tmp_path)
        assert "the mapping changed: 6 records will be updated" in text, text
        assert "DIALSYNC_MAPPING__PRIORITY" in text
        assert data["updated"] == 6 and data["created"] == data["deleted"] == 0
        assert writes(box) == 1  # the plan sent nothing: the one bulk create of the first sync

        counts = sync(env, tmp_path)
        assert counts["updated"] == 6 and counts["created"] == counts["deleted"] == 0
        records = in_list(box, box.list_id)
        assert set(records) == set(ids)
        assert {r["priority"] for r in records.values()} == {8}
        the_same_again(box, env, tmp_path)


def test_a_setting_change_that_alters_no_payload_sends_nothing(tmp_path: Path) -> None:
    with Sandboxes(tmp_path / "box") as box:
        # Every contact says its country: the default region shapes none of them.
        box.salesforce.insert_many([person(i) for i in range(5)])
        env = box.env()
        sync(env, tmp_path)
        before, records = writes(box), in_list(box, box.list_id)

        env["DIALSYNC_MAPPING__DEFAULT_REGION"] = "CA"
        text, data = plan(env, tmp_path)
        assert "the mapping changed: 0 records will be updated" in text, text
        assert data["updated"] == data["created"] == data["deleted"] == 0
        counts = sync(env, tmp_path)
        assert counts["updated"] == counts["created"] == counts["deleted"] == 0
        assert counts["unchanged"] == 5
        assert writes(box) == before
        assert in_list(box, box.list_id) == records
        the_same_again(box, env, tmp_path)


def test_default_region_change_brings_in_numbers_it_makes_valid(tmp_path: Path) -> None:
    with Sandboxes(tmp_path / "box") as box:
        sf = box.salesforce
        us = sf.insert_many([person(i) for i in range(4)])
        # No country anywhere: a London number is dialable only with the region GB.
        london = sf.insert_many(
            [
                {"FirstName": f"Lon{i}", "LastName": "Don", "MobilePhone": f"020 7946 01{i:02d}"}
                for i in range(3)
            ]
        )
        env = box.env()
        first = sync(env, tmp_path)
        assert first["created"] == 4 and first["skipped"] == 3

        env["DIALSYNC_MAPPING__DEFAULT_REGION"] = "GB"
        text, data = plan(env, tmp_path)
        assert "the mapping changed: 0 records will be updated, 3 created" in text, text
        assert "DIALSYNC_MAPPING__DEFAULT_REGION" in text
        assert data["created"] == 3
        counts = sync(env, tmp_path)
        assert counts["created"] == 3 and counts["updated"] == counts["deleted"] == 0
        records = in_list(box, box.list_id)
        assert set(records) == set(us) | set(london)
        numbers = {records[i]["phone_numbers"][0]["phone_number"] for i in london}
        assert numbers == {f"+4420794601{i:02d}" for i in range(3)}
        the_same_again(box, env, tmp_path)


PRIORITY_FILE = """
[priority]
field = "LeadSource"
values = {{ Web = {web}, "Partner Referral" = 7 }}
"""


@pytest.mark.slow
def test_mapping_file_priority_change_updates_only_the_records_it_changes(
    tmp_path: Path,
) -> None:
    with Sandboxes(tmp_path / "box") as box:
        ids = box.salesforce.insert_many(
            [person(i, LeadSource=LEAD_SOURCES[i % 3]) for i in range(9)]
        )
        web = {cid for i, cid in enumerate(ids) if i % 3 == 0}
        path = tmp_path / "mapping.toml"
        path.write_text(PRIORITY_FILE.format(web=9))
        env = {**box.env(), "DIALSYNC_MAPPING__FILE": str(path)}
        assert sync(env, tmp_path)["created"] == 9

        path.write_text(PRIORITY_FILE.format(web=3))
        text, data = plan(env, tmp_path)
        assert "the mapping changed: 3 records will be updated" in text, text
        assert "the mapping file's priority" in text
        assert data["updated"] == 3
        counts = sync(env, tmp_path)
        assert counts["updated"] == 3 and counts["created"] == counts["deleted"] == 0
        records = in_list(box, box.list_id)
        expected = {cid: 3 if cid in web else 7 if i % 3 == 1 else 5 for i, cid in enumerate(ids)}
        assert {cid: r["priority"] for cid, r in records.items()} == expected
        the_same_again(box, env, tmp_path)


ROUTING_FILE = """
[routing]
field = "LeadSource"
[routing.lists]
Web = "{web}"
"Partner Referral" = "{partners}"
"""


def test_routing_rule_change_moves_records_between_lists(tmp_path: Path) -> None:
    with Sandboxes(tmp_path / "box") as box:
        ids = box.salesforce.insert_many(
            [person(i, LeadSource=LEAD_SOURCES[i % 3]) for i in range(9)]
        )
        web = {cid for i, cid in enumerate(ids) if i % 3 == 0}
        partners_list = box.talkdesk.create_list("Partners", "EXTERNAL")
        path = tmp_path / "mapping.toml"
        path.write_text(ROUTING_FILE.format(web=box.list_id, partners=partners_list))
        env = {**box.env(), "DIALSYNC_MAPPING__FILE": str(path)}
        assert sync(env, tmp_path)["created"] == 9
        assert web <= set(in_list(box, box.list_id))

        # Web leads go to the partners' team now.
        path.write_text(ROUTING_FILE.format(web=partners_list, partners=partners_list))
        text, data = plan(env, tmp_path)
        assert data["created"] == 3 and data["deleted"] == 3 and data["updated"] == 0
        assert "the mapping changed: 0 records will be updated, 3 removed" in text, text
        assert "the mapping changed: 0 records will be updated, 3 created" in text, text
        assert "the mapping file's routing" in text
        counts = sync(env, tmp_path)
        assert counts["created"] == 3 and counts["deleted"] == 3 and counts["updated"] == 0
        partners = {cid for i, cid in enumerate(ids) if i % 3 == 1}
        assert set(in_list(box, partners_list)) == web | partners
        assert set(in_list(box, box.list_id)) == set(ids) - web - partners
        the_same_again(box, env, tmp_path)


def test_destination_field_setting_change_updates_that_destination_only(tmp_path: Path) -> None:
    with Sandboxes(tmp_path / "box", destinations=("talkdesk", "everbridge")) as box:
        ids = box.salesforce.insert_many([person(i) for i in range(4)])
        env = box.env()
        first = sync(env, tmp_path)
        assert first["created"] == 8  # 4 contacts, 2 destinations
        talkdesk_writes = writes(box)
        value = (box.everbridge.contact(ids[0]) or {})["paths"][0]["value"]
        assert value.startswith("+1")

        env["DIALSYNC_EVERBRIDGE__PHONE_FORMAT"] = "national"
        text, data = plan(env, tmp_path)
        assert "the mapping changed: 4 records will be updated in everbridge" in text, text
        assert "field settings" in text
        assert "in talkdesk" not in text  # its payloads do not depend on that setting
        assert data["updated"] == 4
        counts = sync(env, tmp_path)
        assert counts["updated"] == 4 and counts["created"] == counts["deleted"] == 0
        assert writes(box) == talkdesk_writes
        for cid in ids:
            paths = (box.everbridge.contact(cid) or {})["paths"]
            assert not paths[0]["value"].startswith("+"), paths
        before = writes(box)
        again = sync(env, tmp_path)
        assert again["updated"] == again["created"] == 0 and writes(box) == before


def test_a_new_record_list_receives_every_contact_not_only_changed_ones(tmp_path: Path) -> None:
    with Sandboxes(tmp_path / "box") as box:
        sf = box.salesforce
        # Last changed two hours ago: far behind the cursor and its lookback.
        ids = sf.insert_many([person(i) for i in range(5)], sf.now() - timedelta(hours=2))
        ids.append(sf.insert(person(5)))
        env = box.env()
        assert sync(env, tmp_path)["created"] == 6
        env["DIALSYNC_TALKDESK__RECORD_LIST_ID"] = box.talkdesk.create_list("Autumn", "EXTERNAL")
        text, _ = plan(env, tmp_path)
        assert "the mapping changed: 0 records will be updated, 6 created" in text, text
        assert "not recorded for this target yet" in text
        counts = sync(env, tmp_path)
        assert counts["created"] == 6
        assert set(in_list(box, env["DIALSYNC_TALKDESK__RECORD_LIST_ID"])) == set(ids)
        the_same_again(box, env, tmp_path)
