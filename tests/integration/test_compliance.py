"""Compliance evidence against the sandboxes: a contact's history in order, the opt-out report's
times taken from Salesforce's stamps, the CLI's history and report, and the retention."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialsync.compliance.report import latency_summary, opt_outs
from dialsync.sandbox.harness import Sandboxes
from dialsync.store.history import PRUNE_STAMP, for_contact, prune_if_due
from dialsync.store.store import open_store
from tests.integration.helpers import engine_for, ours, person, run
from tests.integration.test_cli import cli


def _stamp(box: Sandboxes, contact_id: str) -> datetime:
    contact = box.salesforce.contact(contact_id)
    assert contact is not None
    value = contact["SystemModstamp"]
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(parsed, datetime)
    return parsed.astimezone(UTC)


def _life(box: Sandboxes, db_url: str) -> str:
    """create -> update -> opt-out -> removal, each change stamped in the past by Salesforce
    (distinct from the time dialsync saw it), each followed by a sync."""
    sf = box.salesforce
    now = sf.now()
    contact = sf.insert(person(1), stamp=now - timedelta(minutes=9))
    run(box, db_url)
    sf.update(contact, {"LastName": "Renamed"}, stamp=now - timedelta(minutes=8))
    run(box, db_url)
    sf.update(contact, {"DoNotCall": True}, stamp=now - timedelta(minutes=7))
    run(box, db_url)
    assert contact not in ours(box)
    return contact


def test_a_contacts_history_create_update_opt_out_removal(
    sandboxes: Sandboxes, db_url: str
) -> None:
    contact = _life(sandboxes, db_url)
    store = engine_for(sandboxes, db_url).store
    events = for_contact(store, contact)
    assert [(e["event"], e["outcome"]) for e in events] == [
        ("pulled", None),
        ("decided", "create"),
        ("sent", "create"),
        ("answered", "ok"),
        ("pulled", None),
        ("decided", "update"),
        ("sent", "update"),
        ("answered", "ok"),
        ("pulled", None),
        ("decided", "remove"),
        ("sent", "delete"),
        ("answered", "removed"),
    ]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert {(e["destination"], e["list_id"]) for e in events} == {("talkdesk", sandboxes.list_id)}
    pulled = [e for e in events if e["event"] == "pulled"]
    assert "first_name" in pulled[0]["detail"]["fields"]
    assert pulled[1]["detail"]["fields"] == ["last_name"]  # the name of what changed
    assert events[9]["reason"] == "do_not_call"
    runs = [e["run_id"] for e in events]
    assert runs[0] == runs[3] and runs[4] == runs[7] and runs[8] == runs[11]
    assert len({runs[0], runs[4], runs[8]}) == 3
    # evidence, not a copy of the data: no names, no phone numbers
    text = json.dumps(events, default=str)
    for value in ("First1", "Renamed", "Last1", "2010001"):
        assert value not in text, value


def test_the_report_times_come_from_the_sandboxs_stamps(sandboxes: Sandboxes, db_url: str) -> None:
    contact = _life(sandboxes, db_url)
    opted_out = _stamp(sandboxes, contact)  # the DoNotCall edit's SystemModstamp
    store = engine_for(sandboxes, db_url).store
    removed = next(
        e["at"]
        for e in for_contact(store, contact)
        if e["event"] == "answered" and e["outcome"] == "removed"
    )
    now = datetime.now(UTC)
    [entry] = opt_outs(store, now - timedelta(days=1), now)
    assert (entry.contact_id, entry.reason) == (contact, "do_not_call")
    assert entry.opted_out_at == opted_out
    [leg] = entry.destinations
    assert leg.removed_at == removed and leg.pending_seconds is None
    assert leg.latency_seconds == (removed - opted_out).total_seconds()
    assert leg.latency_seconds > 6 * 60  # stamped seven minutes before the sync saw it
    summary = latency_summary(store, now)[f"talkdesk:{sandboxes.list_id}"]
    assert summary["removed"] == 1 and summary["pending"] == 0
    assert summary["p50_seconds"] == summary["max_seconds"] == leg.latency_seconds
    # before the opt-out was decided: not listed
    assert opt_outs(store, removed + timedelta(seconds=1), now) == []


def test_a_deletion_is_dated_by_salesforces_deleted_date(sandboxes: Sandboxes, db_url: str) -> None:
    """A contact hard-deleted (gone from queryAll: only getDeleted names it) opted out when
    Salesforce deleted it, not when dialsync learned of it."""
    sf = sandboxes.salesforce
    contact = sf.insert(person(1), stamp=sf.now() - timedelta(minutes=9))
    run(sandboxes, db_url)
    deleted_at = (sf.now() - timedelta(minutes=4)).replace(microsecond=0)
    sf.hard_delete(contact, stamp=deleted_at)
    run(sandboxes, db_url)
    assert contact not in ours(sandboxes)
    store = engine_for(sandboxes, db_url).store
    [decided] = [e for e in for_contact(store, contact) if e["outcome"] == "remove"]
    assert (decided["reason"], decided["stamp"]) == ("deleted", deleted_at)
    now = datetime.now(UTC)
    [entry] = opt_outs(store, now - timedelta(days=1), now)
    assert (entry.contact_id, entry.reason, entry.opted_out_at) == (contact, "deleted", deleted_at)
    [leg] = entry.destinations
    assert leg.removed_at is not None
    assert leg.latency_seconds == (leg.removed_at - deleted_at).total_seconds() >= 4 * 60


def test_a_later_edit_does_not_make_a_pending_opt_out_look_younger(
    sandboxes: Sandboxes, db_url: str
) -> None:
    """The dialer refuses the delete; the contact, still DoNotCall, is edited again. The alert
    and the report count its age from the DoNotCall change, not from the last edit."""
    from dialsync.alerts.conditions import evaluate

    sf, td = sandboxes.salesforce, sandboxes.talkdesk
    contact = sf.insert(person(1), stamp=sf.now() - timedelta(minutes=40))
    run(sandboxes, db_url)
    td.set_faults(error_500_rate=1.0)  # every write to the list fails from now on
    opted_out = (sf.now() - timedelta(minutes=30)).replace(microsecond=0)
    sf.update(contact, {"DoNotCall": True}, stamp=opted_out)
    run(sandboxes, db_url)
    sf.update(contact, {"Title": "Edited"})  # stamped now
    run(sandboxes, db_url)
    assert contact in ours(sandboxes)
    store = engine_for(sandboxes, db_url).store
    now = datetime.now(UTC)
    findings = evaluate(store, sandboxes.settings(db_url), now)  # threshold 900 s
    [pending] = [f for f in findings if f.alert == "opt_out_pending"]
    assert pending.firing and pending.contact_ids == (contact,)
    assert pending.values["oldest_seconds"] >= 30 * 60
    [entry] = opt_outs(store, now - timedelta(minutes=1), now)
    assert (entry.reason, entry.opted_out_at) == ("do_not_call", opted_out)
    [leg] = entry.destinations
    assert leg.pending_seconds is not None and leg.pending_seconds >= 30 * 60
    assert leg.last_error is not None  # the dialer's refusal, apart from the reason


@pytest.mark.slow
def test_history_and_report_commands(sandboxes: Sandboxes, tmp_path: Path) -> None:
    sf = sandboxes.salesforce
    env = sandboxes.env()
    kept, leaving = sf.insert_many([person(1), person(2)], stamp=sf.now() - timedelta(minutes=5))
    assert cli(["sync"], env, tmp_path).returncode == 0
    sf.update(leaving, {"DoNotCall": True}, stamp=sf.now() - timedelta(minutes=3))
    assert cli(["sync"], env, tmp_path).returncode == 0

    shown = cli(["history", "--contact", leaving, "--json"], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    events = json.loads(shown.stdout)
    assert [e["event"] for e in events][-4:] == ["pulled", "decided", "sent", "answered"]
    for e in events:
        assert {"at", "destination", "event", "run_id", "detail"} <= set(e)
        datetime.fromisoformat(e["at"])
    assert events[-3]["outcome"] == "remove" and events[-3]["reason"] == "do_not_call"
    text = cli(["history", "--contact", leaving[:15]], env, tmp_path)  # a 15-character Id
    assert text.returncode == 0 and "decided remove (do_not_call)" in text.stdout
    none = cli(["history", "--contact", "003000000000000AAA", "--json"], env, tmp_path)
    assert none.returncode == 0 and json.loads(none.stdout) == []
    bad = cli(["history", "--contact", "not-an-id"], env, tmp_path)
    assert bad.returncode == 2 and "--contact" in bad.stderr

    report = cli(["compliance", "report", "--since", "2000-01-01", "--json"], env, tmp_path)
    assert report.returncode == 0, report.stderr
    [entry] = json.loads(report.stdout)
    assert entry["contact_id"] == leaving and entry["reason"] == "do_not_call"
    assert datetime.fromisoformat(entry["opted_out_at"]) == _stamp(sandboxes, leaving)
    [leg] = entry["destinations"]
    assert leg["destination"] == "talkdesk" and "removed_at" in leg
    assert "pending_seconds" not in leg
    rows = list(csv.reader(io.StringIO(cli(["compliance", "report", "--since", "2000-01-01",
                                             "--csv"], env, tmp_path).stdout)))  # fmt: skip
    assert rows[0][:3] == ["contact_id", "reason", "opted_out_at"]
    assert [r[0] for r in rows[1:]] == [leaving]
    human = cli(["compliance", "report", "--since", "2000-01-01"], env, tmp_path)
    assert human.returncode == 0 and f"{leaving} do_not_call" in human.stdout
    later = cli(["compliance", "report", "--since", "2999-01-01", "--json"], env, tmp_path)
    assert json.loads(later.stdout) == []
    bad_date = cli(["compliance", "report", "--since", "yesterday"], env, tmp_path)
    assert bad_date.returncode == 2 and "--since" in bad_date.stderr
    both = cli(["compliance", "report", "--since", "2000-01-01", "--json", "--csv"], env, tmp_path)
    assert both.returncode == 2
    status = cli(["status", "--json"], env, tmp_path)
    latency = json.loads(status.stdout)["opt_out_latency"][f"talkdesk:{sandboxes.list_id}"]
    assert latency["removed"] == 1 and latency["p95_seconds"] >= 3 * 60
    assert "opt-out latency talkdesk:" in cli(["status"], env, tmp_path).stdout
    assert kept in ours(sandboxes)


def test_history_past_its_retention_is_pruned_once_a_day(sandboxes: Sandboxes, db_url: str) -> None:
    contact = sandboxes.salesforce.insert(person(1))
    run(sandboxes, db_url)
    store = open_store(db_url)
    assert len(for_contact(store, contact)) == 4
    now = datetime.now(UTC)
    assert prune_if_due(store, 400, now) == 0  # all recent: kept
    assert prune_if_due(store, 1, now + timedelta(days=2)) == 4  # two days later, 1 day kept
    assert for_contact(store, contact) == []
    assert store.get_cursor(PRUNE_STAMP).modstamp == now + timedelta(days=2)
    assert prune_if_due(store, 1, now + timedelta(days=2, hours=23)) is None  # not due yet


@pytest.mark.slow
def test_run_serves_the_opt_out_latency_histogram(sandboxes: Sandboxes, tmp_path: Path) -> None:
    import httpx

    from tests.integration.service import free_port, processes, wait_until
    from tests.integration.test_doctor_metrics import scrape, value

    sf = sandboxes.salesforce
    kept, leaving = sf.insert_many([person(1), person(2)])
    port = free_port()
    env = {
        **sandboxes.env(),
        "DIALSYNC_SYNC__INTERVAL_SECONDS": "1",
        "DIALSYNC_METRICS__PORT": str(port),
        "DIALSYNC_METRICS__ADDRESS": "127.0.0.1",
    }
    where = {"destination": "talkdesk", "list": sandboxes.list_id}
    with processes(env, tmp_path) as procs:
        procs.start("run", name="run")
        wait_until(lambda: set(ours(sandboxes)) == {kept, leaving}, what="the first cycle")
        sf.update(leaving, {"DoNotCall": True}, stamp=sf.now() - timedelta(minutes=5))

        def observed() -> bool:
            try:
                samples = scrape(port)
            except httpx.HTTPError:
                return False
            return value(samples, "dialsync_opt_out_latency_seconds_count", **where) >= 1

        wait_until(observed, what="the removal's latency")
        samples = scrape(port)
    assert value(samples, "dialsync_opt_out_latency_seconds_count", **where) == 1
    latency = value(samples, "dialsync_opt_out_latency_seconds_sum", **where)
    assert latency >= 300  # from the Salesforce stamp, five minutes before the update
    under = value(samples, "dialsync_opt_out_latency_seconds_bucket", **where, le="300.0")
    assert under == 0 and leaving not in ours(sandboxes)
