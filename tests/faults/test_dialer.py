"""3. Dialer faults (500s, 429 with Retry-After, timeouts, connections dropped after the write
was applied, tokens expiring every few seconds); 5. the dialer down for several cycles;
10. a poison record. In-process cycles over real HTTP against the Talkdesk sandbox."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from dialsync.destinations.base import ItemResult
from dialsync.destinations.http import LocalRateLimiter, RateLimiter
from dialsync.engine import DOWN_AFTER, Observer, SyncEngine
from dialsync.errors import DialsyncError, TransientError
from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.server import Handler, Request, Response, SandboxServer
from dialsync.settings import TalkdeskSettings
from tests.faults.conftest import FaultReport
from tests.faults.helpers import measure, run_until_settled, settled
from tests.faults.hooks import AfterBulkCreate, Recorder, api_log, status_counts
from tests.integration.helpers import engine_for, person, run

pytestmark = pytest.mark.faults


@contextmanager
def every(seconds: float, action: Callable[[], None]) -> Iterator[None]:
    """Call ``action`` every ``seconds`` in a thread until the block ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            action()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def talkdesk_settings(box: Sandboxes, **values: Any) -> TalkdeskSettings:
    td = box.talkdesk
    base: dict[str, Any] = {
        "api_url": td.url,
        "token_url": td.token_url,
        "client_id": td.client_id,
        "client_secret": SecretStr(td.client_secret),
        "record_list_id": box.list_id,
        "timeout_seconds": 5,
        "max_backoff_seconds": 2,
    }
    return TalkdeskSettings(**{**base, **values})


@dataclass
class LimiterLog:
    """Every pause (a 429's Retry-After) and every permit of the dialer's rate limiter."""

    pauses: list[tuple[float, float, float]] = field(default_factory=list)  # before, after, s
    permits: list[tuple[float, float]] = field(default_factory=list)  # entered, left
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, inner: RateLimiter) -> RateLimiter:
        log = self

        class Recording:
            def acquire(self) -> None:
                entered = time.monotonic()
                inner.acquire()
                with log.lock:
                    log.permits.append((entered, time.monotonic()))

            def pause(self, seconds: float) -> None:
                before = time.monotonic()
                inner.pause(seconds)
                with log.lock:
                    log.pauses.append((before, time.monotonic(), seconds))

        return Recording()

    def calls_let_through_during_a_pause(self) -> int:
        """Permits asked for after a pause began and granted before it ended."""
        return sum(
            1
            for entered, left in self.permits
            for before, after, seconds in self.pauses
            if entered > after and left < before + seconds
        )


class SlowCalls:
    """Counts the dialer calls answered after the client's timeout (the fault's delay)."""

    def __init__(self, box: Sandboxes, at_least: float) -> None:
        self.count = 0

        def dispatch(request: Request, original: Handler) -> Response:
            began = time.monotonic()
            response = original(request)
            if time.monotonic() - began >= at_least:
                self.count += 1
            return response

        box.talkdesk.server.intercept(dispatch)


def late_create(server: SandboxServer, nth: int, delay: float) -> None:
    """The ``nth`` bulk create is held ``delay`` seconds before it is applied and answered."""
    seen = {"creates": 0}

    def dispatch(request: Request, original: Handler) -> Response:
        if request.method == "POST" and request.path.endswith("/records/bulks"):
            seen["creates"] += 1
            if seen["creates"] == nth:
                time.sleep(delay)
        return original(request)

    server.intercept(dispatch)


def injected_between(box: Sandboxes, first: int, last: int) -> dict[str, int]:
    statuses = status_counts(api_log(box.talkdesk.server)[first:last])
    return {
        "calls": last - first,
        "http_500": statuses.get(500, 0),
        "http_429": statuses.get(429, 0),
        "http_401": statuses.get(401, 0),
        "dropped_after_apply": statuses.get(0, 0),
    }


