"""6. The state DB lost, against a list that already holds our records: adopted, no duplicate,
other providers' records untouched, on every list type."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dialsync.sandbox.harness import Sandboxes
from tests.faults.conftest import FaultReport
from tests.faults.helpers import measure, settled
from tests.integration.helpers import person, run, writes

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("unique", ["EXTERNAL", "NOTHING", "PHONE_NUMBER"])
def test_lost_state_db_adopts_the_records_already_in_the_list(
    tmp_path: Path, unique: str, fault_report: FaultReport
) -> None:
    with Sandboxes(tmp_path / "box", unique_identifier_type=unique) as box:
        sf, td = box.salesforce, box.talkdesk
        ids = sf.insert_many([person(i) for i in range(250)])
        gone = ids[:3]
        run(box, f"sqlite:///{tmp_path / 'lost.db'}")
        other = td.add_record(
            box.list_id,
            {
                "first_name": "Csv",
                "last_name": "Row",
                "phone_numbers": [{"phone_number": "+14155550000", "phone_type": "HOME"}],
                "external_provider": "csv",
                "external_id": "1",
            },
        )
        # While there is no state DB: hard deletes, a DoNotCall, a change, a new contact.
        for cid in gone:
            sf.hard_delete(cid)
        sf.update(ids[10], {"DoNotCall": True})
        sf.update(ids[11], {"LastName": "Changed"})
        sf.insert(person(900))
        fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
        creates, before = td.stats()["creates_bulk"], writes(box)
        run(box, fresh)
        m = measure(box)
        fault_report.record(
            f"6. state DB lost, {unique} list",
            fault=f"state DB lost, the list already holds our records ({unique} list)",
            injected="a fresh state DB against a list holding 250 of our records and one of "
            "another provider; meanwhile 3 hard deletes, 1 DoNotCall, 1 change, 1 new contact",
            cycles=1,
            lost=m.lost,
            duplicated=m.duplicated,
            writes=writes(box) - before,
        )
        assert m.ok, m
        assert settled(box, fresh)
        assert any(r["id"] == other for r in td.records(box.list_id))  # never touched
        assert td.stats()["creates_bulk"] == creates + 1  # only the new contact is created
        # adopted records are brought to our payload (content unknown): updates + one delete
        assert writes(box) - before <= math.ceil(250 / 100) + 2
