"""Room left in a record list that holds a bounded number of records.

Talkdesk: "There is a limit in place of the maximum amount of records in record lists ...
250,000 records. When the number of records reaches 80% of this value (200,000 to 249,999), a
chip is displayed" (Talkdesk support, Uploading a List). The API's answer to a create that
would pass the limit is undocumented. So the adapter counts: the list's ``records_count`` when
it opens (every record, ours or not), plus what it creates, minus what it deletes, and sends no
more creates than fit. The rest are answered as held (a transient outcome): their rows stay
queued with the reason ``LIST_FULL`` and go out at a later attempt, once records were removed.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

WARN_SHARE = 0.80  # where Talkdesk itself starts warning
# Words a dialer's refusal would use for a full list; our sandbox answers
# RECORD_LIST_LIMIT_REACHED. Undocumented: a refusal that matches holds the batch (and every
# create after it until a record is removed) instead of rejecting its records. Narrow on
# purpose: a record's own error ("exceeds the maximum length") must still reject that record.
_FULL_WORDS = re.compile(
    r"limit[ _-]reached|reached its limit|list[ _-](?:is[ _-])?full|capacity", re.IGNORECASE
)


def says_full(code: str | None, message: str | None) -> bool:
    return bool(_FULL_WORDS.search(f"{code or ''} {message or ''}"))


@dataclass(frozen=True)
class Fill:
    held: int
    limit: int

    @property
    def share(self) -> float:
        return self.held / self.limit

    @property
    def level(self) -> str:
        """ok, warn (80% or more) or full."""
        if self.held >= self.limit:
            return "full"
        return "warn" if self.share >= WARN_SHARE else "ok"

    def __str__(self) -> str:
        return f"{self.held:,} of at most {self.limit:,} records ({self.share:.0%})"


class ListCapacity:
    """Thread-safe: the engine's push threads create and delete in parallel."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: int | None = None  # None: the list did not say its count
        self._refused = False  # the dialer refused a create as full
        self._lock = threading.Lock()

    def opened(self, records_count: int | None) -> Fill | None:
        with self._lock:
            self._held = records_count
            self._refused = False
        return self.fill()

    def fill(self) -> Fill | None:
        with self._lock:
            if self._held is None:
                return None
            return Fill(self._held, self.limit)

    def reserve(self, wanted: int) -> int:
        """How many of ``wanted`` creates may be sent now; those are counted as held."""
        with self._lock:
            if self._refused:
                return 0
            if self._held is None:
                return wanted
            room = max(0, self.limit - self._held)
            granted = min(room, wanted)
            self._held += granted
            return granted

    def release(self, unused: int) -> None:
        """Reserved creates that did not create a record."""
        with self._lock:
            if self._held is not None:
                self._held = max(0, self._held - unused)

    def removed(self, count: int) -> None:
        with self._lock:
            if self._held is not None:
                self._held = max(0, self._held - count)
            if count:
                self._refused = False

    def refused(self) -> None:
        """The dialer said the list is full, whatever our count said."""
        with self._lock:
            self._refused = True
            if self._held is not None:
                self._held = max(self._held, self.limit)