def test_dialer_faults_converge_and_retry_after_is_honoured(
    tmp_path: Path, fault_report: FaultReport
) -> None:
    retry_after = 0.5
    with Sandboxes(
        tmp_path / "box",
        unique_identifier_type="NOTHING",  # a create repeated blindly would be a duplicate
        talkdesk={"token_ttl": 3.0, "seed": 7},
    ) as box:
        db = f"sqlite:///{tmp_path / 'state.db'}"
        sf, td = box.salesforce, box.talkdesk
        ids = sf.insert_many([person(i) for i in range(600)])
        limiter = LimiterLog()
        # One limiter for all the cycles, as in one `dialsync run` process (the service shares
        # one through Redis): a pause outlives the cycle whose call got the 429.
        shared = LocalRateLimiter(None)

        def prepare(engine: SyncEngine) -> None:
            for dest in engine.destinations:
                dest.api.limiter = limiter.wrap(shared)  # type: ignore[attr-defined]

        # the client gives up after 1 s; a "timeout" answers after 1.5 s, the write applied
        settings = {"talkdesk": talkdesk_settings(box, timeout_seconds=1.0)}
        slow = SlowCalls(box, at_least=1.5)
        # on top of the random faults, one of each for sure: the 2nd bulk create answered late
        # (after the client's timeout, then applied), the 4th applied and its answer dropped
        late_create(box.talkdesk.server, nth=2, delay=1.5)
        td.set_faults(
            error_500_rate=0.25,
            error_429_rate=0.10,
            retry_after=retry_after,
            timeout_rate=0.05,
            timeout_seconds=1.5,
            drop_after_apply_rate=0.05,
            only_writes=False,  # reads (the list, its pages) fail too
        )
        phases: list[tuple[str, str, int, dict[str, int]]] = []
        with (
            every(2.0, td.expire_tokens),
            AfterBulkCreate(td.server, 4, lambda: None) as drop,
        ):
            mark, timeouts = len(api_log(td.server)), slow.count
            cycles, _ = run_until_settled(box, db, limit=15, prepare=prepare, settings=settings)
            counts = injected_between(box, mark, len(api_log(td.server)))
            counts["timed_out"] = slow.count - timeouts
            phases.append(("3a. dialer faults, initial load", "600 new contacts", cycles, counts))

            time.sleep(1.1)  # one-second SystemModstamp precision
            for cid in ids[:150]:
                sf.update(cid, {"LastName": "Changed", "Title": "Buyer"})
            for cid in ids[150:180]:
                sf.update(cid, {"DoNotCall": True})
            for cid in ids[180:210]:
                sf.soft_delete(cid)
            sf.insert_many([person(i) for i in range(1000, 1100)])
            # on top of the random ones, this phase (few calls) surely meets a 500 and a 429
            td.fail_next(1, 500)
            td.fail_next(1, 429, retry_after=retry_after)
            mark, timeouts = len(api_log(td.server)), slow.count
            cycles, _ = run_until_settled(box, db, limit=15, prepare=prepare, settings=settings)
            counts = injected_between(box, mark, len(api_log(td.server)))
            counts["timed_out"] = slow.count - timeouts
            phases.append(
                (
                    "3b. dialer faults, changes",
                    "150 updates, 30 DoNotCall, 30 deletes, 100 new",
                    cycles,
                    counts,
                )
            )
        td.set_faults(error_500_rate=0, error_429_rate=0, timeout_rate=0, drop_after_apply_rate=0)
        m = measure(box)
        for case, what, cycles, counts in phases:
            fault_report.record(
                case,
                fault="dialer: 500s, 429s with Retry-After, timeouts, drops after apply, "
                "expiring tokens",
                injected=f"{what} (NOTHING list); on every call 25% 500, 10% 429 (Retry-After "
                "0.5 s), 5% answered 1.5 s late (client timeout 1 s, the write applied), 5% "
                "applied then the connection dropped; tokens live 3 s, all revoked every 2 s "
                "(and surely at least one of each)",
                cycles=cycles,
                lost=m.lost,
                duplicated=m.duplicated,
                **counts,
            )
        fault_report.record(
            "3c. Retry-After honoured",
            fault="dialer 429 with Retry-After",
            injected="the 429s of 3a and 3b: each must pause every call of the client for its "
            "Retry-After (0.5 s)",
            cycles=phases[0][2] + phases[1][2],
            lost=m.lost,
            duplicated=m.duplicated,
            http_429=sum(c["http_429"] for *_, c in phases),
            pauses=len(limiter.pauses),
            calls_let_through_during_a_pause=limiter.calls_let_through_during_a_pause(),
        )
        assert m.ok, m
        # every kind of fault really happened
        total = Counter[str]()
        for *_, counts in phases:
            total.update(counts)
        assert total["http_500"] and total["http_429"] and total["http_401"], total
        assert total["timed_out"] and total["dropped_after_apply"] and drop.fired.is_set(), total
        assert phases[1][3]["http_500"] and phases[1][3]["http_429"], phases[1]
        # Retry-After, counted: each 429 paused the client once for exactly its Retry-After,
        # and no call was let through while a pause lasted.
        assert len(limiter.pauses) == sum(c["http_429"] for *_, c in phases)
        assert all(seconds == retry_after for _b, _a, seconds in limiter.pauses)
        assert limiter.calls_let_through_during_a_pause() == 0
        # Converged means stable: a quiet cycle writes nothing.
        writes = td.stats()["writes"]
        run(box, db, settings=settings)
        assert td.stats()["writes"] == writes


