"""`dialsync preview --contact ID`: one Contact, the record it maps to in each list, and what
the next sync would do with it. Reads Salesforce and the sync table; writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dialsync.engine import canonical
from dialsync.mapping import MappingConfig
from dialsync.models import DialerRecord, Skip, SkipReason, SourceContact
from dialsync.rowstate.decide import Desired, RowState, Verdict, decide
from dialsync.settings import Settings
from dialsync.store.protocol import RowInfo


@dataclass
class ListPreview:
    destination: str
    list_id: str
    payload: dict[str, Any] | None  # None: not in this list
    reason: str | None  # why not
    message: str | None
    status: str | None  # the sync table's row, if any
    row_reason: str | None
    record_id: str | None
    next_sync: str  # what a sync would do: create, update, delete, skip or nothing
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Preview:
    contact_id: str
    found: bool
    system_modstamp: str | None
    fields: dict[str, Any]
    lists: list[ListPreview]

    def as_dict(self) -> dict[str, Any]:
        return {**vars(self), "lists": [item.as_dict() for item in self.lists]}


_NEXT = {
    Verdict.CREATE: "create",
    Verdict.UPDATE: "update",
    Verdict.DELETE: "remove",
    Verdict.SKIP: "skip",
    Verdict.UNCHANGED: "nothing (in step)",
    Verdict.WAITING: "nothing new (already queued)",
}


def make_preview(settings: Settings, contact_id: str) -> Preview:
    """``contact_id`` is a validated 18-character Id."""
    from dialsync.wiring import build_engine, build_store

    store = build_store(settings)
    engine = build_engine(settings, store)
    try:
        source, options = engine.source, engine.options
        source.open()
        fields = source.available(options.fields)
        contact = next(iter(source.by_ids(fields, [contact_id])), None)
        if contact is None:
            return Preview(contact_id, False, None, {}, [])
        # The same configuration the engine builds when it opens the source.
        config = MappingConfig(
            instance_url=(source.instance_url or "").rstrip("/"),
            default_region=options.default_region,
            priority=options.priority,
        )
        result = options.mapper(contact, config)
        rows = store.rows_for_contact(contact.id)
        lists = []
        for dest in engine.destinations:
            here = result
            if (
                isinstance(here, DialerRecord)
                and options.route
                and not options.route(contact, here, dest)
            ):
                here = Skip(reason=SkipReason.ROUTED_ELSEWHERE, message="routed to another list")
            state = store.target(dest.name, dest.target).row_states([contact.id]).get(contact.id)
            lists.append(
                _list_preview(
                    contact,
                    dest.name,
                    dest.target,
                    here,
                    dest.render,
                    rows.get((dest.name, dest.target)),
                    state,
                )
            )
        return Preview(
            contact.id,
            True,
            contact.system_modstamp.isoformat(),
            {k: v for k, v in contact.fields.items() if k != "attributes"},
            lists,
        )
    finally:
        engine.close()


def _list_preview(
    contact: SourceContact,
    name: str,
    target: str,
    result: DialerRecord | Skip,
    render: Callable[[DialerRecord], dict[str, Any]],
    row: RowInfo | None,
    state: RowState | None,
) -> ListPreview:
    if isinstance(result, DialerRecord):
        payload = render(result)
        text, digest = canonical(payload)
        want = Desired(contact.id, contact.system_modstamp, True, text, digest)
        reason = message = None
    else:
        payload, digest = None, None
        reason, message = result.reason.value, result.message
        want = Desired(
            contact.id, contact.system_modstamp, False, reason_code=reason, reason_message=message
        )
    verdict = decide(state, want)
    note = ""
    if verdict is Verdict.UNCHANGED and payload is not None and row and row.sent_hash != digest:
        # Seen at this SystemModstamp already, so a sync leaves it; the mapping has changed
        # since (or the dialer's copy is unknown).
        note = (
            "the dialer holds another version of this record (the mapping changed?): "
            f"`dialsync resync --contact {contact.id}` sends this one"
        )
    return ListPreview(
        destination=name,
        list_id=target,
        payload=payload,
        reason=reason,
        message=message,
        status=row.status if row else None,
        row_reason=row.reason_code if row else None,
        record_id=row.record_id if row else None,
        next_sync=_NEXT[verdict],
        note=note,
    )
