"""Talkdesk Record Lists (seeds 004, 001, 000; reference/talkdesk-record-lists.md).

Create is not an upsert and the list cannot be filtered by external id, so the engine keeps
the (list, external id) -> record id map in the sync table and this adapter reports clashes
(DUPLICATE) and vanished records (NOT_FOUND) for the engine to resolve.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Unpack

from dialsync.destinations.base import Capabilities, ItemResult, Outcome, TargetInfo, WriteItem
from dialsync.destinations.capacity import Fill, ListCapacity, says_full
from dialsync.destinations.connection import Connection, Plumbing
from dialsync.destinations.http import (
    NotFound,
    RequestRefused,
)
from dialsync.destinations.talkdesk_record import (
    OPTIONAL_FIELDS,
    as_payload,
    render_record,
)
from dialsync.errors import TerminalError
from dialsync.models import WAITS_FOR_ROOM, DialerRecord
from dialsync.settings import TalkdeskSettings

log = logging.getLogger(__name__)
SYSTEM = "talkdesk"
SCOPE = "record-lists:manage"
BULK_LIMIT = 100  # "create/update/delete up to 100" per bulk call; more answers 400
PAGE_SIZE = 100
DUPLICATE_CODES = frozenset({"EXTERNAL_ID_AND_PROVIDER_NOT_UNIQUE", "PHONE_NUMBER_NOT_UNIQUE"})


class TalkdeskDestination:
    name = SYSTEM

    def __init__(
        self,
        settings: TalkdeskSettings,
        *,
        provider: str = "salesforce",
        **plumbing: Unpack[Plumbing],
    ) -> None:
        settings.require()
        assert settings.record_list_id and settings.token_url and settings.client_id
        assert settings.client_secret is not None
        self.settings = settings
        self.target = settings.record_list_id
        self.provider = provider
        self._connection = Connection(
            settings,
            SYSTEM,
            settings.token_url,
            {"grant_type": "client_credentials", "scope": SCOPE},
            auth=(settings.client_id, settings.client_secret.get_secret_value()),
            **plumbing,
        )
        self.api = self._connection.api(plumbing.get("limiter"))
        self._list_path = f"/record-lists/{self.target}"
        self._unique_external = False
        self.capabilities = Capabilities(
            max_batch=BULK_LIMIT,
            native_upsert=False,
            full_replacement=False,
            # A create the client timed out on may still be applied by the dialer a little
            # later; a list scan concludes "never created" only for creates older than this.
            settle_seconds=2 * settings.timeout_seconds,
        )
        self.capacity = ListCapacity(settings.list_capacity)

    def render(self, record: DialerRecord) -> dict[str, Any]:
        return render_record(record)

    def open(self) -> TargetInfo:
        try:
            body = self.api.call("GET", self._list_path, idempotent=True).json()
        except NotFound:
            raise TerminalError(
                f"record list {self.target} not found: check DIALSYNC_TALKDESK__RECORD_LIST_ID",
                system=SYSTEM,
                status=404,
                code="RECORD_LIST_NOT_FOUND",
                setting="DIALSYNC_TALKDESK__RECORD_LIST_ID",
            ) from None
        unique = body.get("unique_identifier_type")
        self._unique_external = unique == "EXTERNAL"
        count = body.get("records_count")
        fill = self.capacity.opened(count if isinstance(count, int) else None)
        if fill is not None and fill.level != "ok":
            log.warning(
                "talkdesk list %s holds %s%s",
                self.target,
                fill,
                ": it is full, new contacts wait in the sync table (LIST_FULL)"
                if fill.level == "full"
                else "; past 80%: creates stop at the limit",
            )
        return TargetInfo(
            name=str(body.get("name") or self.target),
            records_count=count if isinstance(count, int) else None,
            unique_by_external_id=self._unique_external,
            unique_identifier_type=unique,
        )

    def fill(self) -> Fill | None:
        return self.capacity.fill()

    # -- writes ----------------------------------------------------------------------------
    def create(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        """Creates that fit in the list are sent; the others are answered as held."""
        granted = self.capacity.reserve(len(items))
        send, held = list(items[:granted]), list(items[granted:])
        results: list[ItemResult] = []
        if send:
            try:
                results = self._create(send)
            except RequestRefused as exc:
                self.capacity.release(granted)
                if not says_full(exc.code, exc.message):
                    raise
                self.capacity.refused()
                log.warning("talkdesk list %s refused creates as full: %s", self.target, exc)
                send, held = [], list(items)
            except BaseException:
                self.capacity.release(granted)  # the next open() reads the true count
                raise
            else:
                made = sum(1 for r in results if r.outcome is Outcome.OK)
                self.capacity.release(granted - made)
        if held:
            log.warning(
                "talkdesk list %s is full (%s): %d creates wait in the sync table (LIST_FULL)",
                self.target,
                self.capacity.fill() or "count unknown",
                len(held),
            )
        return results + [self._held(item) for item in held]

    def _held(self, item: WriteItem) -> ItemResult:
        fill = self.capacity.fill()
        state = f"holds {fill}" if fill is not None else "refused creates as full"
        return ItemResult(
            item.external_id,
            Outcome.TRANSIENT,
            code=WAITS_FOR_ROOM,
            message=f"record list {self.target} {state}, Talkdesk's limit: the create waits "
            "until records are removed from the list (or contacts are routed to another list)",
        )

    def _create(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        body = {"records": [item.payload for item in items]}
        # On an EXTERNAL list a repeated create is refused per record, never duplicated, so a
        # lost answer may be retried; elsewhere it must be settled by a scan first.
        response = self.api.call(
            "POST",
            f"{self._list_path}/records/bulks",
            json=body,
            idempotent=self._unique_external,
            ok=(200, 201),
        )
        entries = _embedded(response.json(), "records")
        results: list[ItemResult] = []
        for item, entry in _match(items, entries, self.provider):
            if entry is None:
                results.append(
                    ItemResult(
                        item.external_id,
                        Outcome.UNKNOWN,
                        message="no entry for this record in the answer",
                    )
                )
                continue
            errors = [str(e) for e in entry.get("errors") or []]
            if not errors and entry.get("id"):
                results.append(ItemResult(item.external_id, Outcome.OK, str(entry["id"])))
            elif DUPLICATE_CODES.intersection(errors):
                code = next(e for e in errors if e in DUPLICATE_CODES)
                results.append(ItemResult(item.external_id, Outcome.DUPLICATE, code=code))
            else:
                code = errors[0] if errors else "OTHER"
                results.append(
                    ItemResult(
                        item.external_id, Outcome.REJECTED, code=code, message=", ".join(errors)
                    )
                )
        return results

    def update(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        # "replace" sets only the keys given: an optional field the mapping no longer gives
        # (a time zone once the only phone is toll-free) is cleared with an explicit null: the
        # reference documents null as "absent" for priority; for the time zone it documents
        # nothing, and our sandbox takes null as absent the same way (see
        # shared/reference/talkdesk-record-lists.md).
        ops = [
            {
                "op": "replace",
                "path": f"/records/{item.record_id}",
                "value": {**dict.fromkeys(sorted(OPTIONAL_FIELDS)), **(item.payload or {})},
            }
            for item in items
        ]
        response = self.api.call(
            "PATCH", f"{self._list_path}/records/bulks", json=ops, idempotent=True, ok=(200,)
        )
        entries = _embedded(response.json(), "records")
        by_id = {str(e.get("id")): e for e in entries if e.get("id")}
        results: list[ItemResult] = []
        for position, item in enumerate(items):
            entry = by_id.get(str(item.record_id))
            if entry is None and position < len(entries):
                entry = entries[position]
            errors = [str(e) for e in (entry or {}).get("errors") or []]
            if entry is not None and not errors:
                results.append(ItemResult(item.external_id, Outcome.OK, item.record_id))
            elif DUPLICATE_CODES.intersection(errors):
                # another record holds the new phone number: the engine breaks the clash
                code = next(e for e in errors if e in DUPLICATE_CODES)
                results.append(
                    ItemResult(item.external_id, Outcome.DUPLICATE, item.record_id, code=code)
                )
            elif self._record_exists(item.record_id):
                code = errors[0] if errors else "OTHER"
                results.append(
                    ItemResult(
                        item.external_id,
                        Outcome.REJECTED,
                        item.record_id,
                        code=code,
                        message=", ".join(errors),
                    )
                )
            else:  # removed in the dialer by hand: the engine creates it again
                results.append(ItemResult(item.external_id, Outcome.NOT_FOUND))
        return results

    def delete(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        ids = [str(item.record_id) for item in items]
        gone = self._delete_ids(ids)
        return [
            ItemResult(
                item.external_id,
                Outcome.OK if rid in gone else Outcome.REJECTED,
                rid,
                code=None if rid in gone else "DELETE_FAILED",
            )
            for item, rid in zip(items, ids, strict=True)
        ]

    def delete_records(self, record_ids: Sequence[str]) -> list[ItemResult]:
        gone = self._delete_ids(list(record_ids))
        return [
            ItemResult("", Outcome.OK if rid in gone else Outcome.REJECTED, rid)
            for rid in record_ids
        ]

    def _delete_ids(self, ids: list[str]) -> set[str]:
        """The ids that are no longer in the list after one bulk delete."""
        response = self.api.call(
            "DELETE",
            f"{self._list_path}/records/bulks",
            json=[{"id": rid} for rid in ids],
            idempotent=True,
            ok=(200,),
        )
        body = response.json()
        failed = {str(f.get("id")) for f in _embedded(body, "failed_records")}
        deleted = body.get("total_deleted") if isinstance(body, dict) else None
        self.capacity.removed(
            deleted if isinstance(deleted, int) else len([i for i in ids if i not in failed])
        )
        # The vendor does not document why a delete fails; a record that is not there any more
        # is what we wanted, so check before calling it a failure.
        return {rid for rid in ids if rid not in failed or not self._record_exists(rid)}

    def _record_exists(self, record_id: str | None) -> bool:
        if not record_id:
            return False
        try:
            self.api.call(
                "GET", f"{self._list_path}/records/{record_id}", idempotent=True, ok=(200,)
            )
        except NotFound:
            return False
        return True

    # -- reads -----------------------------------------------------------------------------
    def scan(self) -> Iterator[tuple[str, str]]:
        """Page the whole list by following ``_links.next`` (never computing page numbers)."""
        for external_id, record_id, _ in self.scan_contents():
            yield external_id, record_id

    def scan_contents(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """As scan(), with each record in payload form (the fields render_record owns)."""
        url: str | None = f"{self._list_path}/records"
        params: dict[str, Any] | None = {"page": 1, "per_page": PAGE_SIZE}
        while url:
            body = self.api.call("GET", url, params=params, idempotent=True, ok=(200,)).json()
            for record in _embedded(body, "records"):
                if (
                    record.get("external_provider") == self.provider
                    and record.get("external_id")
                    and record.get("id")
                ):
                    yield str(record["external_id"]), str(record["id"]), as_payload(record)
            next_link = (body.get("_links") or {}).get("next") or {}
            url = next_link.get("href") if isinstance(next_link, dict) else None
            params = None

    def close(self) -> None:
        self._connection.close()


def _embedded(body: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        return []
    found = (body.get("_embedded") or {}).get(key) or []
    return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


def _match(
    items: Sequence[WriteItem], entries: list[dict[str, Any]], provider: str
) -> Iterator[tuple[WriteItem, dict[str, Any] | None]]:
    """Pair answer entries with inputs by external ref first, by position as a fallback.

    The answer's order is undocumented, so position is trusted only where the entry carries no
    external ref that says otherwise.
    """
    by_ref: dict[str, dict[str, Any]] = {}
    for answer in entries:
        if answer.get("external_provider") == provider and answer.get("external_id"):
            by_ref.setdefault(str(answer["external_id"]), answer)
    for position, item in enumerate(items):
        entry = by_ref.get(item.external_id)
        if entry is None and position < len(entries) and not entries[position].get("external_id"):
            entry = entries[position]
        yield item, entry