def test_create_applied_after_the_client_timed_out_is_not_sent_twice(
    tmp_path: Path, fault_report: FaultReport
) -> None:
    """The dialer applies a create 0.5 s after the client gave up on it: the same cycle's scan
    does not see it yet, and must not conclude it was never made."""
    with Sandboxes(tmp_path / "box", unique_identifier_type="NOTHING") as box:
        db = f"sqlite:///{tmp_path / 'state.db'}"
        box.salesforce.insert_many([person(i) for i in range(250)])
        late_create(box.talkdesk.server, nth=3, delay=1.5)  # the last: nothing else to send
        settings = {"talkdesk": talkdesk_settings(box, timeout_seconds=1.0)}
        cycles, _ = run_until_settled(box, db, limit=6, settings=settings)
        m = measure(box)
        fault_report.record(
            "3d. create applied after the client's timeout",
            fault="a bulk create answered after the client's timeout, applied late",
            injected="the last of 3 bulk creates (250 contacts, NOTHING list) applied 1.5 s "
            "after it was sent; client timeout 1 s",
            cycles=cycles,
            lost=m.lost,
            duplicated=m.duplicated,
        )
        assert m.ok, m
        assert box.talkdesk.stats()["records_created"] == 250


class OutageAfterFirstWrite(Observer):
    """Takes the dialer down (every call answers 500) once the first write batch answered."""

    def __init__(self, box: Sandboxes, started: threading.Event) -> None:
        self.box = box
        self.started = started

    def batch_sent(self, dest: str, op: str, results: Sequence[ItemResult]) -> None:
        if not self.started.is_set():
            self.started.set()
            self.box.talkdesk.set_faults(error_500_rate=1.0, only_writes=False)


def test_dialer_down_for_several_cycles_backs_off_then_converges(
    tmp_path: Path, fault_report: FaultReport
) -> None:
    with Sandboxes(tmp_path / "box") as box:
        db = f"sqlite:///{tmp_path / 'state.db'}"
        sf, td = box.salesforce, box.talkdesk
        ids = sf.insert_many([person(i) for i in range(600)])
        run(box, db)
        assert settled(box, db)
        time.sleep(1.1)
        for cid in ids[:500]:
            sf.update(cid, {"LastName": "Changed"})
        sf.insert_many([person(i) for i in range(2000, 3000)])  # 15 batches due in all

        # The outage begins mid-cycle, after the first write batch.
        outage = threading.Event()
        engine = engine_for(box, db)
        engine.observer = OutageAfterFirstWrite(box, outage)
        threads, attempts = engine.options.push_threads, box.settings().talkdesk.max_attempts
        before = len(api_log(td.server))
        try:
            engine.sync()
        except DialsyncError:
            pass  # failing is fine; hammering is not
        finally:
            engine.close()
        assert outage.is_set()
        during = [r for r in api_log(td.server)[before:] if r.status == 500]
        # Once the dialer is down the cycle stops calling it: at most the batches in flight
        # when the second whole batch failed, each with its bounded retries; never every due
        # batch (15 here).
        assert len(during) <= (threads + DOWN_AFTER - 1) * attempts, len(during)

        # Several whole cycles while it stays down: each fails fast, with growing waits.
        per_cycle: list[int] = []
        waits: list[list[float]] = []
        for _ in range(3):
            recorder = Recorder(time.sleep)

            def prepare(engine: SyncEngine, recorder: Recorder = recorder) -> None:
                for dest in engine.destinations:
                    dest.api.sleep = recorder  # type: ignore[attr-defined]

            mark = len(api_log(td.server))
            with pytest.raises(TransientError):
                run(box, db, prepare=prepare)
            per_cycle.append(len(api_log(td.server)) - mark)
            waits.append(recorder.waits)
        assert all(n <= attempts for n in per_cycle), per_cycle  # no hammering
        assert all(w == sorted(w) and len(w) == attempts - 1 for w in waits), waits  # backoff

        td.set_faults(error_500_rate=0.0)  # back
        cycles, _ = run_until_settled(box, db, limit=5)
        m = measure(box)
        fault_report.record(
            "5. dialer down, then back",
            fault="dialer down for several cycles, then back",
            injected="every dialer call answers 500 from the first write batch of a cycle with "
            "1,500 changes due, and for 3 more cycles",
            cycles=cycles + 4,
            lost=m.lost,
            duplicated=m.duplicated,
            calls_in_the_cycle_the_outage_began=len(during),
            calls_per_down_cycle=per_cycle,
            backoff_waits_per_down_cycle=waits,
        )
        assert m.ok, m


