"""`dialsync demo`: the whole sync against loopback sandboxes, narrated.

Seeds a sandbox org, syncs, edits and deletes some contacts in Salesforce, syncs again, syncs a
third time to show that nothing unchanged costs a call, and checks each destination each time:
Talkdesk by default, or any of Talkdesk, Everbridge and Conga, all fed from the same pull.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dialsync.destinations.common import is_contact_id
from dialsync.engine import RunReport
from dialsync.mapping import MappingConfig, map_contact
from dialsync.models import DialerRecord, SourceContact
from dialsync.sandbox import seed
from dialsync.sandbox.harness import Sandboxes
from dialsync.store.locks import writer_lock
from dialsync.wiring import build_engine, build_store

Echo = Callable[[str], None]


def expected_ids(box: Sandboxes) -> set[str]:
    """The Contact Ids that must be in the list: live, callable, with a valid phone."""
    config = MappingConfig(instance_url=box.salesforce.url)
    out = set()
    for fields in box.salesforce.live_contacts():
        contact = SourceContact(
            id=fields["Id"], system_modstamp=datetime.now(UTC), fields=_flat(fields)
        )
        if isinstance(map_contact(contact, config), DialerRecord):
            out.add(contact.id)
    return out


def _flat(fields: dict[str, Any]) -> dict[str, Any]:
    flat = dict(fields)
    account = fields.get("Account")
    if isinstance(account, dict):
        flat["Account.Name"] = account.get("Name")
    return flat


def held(box: Sandboxes, name: str) -> tuple[Counter[str], list[str]]:
    """(our external ids with their counts, the other sources' keys) in one destination."""
    if name == "talkdesk":
        records = box.talkdesk.records(box.list_id)
        ours = [r.get("external_id") for r in records if r.get("external_provider") == "salesforce"]
        others = [
            r.get("external_id") for r in records if r.get("external_provider") != "salesforce"
        ]
    else:
        key = "externalId" if name == "everbridge" else "ExternalId"
        found = box.everbridge.contacts() if name == "everbridge" else box.conga.contacts()
        ours = [c[key] for c in found if is_contact_id(c[key])]
        others = [c[key] for c in found if not is_contact_id(c[key])]
    return Counter(str(i) for i in ours), [str(i) for i in others]


def check_list(box: Sandboxes, echo: Echo) -> bool:
    """Every destination holds exactly the callable contacts, once each."""
    want = expected_ids(box)
    ok = True
    for name in box.destinations:
        ours, others = held(box, name)
        duplicates = sum(n - 1 for n in ours.values() if n > 1)
        missing, extra = want - set(ours), set(ours) - want
        good = not missing and not extra and not duplicates
        ok &= good
        echo(
            f"  {name} check: {len(ours)} of our records, {len(others)} from other sources, "
            f"{len(missing)} missing, {len(extra)} that should not be there, "
            f"{duplicates} duplicates -> {'OK' if good else 'MISMATCH'}"
        )
    return ok


def _add_foreign(box: Sandboxes) -> None:
    """One record from another source in each destination: it must survive every sync."""
    if "talkdesk" in box.destinations:
        box.talkdesk.add_record(
            box.list_id,
            {
                "first_name": "Csv",
                "last_name": "Upload",
                "phone_numbers": [{"phone_number": "+14155550100", "phone_type": "OFFICE"}],
                "external_provider": "csv",
                "external_id": "row-1",
            },
        )
    if "everbridge" in box.destinations:
        box.everbridge.add_contact({"externalId": "hr-1", "firstName": "Hr", "lastName": "Import"})
    if "conga" in box.destinations:
        box.conga.add_contact({"ExternalId": "erp-1", "FirstName": "Erp", "LastName": "Import"})


def _writes(box: Sandboxes) -> int:
    return sum(int(box.sandbox(name).stats()["writes"]) for name in box.destinations)


class DemoClock:
    """The sandbox org's clock and the engine's, shared, so the demo can let a minute pass
    (Salesforce reports hard deletes by whole minutes) without waiting for it."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def run_demo(
    contacts: int = 1000,
    workdir: str | None = None,
    echo: Echo = print,
    destinations: tuple[str, ...] = ("talkdesk",),
) -> bool:
    tmp = None if workdir else tempfile.TemporaryDirectory(prefix="dialsync-demo-")
    root = Path(workdir or tmp.name)  # type: ignore[union-attr]
    clock = DemoClock()
    try:
        with Sandboxes(root, salesforce={"clock": clock}, destinations=destinations) as box:
            return _narrate(box, contacts, echo, clock, kept=tmp is None)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _sync(box: Sandboxes, label: str, echo: Echo, clock: DemoClock) -> RunReport:
    settings = box.settings()
    store = build_store(settings)
    engine = build_engine(settings, store)
    engine.clock = store.clock = clock
    writes_before = _writes(box)
    started = time.perf_counter()
    try:
        with writer_lock(store.engine, "sync"):
            report = engine.sync()
    finally:
        engine.close()
    elapsed = time.perf_counter() - started
    writes = _writes(box) - writes_before
    counts = report.as_dict()
    echo(
        f"{label}: "
        + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        + f" | {writes} dialer write calls, {elapsed:.1f}s"
        + (f" | FAILED: {report.failed}" if report.failed else "")
    )
    return report


def _narrate(box: Sandboxes, n: int, echo: Echo, clock: DemoClock, *, kept: bool) -> bool:
    sf = box.salesforce
    where = ", ".join(f"{name} at {box.sandbox(name).url}" for name in box.destinations)
    # Only a path that outlives the demo is printed (--workdir); a temporary one is removed.
    state = (
        f"state DB {box.workdir / 'dialsync.db'}"
        if kept
        else "state DB in a temporary directory, removed at the end (--workdir DIR keeps it)"
    )
    echo(f"sandbox Salesforce at {sf.url} (TLS), sandbox {where}; {state}")
    accounts = [
        sf.insert_account(name, kind)
        for name, kind in [
            ("Acme Corp", "Customer"),
            ("Globex", "Prospect"),
            ("Initech", "Customer"),
        ]
    ]
    ids = sf.insert_many(seed.contacts(n, seed=42, account_ids=accounts))
    _add_foreign(box)
    echo(
        f"seeded {len(ids)} contacts (some DoNotCall, some without a usable phone) and one "
        "record from another source in each destination"
    )
    ok = True
    _sync(box, "first sync (initial load)", echo, clock)
    ok &= check_list(box, echo)

    rng = random.Random(1)
    edited, dnc, soft, hard, lost_phone = (
        rng.sample(ids, 40),
        rng.sample(ids, 10),
        rng.sample(ids, 10),
        rng.sample(ids, 5),
        rng.sample(ids, 5),
    )
    clock.offset += timedelta(seconds=2)  # SystemModstamp has one-second precision
    for cid in edited:
        sf.update(
            cid,
            {"FirstName": "Renamed", "MobilePhone": seed.phone(rng, "US"), "MailingCountry": "USA"},
        )
    for cid in dnc:
        sf.update(cid, {"DoNotCall": True})
    for cid in lost_phone:
        sf.update(
            cid,
            {
                "Phone": None,
                "MobilePhone": None,
                "HomePhone": None,
                "OtherPhone": None,
                "AssistantPhone": None,
            },
        )
    gone = [c for c in soft if c not in edited + dnc + lost_phone]
    for cid in gone:
        sf.soft_delete(cid)
    hard_gone = [c for c in hard if c not in edited + dnc + lost_phone + gone]
    for cid in hard_gone:
        sf.hard_delete(cid)
    new_ids = sf.insert_many(seed.contacts(20, seed=99, account_ids=accounts))
    echo(
        f"in Salesforce: edited {len(edited)}, set DoNotCall on {len(dnc)}, removed the phones "
        f"of {len(lost_phone)}, deleted {len(gone)} (recycle bin) and {len(hard_gone)} "
        f"(hard), added {len(new_ids)}"
    )
    clock.offset += timedelta(seconds=61)
    echo("(a minute passes: Salesforce's getDeleted reports hard deletes by whole minutes)")
    _sync(box, "second sync (changes only)", echo, clock)
    ok &= check_list(box, echo)
    report = _sync(box, "third sync (nothing changed)", echo, clock)
    ok &= check_list(box, echo)
    for name in box.destinations:
        others = held(box, name)[1]
        echo(f"{name}: the other source's record is {'kept' if len(others) == 1 else 'MISSING'}")
        ok &= len(others) == 1
    writes = report.counts["created"] + report.counts["updated"] + report.counts["deleted"]
    ok &= writes == 0
    from dialsync.sandbox.demo_stream import stream_step

    def everywhere(contact_id: str) -> bool:
        return all(contact_id in held(box, name)[0] for name in box.destinations)

    ok &= stream_step(box, echo, clock, everywhere)
    ok &= check_list(box, echo)
    echo(
        "demo "
        + ("passed: each destination holds exactly the callable contacts" if ok else "FAILED")
    )
    return ok
