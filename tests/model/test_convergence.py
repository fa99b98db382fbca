"""Model-based test of the convergence invariant (issue 10).

A hypothesis state machine drives the real loopback sandboxes (Salesforce over HTTPS, a
Talkdesk record list over HTTP) and two workers sharing one state database through random
interleavings of:

- Salesforce edits: new contacts, phone changes (to another contact's number, toll-free,
  invalid, none), name changes, Do Not Call on and off, soft and hard deletes, undeletes,
  merges, phone swaps; edits land in the same ``SystemModstamp`` second unless a ``tick``
  step moves the (virtual) clock on;
- CLI syncs (incremental and full), service pulls and pushes, reconciliations, from either
  worker, and interleavings of one worker's pull with the other's push (the pull runs while
  the push's dialer call is in flight), of a reconciliation's list scan with the other
  worker's push, and of a full pass with a Salesforce edit;
- dialer faults on the next bulk calls: 500, 500 after the write was applied, the answer
  dropped after it was applied, a per-record failure of one item;
- hand edits in the list: a record of ours deleted, edited, duplicated, an opted-out contact
  re-added, a record of another integration added;
- crashes: a worker's process dies after a pulled batch, after claiming rows, or after the
  dialer applied a write; a new process takes its place.

Then, Salesforce quiet and the dialer answering normally (and the clock past every retry
backoff; on a list unique by external id not past the 60 s settle grace of an uncertain create,
on a PHONE_NUMBER list past it), the invariant of
``oracle.check_convergence`` must hold:
(a) after ONE incremental sync, for every contact that sync can see: all but those whose
    records were edited by hand in the dialer, those refused once per record on create or
    update, and those hard-deleted in the current minute (getDeleted covers whole minutes);
(b) after ONE full sync, for every contact; and no record of another integration touched.
A violation lists each contact (alias and Id) with what was expected and what the list holds.

Budget: ``DIALSYNC_MODEL_EXAMPLES`` (default 20) examples of ``DIALSYNC_MODEL_STEPS`` (default
25) steps, derandomized so CI runs the same examples every time (``DIALSYNC_MODEL_SEED`` picks
another fixed sequence); ``DIALSYNC_MODEL_SHRINK=1`` shrinks failures (minutes). To look at one
class of defect: ``DIALSYNC_MODEL_RULES_OFF`` (rule name prefixes to leave out),
``DIALSYNC_MODEL_LISTS`` (EXTERNAL, PHONE_NUMBER), ``DIALSYNC_MODEL_STEP_SECONDS`` (clock moved on
after each step; 1 keeps steps in different SystemModstamp seconds). Runs on SQLite and Postgres.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

import dialsync.destinations.talkdesk as talkdesk_destination
from dialsync.engine import SyncEngine
from dialsync.errors import DialsyncError
from dialsync.mapping import MappingConfig
from dialsync.sandbox.talkdesk_validation import phone_numbers_of
from tests.conftest import postgres_url
from tests.model.oracle import Violations, check_convergence, expected
from tests.model.world import (
    RETRY_MAX_SECONDS,
    TALKDESK_TIMEOUT_SECONDS,
    Crash,
    World,
    snapshot,
)

pytestmark = pytest.mark.model

EXAMPLES = int(os.environ.get("DIALSYNC_MODEL_EXAMPLES", "20"))
STEPS = int(os.environ.get("DIALSYNC_MODEL_STEPS", "25"))
SEED = os.environ.get("DIALSYNC_MODEL_SEED")
# Shrinking a failure replays hundreds of examples of a second or two each (up to hypothesis's
# five-minute cap): on for an investigation (DIALSYNC_MODEL_SHRINK=1), off in the default run,
# which still reports every distinct failure with its steps and its diff.
SHRINK = os.environ.get("DIALSYNC_MODEL_SHRINK") == "1"
# Rules to leave out, by name prefix (e.g. "hand_,crash"): to look for one class of defect.
RULES_OFF = tuple(p for p in os.environ.get("DIALSYNC_MODEL_RULES_OFF", "").split(",") if p)
# List types to draw from (EXTERNAL: unique by external id; PHONE_NUMBER: unique by number).
LISTS = os.environ.get("DIALSYNC_MODEL_LISTS", "EXTERNAL,PHONE_NUMBER").split(",")
# Seconds the clock moves on after every step (default 0: steps share a second unless a tick
# moves it): 1 keeps edits of different steps in different SystemModstamp seconds.
STEP_SECONDS = float(os.environ.get("DIALSYNC_MODEL_STEP_SECONDS", "0"))
# The budget of a CI run: fixed examples (derandomized), no example database.
MODEL_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if SHRINK else []),
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
# A scan reads the list in pages; small pages make a list of a few records span several, so
# writes of another worker can land between two pages of one scan.
SCAN_PAGE_SIZE = 3
# Quiescence moves the clock past every retry backoff. On a list unique by external id not past
# the settle grace of an uncertain create: re-sending at once is safe there (issue 10, #10). On
# a PHONE_NUMBER list a create whose answer was lost may still land for 2 x the dialer's timeout
# (a re-sent create with another number would make a second record), so the engine waits that
# grace, saying so (`sync` exits 1 meanwhile): quiet means past it.
QUIET_SECONDS = RETRY_MAX_SECONDS + 2
SETTLED_SECONDS = max(QUIET_SECONDS, 2 * TALKDESK_TIMEOUT_SECONDS + 2)

PHONES = ["(415) 226-0101", "(212) 226-0102", "(312) 226-0103", "+1 888 226 0101", "555", None]
FIRST_NAMES = ["Ann", "Bob", "Cy"]
HAND_PHONE = "+13055550188"  # a number no contact has: hand edits never block a contact
FOREIGN_PHONES = ["+16175550166", "+12065550155"]

F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """A step that raised (a bug: engine errors are caught inside) skips the final check, so
    the step's own error is what hypothesis reports."""

    @functools.wraps(fn)
    def wrapper(self: ConvergenceMachine, *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(self, *args, **kwargs)
        except BaseException:
            self.failed_step = True
            raise
        if STEP_SECONDS and self.world is not None:
            self.world.clock.advance(STEP_SECONDS)
        return result

    return wrapper  # type: ignore[return-value]


_VIOLATION_TYPES: dict[str, type[AssertionError]] = {}


def violation(phase: str, kinds: Counter[str]) -> type[AssertionError]:
    """One exception type per (phase, worst kind): hypothesis shrinks each distinct failure
    on its own instead of folding them into one."""
    order = ["sync_failed", "extra", "missing", "stale", "duplicate", "foreign"]
    worst = next(k for k in order if kinds.get(k))
    name = f"{phase.title()}Sync{worst.title().replace('_', '')}"
    if name not in _VIOLATION_TYPES:
        _VIOLATION_TYPES[name] = type(name, (AssertionError,), {})
    return _VIOLATION_TYPES[name]


class RemovedWhileEdited(AssertionError):
    """A full pass removed the record of a contact that was callable before and after an edit
    made while the pass ran."""


contact_spec = st.fixed_dictionaries(
    {
        "FirstName": st.sampled_from(FIRST_NAMES),
        "MobilePhone": st.sampled_from(PHONES),
        "DoNotCall": st.booleans(),
    }
)
change = st.one_of(
    st.tuples(st.just("MobilePhone"), st.sampled_from(PHONES)),
    st.tuples(st.just("FirstName"), st.sampled_from(FIRST_NAMES)),
    st.tuples(st.just("DoNotCall"), st.booleans()),
    st.tuples(st.just("MailingCountry"), st.sampled_from([None, "United States", "Germany"])),
)
index = st.integers(0, 7)
worker = st.integers(0, 1)


class ConvergenceMachine(RuleBasedStateMachine):
    def __init__(self, workdir: Path, db_url: str) -> None:
        super().__init__()
        self.workdir = workdir
        self.db_url = db_url
        self.world: World | None = None
        self.unique = "EXTERNAL"
        self.contacts: list[str] = []
        self.alias: dict[str, str] = {}
        self.hand_touched: set[str] = set()
        self.foreign: dict[str, dict[str, Any]] = {}
        self.hard_deleted_at: dict[str, datetime] = {}
        self.failed_step = False
        self.nested_errors: list[BaseException] = []

    # -- helpers -----------------------------------------------------------------------------
    @property
    def w(self) -> World:
        assert self.world is not None
        return self.world

    def _pick(self, ids: list[str], i: int) -> str | None:
        return ids[i % len(ids)] if ids else None

    def _live(self) -> list[str]:
        return [c for c in self.contacts if (row := self.w.sf.contact(c)) and not row["IsDeleted"]]

    def _insert(self, spec: dict[str, Any]) -> None:
        n = len(self.contacts) + 1
        contact_id = self.w.sf.insert({**spec, "LastName": f"Last{n}"})
        self.contacts.append(contact_id)
        self.alias[contact_id] = f"c{n}"

    def _engine_call(self, index: int, call: Callable[[SyncEngine], Any]) -> None:
        """One worker's call; a dialer or Salesforce error is an outcome, not a failure."""
        worker = self.w.workers[index]
        try:
            call(worker.engine)
        except DialsyncError:
            pass
        finally:
            self._raise_nested()

    def _nested(self, index: int, call: Callable[[SyncEngine], Any]) -> Callable[[], None]:
        """A call run inside another worker's request (on a sandbox thread): its unexpected
        errors are carried back to the step instead of becoming a sandbox 500."""

        def run() -> None:
            try:
                call(self.w.workers[index].engine)
            except DialsyncError:
                pass
            except BaseException as exc:  # re-raised by the step
                self.nested_errors.append(exc)

        return run

    def _raise_nested(self) -> None:
        if self.nested_errors:
            error = self.nested_errors[0]
            self.nested_errors.clear()
            raise error

    def _our_record(self, i: int) -> dict[str, Any] | None:
        ours = sorted(self.w.ours(), key=lambda r: (str(r["external_id"]), str(r["id"])))
        return ours[i % len(ours)] if ours else None

    # -- setup -------------------------------------------------------------------------------
    @initialize(
        unique=st.sampled_from(LISTS),
        people=st.lists(contact_spec, min_size=1, max_size=4),
    )
    @guarded
    def start(self, unique: str, people: list[dict[str, Any]]) -> None:
        self.unique = unique
        self.world = World(self.workdir, self.db_url, unique)
        for spec in people:
            self._insert(spec)

    # -- Salesforce ----------------------------------------------------------------------------
    @rule(spec=contact_spec)
    @guarded
    def sf_new_contact(self, spec: dict[str, Any]) -> None:
        if len(self.contacts) < 8:
            self._insert(spec)

    @rule(i=index, edit=change)
    @guarded
    def sf_edit(self, i: int, edit: tuple[str, Any]) -> None:
        target = self._pick(self._live(), i)
        if target is not None:
            self.w.sf.update(target, {edit[0]: edit[1]})

    @rule(i=index, j=index)
    @guarded
    def sf_swap_phones(self, i: int, j: int) -> None:
        """Two contacts swap numbers, in two edits of one second."""
        live = self._live()
        a, b = self._pick(live, i), self._pick(live, j)
        if a is None or b is None or a == b:
            return
        pa, pb = self.w.sf.contact(a)["MobilePhone"], self.w.sf.contact(b)["MobilePhone"]
        self.w.sf.update(a, {"MobilePhone": pb})
        self.w.sf.update(b, {"MobilePhone": pa})

    @rule(i=index, hard=st.booleans())
    @guarded
    def sf_delete(self, i: int, hard: bool) -> None:
        target = self._pick(self._live(), i)
        if target is None:
            return
        self.w.sf.soft_delete(target)
        if hard:
            self.w.sf.hard_delete(target)
            self.hard_deleted_at[target] = self.w.clock.now()

    @rule(i=index)
    @guarded
    def sf_undelete(self, i: int) -> None:
        binned = [
            c
            for c in self.contacts
            if (row := self.w.sf.contact(c)) and row["IsDeleted"] and not row["MasterRecordId"]
        ]
        target = self._pick(binned, i)
        if target is not None:
            self.w.sf.undelete(target)

    @rule(i=index, j=index)
    @guarded
    def sf_merge(self, i: int, j: int) -> None:
        live = self._live()
        winner, loser = self._pick(live, i), self._pick(live, j)
        if winner is not None and loser is not None and winner != loser:
            self.w.sf.merge(winner, loser)

    @rule(seconds=st.sampled_from([0.3, 1.0, 5.0, 61.0]))
    @guarded
    def tick(self, seconds: float) -> None:
        self.w.clock.advance(seconds)

    # -- the workers -------------------------------------------------------------------------
    @rule(k=worker, full=st.booleans())
    @guarded
    def sync(self, k: int, full: bool) -> None:
        self._engine_call(k, lambda e: e.sync(full=full))

    @rule(k=worker)
    @guarded
    def pull(self, k: int) -> None:
        self._engine_call(k, lambda e: e.pull())

    @rule(k=worker)
    @guarded
    def push(self, k: int) -> None:
        self._engine_call(k, lambda e: e.push())

    @rule(k=worker)
    @guarded
    def reconcile(self, k: int) -> None:
        self._engine_call(k, lambda e: e.reconcile())

    @rule(k=worker, i=index, edit=st.one_of(st.none(), change))
    @guarded
    def push_racing_pull(self, k: int, i: int, edit: tuple[str, Any] | None) -> None:
        """Worker k pushes; while its first dialer call is in flight (applied, not answered),
        a contact may change and the other worker pulls."""
        target = self._pick(self._live(), i)
        pull = self._nested(1 - k, lambda e: e.pull())

        def meanwhile() -> None:
            if edit is not None and target is not None:
                self.w.sf.update(target, {edit[0]: edit[1]})
            pull()

        self.w.dialer.in_flight.append(meanwhile)
        try:
            self._engine_call(k, lambda e: e.push())
        finally:
            self.w.dialer.in_flight.clear()

    @rule(k=worker, page=st.sampled_from([2, 3]))
    @guarded
    def reconcile_racing_push(self, k: int, page: int) -> None:
        """Worker k reconciles (a full list scan); the other worker pushes between two pages."""
        self.w.dialer.before_page[page] = self._nested(1 - k, lambda e: e.push())
        try:
            self._engine_call(k, lambda e: e.reconcile())
        finally:
            self.w.dialer.before_page.clear()

    @rule(k=worker, i=index, name=st.sampled_from(FIRST_NAMES))
    @guarded
    def full_sync_racing_edit(self, k: int, i: int, name: str) -> None:
        """A full pass runs; a callable contact's name changes after the pass fixed its window
        end. Removing that contact's record is never right: it was callable all along. (On a
        PHONE_NUMBER list a record holding a number its contact no longer has is replaced when
        the new number is refused: how a swap of numbers resolves.)"""
        target = self._pick(self._live(), i)
        if target is None:
            return
        config = self._mapping()
        before = expected(self.w.sf, [target], config, self.unique).records.get(target)
        held = [r for r in self.w.ours() if r["external_id"] == target]

        def edit() -> None:
            self.w.clock.advance(1.0)
            self.w.sf.update(target, {"FirstName": name})

        self.w.salesforce.before_window.append(edit)
        try:
            self._engine_call(k, lambda e: e.sync(full=True))
        finally:
            self.w.salesforce.before_window.clear()
        after = expected(self.w.sf, [target], config, self.unique).records.get(target)
        if before is None or after is None or len(held) != 1 or target in self.hand_touched:
            return
        if self.unique == "PHONE_NUMBER" and phone_numbers_of(held[0]) != phone_numbers_of(before):
            return  # the record holds a number the contact no longer has: replaced by design
        if not any(r["id"] == held[0]["id"] for r in self.w.ours()):
            raise RemovedWhileEdited(
                f"{self.alias[target]} ({target}): record {held[0]['id']} was removed by a full "
                "pass although the contact was callable before and after an edit made while "
                "the pass ran"
            )

    @rule(k=worker, point=st.sampled_from(["after_pull_batch", "before_send", "after_apply"]),
          call=st.sampled_from(["sync", "push", "pull"]))  # fmt: skip
    @guarded
    def crash(self, k: int, point: str, call: str) -> None:
        """Worker k's process dies at ``point`` of this call (or ends normally if the call
        never gets there); a new process replaces it."""
        self.w.plant_crash(self.w.workers[k], point)
        with contextlib.suppress(Crash):
            self._engine_call(k, lambda e: getattr(e, call)())
        self.w.restart(k)

    # -- the dialer ----------------------------------------------------------------------------
    @rule(kind=st.sampled_from(
        ["500", "500_after_apply", "drop_after_apply", "reject_first", "reject_last"]))  # fmt: skip
    @guarded
    def dialer_fault(self, kind: str) -> None:
        if len(self.w.dialer.faults) < 3:
            self.w.dialer.faults.append(kind)

    @rule(i=index)
    @guarded
    def hand_delete(self, i: int) -> None:
        record = self._our_record(i)
        if record is not None:
            self.hand_touched.add(str(record["external_id"]))
            self.w.talkdesk.remove_record(self.w.list_id, record["id"])

    @rule(i=index, edit=st.sampled_from(["first_name", "timezone", "phone", "priority", "extra"]))
    @guarded
    def hand_edit(self, i: int, edit: str) -> None:
        record = self._our_record(i)
        if record is None:
            return
        self.hand_touched.add(str(record["external_id"]))
        changed = snapshot(record)
        changed.update(
            {
                "first_name": {"first_name": "Edited"},
                "timezone": {"timezone": "Pacific/Honolulu"},
                "phone": {"phone_numbers": [{"phone_number": HAND_PHONE, "phone_type": "MOBILE"}]},
                "priority": {"priority": 1},
                "extra": {"extra_data": {"note": "typed by an agent"}},
            }[edit]
        )
        self.w.talkdesk.remove_record(self.w.list_id, record["id"])
        self.w.talkdesk.add_record(self.w.list_id, changed)

    @rule(i=index)
    @guarded
    def hand_duplicate(self, i: int) -> None:
        record = self._our_record(i)
        if record is not None:
            self.hand_touched.add(str(record["external_id"]))
            copy = {k: v for k, v in snapshot(record).items() if k not in ("id",)}
            self.w.talkdesk.add_record(self.w.list_id, copy)

    @rule(i=index)
    @guarded
    def hand_readd_opted_out(self, i: int) -> None:
        """Someone re-adds (from an old export) a contact that must not be called."""
        want = expected(self.w.sf, self.contacts, self._mapping(), self.unique)
        target = self._pick(sorted(want.absent), i)
        if target is None:
            return
        self.hand_touched.add(target)
        self.w.talkdesk.add_record(
            self.w.list_id,
            {
                "phone_numbers": [{"phone_number": HAND_PHONE, "phone_type": "MOBILE"}],
                "first_name": "Old",
                "last_name": "Export",
                "external_provider": "salesforce",
                "external_id": target,
                "sync_external_id": True,
            },
        )

    @rule(n=st.integers(0, 1))
    @guarded
    def hand_add_foreign(self, n: int) -> None:
        """Another integration's record: never ours to touch."""
        record_id = self.w.talkdesk.add_record(
            self.w.list_id,
            {
                "phone_numbers": [{"phone_number": FOREIGN_PHONES[n], "phone_type": "OFFICE"}],
                "first_name": "Other",
                "last_name": f"Integration{n}",
                "external_provider": "hubspot",
                "external_id": f"hs-{len(self.foreign)}",
            },
        )
        stored = next(r for r in self.w.talkdesk.records(self.w.list_id) if r["id"] == record_id)
        self.foreign[record_id] = snapshot(stored)

    # -- the invariant -----------------------------------------------------------------------
    def _mapping(self) -> MappingConfig:
        settings = self.w.settings
        return MappingConfig(
            instance_url=self.w.sf.url.rstrip("/"),
            default_region=settings.mapping.default_region,
            priority=settings.mapping.priority,
        )

    def _refused_once(self) -> set[str]:
        """Contacts a create or update of was refused per record: one incremental sync need not
        retry those (a full sync must)."""
        return {e for op, e in self.w.dialer.refused if op in ("create", "update") and e}

    def _quiet_sync(self, **kw: Any) -> str | None:
        try:
            self.w.workers[0].engine.sync(**kw)
        except DialsyncError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def check_after_quiescence(self) -> None:
        w = self.w
        w.quiet()
        w.clock.advance(QUIET_SECONDS if self.unique == "EXTERNAL" else SETTLED_SECONDS)
        config = self._mapping()
        phases: list[tuple[str, Violations]] = []
        # (a) one incremental sync converges everything it can see. Not visible to it: a hard
        # delete in the current minute (getDeleted covers whole minutes only, and the row is
        # gone from queryAll), records edited by hand, creates/updates refused once per record.
        minute = w.clock.now().replace(second=0, microsecond=0)
        unseen_deletes = {c for c, at in self.hard_deleted_at.items() if at >= minute}
        error = self._quiet_sync()
        want = expected(w.sf, self.contacts, config, self.unique)
        visible = set(self.contacts) - self.hand_touched - self._refused_once() - unseen_deletes
        found = check_convergence(
            want, w.talkdesk.records(w.list_id), self.foreign, only=visible, alias=self.alias
        )
        if error:
            found.add("sync_failed", error)
        phases.append(("incremental", found))
        # (b) one full sync converges everything
        error = self._quiet_sync(full=True)
        found = check_convergence(
            want, w.talkdesk.records(w.list_id), self.foreign, alias=self.alias
        )
        if error:
            found.add("sync_failed", error)
        phases.append(("full", found))
        failing = [(phase, v) for phase, v in phases if v]
        if failing:
            phase, first = failing[0]
            text = "\n".join(f"after one {p} sync:\n{v.text()}" for p, v in phases if v)
            raise violation(phase, first.kinds)(f"not converged ({self.unique} list)\n{text}")

    def teardown(self) -> None:
        try:
            if self.world is not None and not self.failed_step:
                self.check_after_quiescence()
        finally:
            if self.world is not None:
                self.world.close()


# Rules left out are removed before hypothesis collects them, so no step is wasted on them.
for _name in [n for n in vars(ConvergenceMachine) if RULES_OFF and n.startswith(RULES_OFF)]:
    if _name != "start":
        delattr(ConvergenceMachine, _name)


@pytest.fixture
def scan_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(talkdesk_destination, "PAGE_SIZE", SCAN_PAGE_SIZE)


def run_model(workdir: Path, db_url: str) -> None:
    model_settings = MODEL_SETTINGS
    machine: Callable[[], ConvergenceMachine] = lambda: ConvergenceMachine(workdir, db_url)  # noqa: E731
    if SEED is not None:
        from hypothesis import seed

        machine = seed(int(SEED))(machine)
    run_state_machine_as_test(machine, settings=model_settings)


@pytest.mark.slow
def test_convergence_sqlite(tmp_path: Path, scan_pages: None) -> None:
    run_model(tmp_path / "box", f"sqlite:///{tmp_path / 'state.db'}")


@pytest.mark.slow
@pytest.mark.postgres
def test_convergence_postgres(tmp_path: Path, scan_pages: None) -> None:
    run_model(tmp_path / "box", postgres_url())


# Fixed walks through the same machine: interleavings the random search reaches only with a
# large budget (its early examples repeat one rule), replayed on every run. Each is a list of
# (rule, arguments); the final check is the same invariant.
ANN = {"FirstName": "Ann", "MobilePhone": "(415) 226-0101", "DoNotCall": False}
BOB_SAME_PHONE = {"FirstName": "Bob", "MobilePhone": "(415) 226-0101", "DoNotCall": False}
WALKS: dict[str, tuple[str, list[tuple[str, dict[str, Any]]]]] = {
    "push_answer_over_newer_pull": (
        "EXTERNAL",
        [
            ("pull", {"k": 0}),
            ("tick", {"seconds": 1.0}),
            ("push_racing_pull", {"k": 0, "i": 0, "edit": ("FirstName", "Bob")}),
        ],
    ),
    "failed_delete_of_opted_out": (
        "EXTERNAL",
        [
            ("sync", {"k": 0, "full": False}),
            ("tick", {"seconds": 1.0}),
            ("sf_edit", {"i": 0, "edit": ("DoNotCall", True)}),
            ("tick", {"seconds": 1.0}),
            ("dialer_fault", {"kind": "reject_first"}),
            ("sync", {"k": 0, "full": False}),
        ],
    ),
    # c1 and c2 share a number on a list unique by number: c2 (the lower Id, sent first) holds
    # it and c1 is refused; then c2 moves to another number, which frees it for c1.
    "unique_phone_holder_moves": (
        "PHONE_NUMBER",
        [
            ("sf_new_contact", {"spec": BOB_SAME_PHONE}),
            ("sync", {"k": 0, "full": False}),
            ("tick", {"seconds": 1.0}),
            ("sf_edit", {"i": 1, "edit": ("MobilePhone", "(212) 226-0102")}),
            ("tick", {"seconds": 1.0}),
        ],
    ),
    "crash_after_claiming_creates": (
        "EXTERNAL",
        [("crash", {"k": 0, "point": "before_send", "call": "sync"})],
    ),
}


@pytest.mark.parametrize("walk", sorted(WALKS))
def test_convergence_walk(walk: str, tmp_path: Path, scan_pages: None) -> None:
    unique, steps = WALKS[walk]
    machine = ConvergenceMachine(tmp_path / "box", f"sqlite:///{tmp_path / 'state.db'}")
    machine.start(unique=unique, people=[ANN])
    try:
        for name, arguments in steps:
            getattr(machine, name)(**arguments)
    finally:
        machine.teardown()
