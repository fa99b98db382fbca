"""What a run is asked (EngineOptions), what it answers (RunReport), and who watches (Observer)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from dialsync.destinations.base import Destination, ItemResult
from dialsync.errors import DialsyncError
from dialsync.mapping import CONTACT_FIELDS, MappingConfig, map_contact
from dialsync.models import DialerRecord, Skip, SourceContact
from dialsync.rowstate.decide import Desired, Verdict
from dialsync.store.protocol import RUN_COUNTERS


@dataclass
class RunReport:
    run_id: int | None
    kind: str
    counts: Counter[str] = field(default_factory=Counter)
    reconciled: bool = False
    # Destinations that failed this run (the others went on): name -> reason.
    failed: dict[str, str] = field(default_factory=dict)
    # resync: the Ids asked for that Salesforce does not return (no such contact, or deleted).
    missing: list[str] = field(default_factory=list)
    # Rows the dialer is not known to hold as wanted when the run ended (queued for a retry,
    # or a create whose answer was lost): the list is not converged yet.
    unsettled: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: int(self.counts.get(name, 0)) for name in RUN_COUNTERS}


@dataclass(frozen=True)
class EngineOptions:
    lookback: timedelta = timedelta(seconds=600)
    scoped: bool = False  # SOQL_WHERE is set: contacts outside it are removed
    default_region: str = "US"
    priority: int | None = 5
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    # The mapping: a contact -> record function and the Salesforce fields it reads (a mapping
    # file replaces the default).
    mapper: Callable[[SourceContact, MappingConfig], DialerRecord | Skip] = map_contact
    fields: tuple[str, ...] = tuple(CONTACT_FIELDS)
    # Routing: whether a destination (a record list) holds this contact's record. Contacts
    # routed elsewhere are absent from it, with the reason "routed_elsewhere".
    route: Callable[[SourceContact, DialerRecord, Destination], bool] | None = None
    # Dialer calls in flight at once within one process (the service fans out tasks instead).
    push_threads: int = 4
    # What shapes payloads beyond the fields above (the mapping file's content, SOQL_WHERE,
    # the routed lists): part of each target's fingerprint (dialsync.remap).
    payload_settings: Mapping[str, Any] = field(default_factory=dict)


class Observer:
    """Hooks for progress bars, logs and metrics; the default does nothing. Must not raise."""

    def run_started(self, report: RunReport) -> None:
        """A run began: its row is written, the source and destinations are open."""

    def batch_pulled(self, report: RunReport, count: int) -> None:
        """``count`` more contacts were read and recorded in the sync table."""

    def decided(self, dest: str, decisions: Sequence[tuple[Desired, Verdict]]) -> None:
        """The table's verdict on each contact of a batch, for one list (``dest``
        "name:target"); a dry run's plan reads them."""

    def batch_sent(self, dest: str, op: str, results: Sequence[ItemResult]) -> None:
        """One dialer call answered (``dest`` is "name:target")."""

    def batch_failed(self, dest: str, op: str, count: int, error: DialsyncError) -> None:
        """One dialer call failed for the whole batch; its rows will be retried."""

    def run_finished(self, report: RunReport, seconds: float, status: str) -> None:
        """A run ended (status ok, partial or failed)."""