def test_poison_request_does_not_block_its_batch_or_later_cycles(
    sandboxes: Sandboxes,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    fault_report: FaultReport,
) -> None:
    """A record the dialer refuses whole (400 for the request) is isolated by halving."""
    from dialsync.destinations import talkdesk

    box, td = sandboxes, sandboxes.talkdesk
    ids = box.salesforce.insert_many([person(i) for i in range(240)])
    poison = ids[17]
    original = talkdesk.render_record

    def render(record):  # type: ignore[no-untyped-def]
        payload = original(record)
        # not an object: the dialer refuses the whole request (400), not just this record
        return [payload] if record.external_id == poison else payload

    monkeypatch.setattr(talkdesk, "render_record", render)
    report = run(box, sqlite_url)
    assert report.counts["rejected"] == 1
    refused = td.stats()["status_counts"].get(400, 0)
    assert 1 <= refused <= 8  # halving: a 100-record batch takes at most log2(100) + 1 steps
    # later cycles: the others' changes go through, the poison is not sent again
    time.sleep(1.1)
    for cid in ids[30:60]:
        box.salesforce.update(cid, {"Title": "Buyer"})
    later = run(box, sqlite_url)
    assert later.counts["updated"] == 30
    assert td.stats()["status_counts"].get(400, 0) == refused
    rows = {r["external_id"]: r for r in engine_for(box, sqlite_url).store.problem_rows()}
    assert rows[poison]["status"] == "rejected" and rows[poison]["reason_code"]
    m = measure(box, rejected=frozenset({poison}))
    fault_report.record(
        "10a. poison request",
        fault="a record that makes the dialer refuse the whole request (400)",
        injected="1 of 240 contacts rendered as a JSON array, not an object; then 30 changes",
        cycles=1,
        lost=m.lost,
        duplicated=m.duplicated,
        requests_refused=refused,
    )
    assert m.ok, m


def test_poison_record_rejected_in_every_batch_never_blocks_the_rest(
    tmp_path: Path, fault_report: FaultReport
) -> None:
    """On a PHONE_NUMBER list, a number held by another integration's record makes the dialer
    refuse our contact in every bulk answer, forever."""
    with Sandboxes(tmp_path / "box", unique_identifier_type="PHONE_NUMBER") as box:
        db = f"sqlite:///{tmp_path / 'state.db'}"
        sf, td = box.salesforce, box.talkdesk
        ids = sf.insert_many([person(i) for i in range(300)])
        poison = ids[150]
        held = measure_phone(box, poison)
        td.add_record(
            box.list_id,
            {
                "first_name": "Csv",
                "last_name": "Row",
                "phone_numbers": [{"phone_number": held, "phone_type": "HOME"}],
                "external_provider": "csv",
                "external_id": "1",
            },
        )
        first = run(box, db)
        assert first.counts["rejected"] == 1 and first.counts["created"] == 299
        rows = {r["external_id"]: r for r in engine_for(box, db).store.problem_rows()}
        assert rows[poison]["reason_code"] == "PHONE_NUMBER_NOT_UNIQUE"
        # later cycles: others change and go through; the poison is retried only when its
        # contact changes, and is refused again without holding anything back
        time.sleep(1.1)
        for cid in ids[140:160]:  # the poison's included
            sf.update(cid, {"LastName": "Changed"})
        creates = td.stats()["creates_bulk"]
        later = run(box, db)
        assert later.counts["updated"] == 19 and later.counts["rejected"] == 1
        assert td.stats()["creates_bulk"] == creates + 1  # the poison, tried once more
        quiet = run(box, db)
        assert quiet.counts["rejected"] == 0 and td.stats()["creates_bulk"] == creates + 1
        m = measure(box, rejected=frozenset({poison}))
        fault_report.record(
            "10b. poison record",
            fault="a record the dialer always rejects (PHONE_NUMBER_NOT_UNIQUE)",
            injected="1 of 300 contacts shares its number with another integration's record "
            "on a PHONE_NUMBER list; then 20 changes, the poison's included",
            cycles=1,
            lost=m.lost,
            duplicated=m.duplicated,
        )
        assert m.ok, m


def measure_phone(box: Sandboxes, contact_id: str) -> str:
    """The E.164 number the mapper gives this contact's mobile phone."""
    from tests.faults.helpers import implied

    number = implied(box)[contact_id]["phone_numbers"][0]["phone_number"]
    assert isinstance(number, str)
    return number
