"""`dialsync errors` and `dialsync runs` as an operator reads them (issue 11, item 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialsync.sandbox.harness import Sandboxes
from dialsync.store.locks import writer_lock
from tests.integration.helpers import engine_for, person
from tests.integration.test_cli import cli


@pytest.mark.slow
def test_errors_summary_first_filters_and_attempts(tmp_path: Path) -> None:
    with Sandboxes(tmp_path / "box", unique_identifier_type="PHONE_NUMBER") as box:
        sf = box.salesforce
        sf.insert_many([person(i) for i in range(4)])
        sf.insert_many([person(10 + i, DoNotCall=True) for i in range(2)])
        sf.insert(person(20, MobilePhone=None))  # no valid phone
        clash = person(30)
        sf.insert(clash)
        # Another integration's record holds the same number: a PHONE_NUMBER list refuses ours.
        box.talkdesk.add_record(
            box.list_id,
            {
                "first_name": "x",
                "last_name": "y",
                "phone_numbers": [{"phone_number": "+14152300030", "phone_type": "MOBILE"}],
            },
        )
        env = {
            **box.env(),
            "DIALSYNC_TALKDESK__MAX_ATTEMPTS": "1",
            # The blocked row waits at the slow end of the backoff; the sandbox's 5 s cap would
            # make it due again before the second sync on a loaded machine (it was, in a run).
            "DIALSYNC_SYNC__RETRY_MAX_SECONDS": "3600",
        }
        assert cli(["sync"], env, tmp_path).returncode == 0
        # Three more contacts while the dialer answers 503: they wait to be retried.
        sf.insert_many([person(40 + i) for i in range(3)])
        box.talkdesk.fail_next(20, 503)
        # records left retrying: the list is not converged, so the sync does not exit 0
        assert cli(["sync"], env, tmp_path).returncode == 1

        text = cli(["errors"], env, tmp_path)
        assert text.returncode == 0, text.stderr
        lines = text.stdout.splitlines()
        # The summary comes first: real errors apart from the expected skips.
        assert lines[0] == "errors: 4"
        # refused because another record holds the number: blocked, retried when it changes
        assert lines[1].split() == ["blocked", "PHONE_NUMBER_NOT_UNIQUE", "1"]
        assert lines[2].split() == ["retrying", "UNAVAILABLE", "3"]
        assert lines[3] == "expected skips (the contact must not be called): 3"
        assert lines[4].split() == ["skipped", "do_not_call", "2"]
        assert lines[5].split() == ["skipped", "no_valid_phone", "1"]
        retrying = [line for line in lines if line.strip().startswith("retrying ")][1:]
        assert len(retrying) == 3
        assert all("(attempts 1, next attempt 20" in line for line in retrying)
        blocked = [line for line in lines if line.strip().startswith("blocked ")][1:]
        assert len(blocked) == 1 and "(attempts 1, next attempt 20" in blocked[0]
        # Errors are listed before skips.
        first_skip = next(
            i for i, line in enumerate(lines) if line.startswith("  skipped ") and i > 5
        )
        assert first_skip > lines.index(retrying[-1])

        def as_json(*args: str) -> dict[str, list[dict[str, object]]]:
            result = cli(["errors", "--json", *args], env, tmp_path)
            assert result.returncode == 0, result.stderr
            return json.loads(result.stdout)  # type: ignore[no-any-return]

        skipped = as_json("--status", "skipped")
        assert {r["status"] for r in skipped["records"]} == {"skipped"}
        assert len(skipped["records"]) == 3
        dnc = as_json("--reason", "do_not_call")
        assert [s["count"] for s in dnc["summary"]] == [2]
        assert len(dnc["records"]) == 2
        assert as_json("--destination", "everbridge") == {"summary": [], "records": []}
        assert len(as_json("--destination", f"talkdesk:{box.list_id}")["records"]) == 7
        assert len(as_json("--limit", "2")["records"]) == 2
        summary_only = cli(["errors", "--limit", "0"], env, tmp_path).stdout
        assert "003" not in summary_only and "errors: 4" in summary_only


def test_runs_shows_a_pull_and_its_pushes_as_one_line(sandboxes: Sandboxes, tmp_path: Path) -> None:
    box = sandboxes
    box.salesforce.insert_many([person(i) for i in range(250)])
    env = box.env()
    # What the service does: a pull task records the window, push tasks send it.
    engine = engine_for(box, env["DIALSYNC_DATABASE_URL"])
    try:
        with writer_lock(engine.store.engine, "sync"):
            engine.pull()
        for _ in range(3):
            engine.push()
        engine.store.finish_run(engine.store.start_run("push"), "ok", {})  # found nothing
        with writer_lock(engine.store.engine, "sync"):
            engine.pull()
    finally:
        engine.close()

    lines = cli(["runs"], env, tmp_path).stdout.splitlines()
    assert len(lines) == 3, lines  # the header, the second pull, the first with its pushes
    first = lines[2].split()
    assert first[1:3] == ["pull+1", "ok"]
    # queried 250 by the pull, created 250 by its push; the empty push is not shown
    assert first[6:8] == ["250", "250"]
    assert lines[1].split()[1] == "pull"
    each = cli(["runs", "--each"], env, tmp_path).stdout.splitlines()
    assert [line.split()[1] for line in each[1:]] == ["pull", "push", "push", "pull"]
    listed = json.loads(cli(["runs", "--json"], env, tmp_path).stdout)["runs"]
    assert [len(r["pushes"]) for r in listed] == [0, 2]
