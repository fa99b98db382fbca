"""The sync table's rows of one list: what the pull writes, and what it reads back.

``apply`` is where a pulled contact's desired state lands (through the row state machine,
``dialsync.rowstate``); ``update_each`` and ``unsettle`` are shared with the work queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection

from dialsync.rowstate import transitions
from dialsync.rowstate.decide import Desired, RowState, Status, Verdict, decide
from dialsync.store import history
from dialsync.store.database import Database, chunks
from dialsync.store.tables import sync_records

R = sync_records.c


@dataclass(frozen=True)
class ListKey:
    """One destination list: the rows of the sync table that belong to it."""

    destination: str
    list_id: str

    def rows(self) -> tuple[ColumnElement[bool], ...]:
        return self.of(sync_records)

    def of(self, table: Table) -> tuple[ColumnElement[bool], ...]:
        """The rows of ``table`` (any table keyed by destination and list) of this list."""
        return (table.c.destination == self.destination, table.c.list_id == self.list_id)

    def columns(self) -> dict[str, str]:
        """The key's columns, for a row being inserted."""
        return {"destination": self.destination, "list_id": self.list_id}


def replace_list_row(conn: Connection, table: Table, key: ListKey, **values: Any) -> None:
    """The one row a list has in ``table`` (its scan state, its fingerprint), written anew."""
    conn.execute(delete(table).where(*key.of(table)))
    conn.execute(insert(table).values(**key.columns(), **values))


def rows_of(conn: Connection, key: ListKey, external_ids: Sequence[str]) -> dict[str, RowState]:
    """What ``decide()`` reads for these contacts, by external id."""
    found: dict[str, RowState] = {}
    cols = (
        R.id,
        R.external_id,
        R.record_id,
        R.status,
        R.desired,
        R.payload_hash,
        R.sent_hash,
        R.source_modstamp,
        R.inflight,
    )
    for part in chunks(list(external_ids)):
        query = select(*cols).where(*key.rows(), R.external_id.in_(part))
        for row in conn.execute(query):
            found[row.external_id] = RowState(*row)
    return found


def apply(
    db: Database,
    key: ListKey,
    wants: Sequence[Desired],
    run_id: int | None,
    *,
    dry_run: bool = False,
    mark_seen: bool = True,
) -> list[Verdict]:
    """``TargetStore.apply``: one read of the rows, one decision per contact, the history of
    those decisions and the writes, in one transaction."""
    verdicts: list[Verdict] = []
    now = db.clock()
    with db.tx() as conn:
        existing = rows_of(conn, key, [w.external_id for w in wants])
        decided: list[history.Decided] = []  # those that leave a trace in the history
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for want in wants:
            row = existing.get(want.external_id)
            verdict = decide(row, want)
            verdicts.append(verdict)
            if dry_run:
                continue
            if row is None or not transitions.reread(verdict, row, want):
                decided.append((want, row, verdict))
            elif not mark_seen:
                continue  # a re-read that changes nothing: nothing to write
            values = transitions.pulled(verdict, row, want, run_id, now)
            if row is None:
                inserts.append(
                    {
                        **key.columns(),
                        "external_id": want.external_id,
                        "attempts": 0,
                        **values,
                    }
                )
            else:
                updates.append({"_id": row.id, **values})
        # the evidence first: it reads the payloads the updates replace
        history.record_pull(conn, key.destination, key.list_id, decided, run_id, now)
        if inserts:
            # One statement in the order of ``wants`` (the row ids follow it, and claims take
            # rows by id). executemany needs like rows: a column one want does not set (a
            # resync's sent_hash, a stamp) is NULL, which is its default.
            columns = set().union(*inserts)
            conn.execute(insert(sync_records), [{c: r.get(c) for c in columns} for r in inserts])
        update_each(conn, updates, R.id == bindparam("_id"))
        if updates:
            unsettle(conn, [u["_id"] for u in updates], now)
    return verdicts


def mark_seen(db: Database, key: ListKey, external_ids: Sequence[str], run_id: int) -> None:
    with db.tx() as conn:
        for part in chunks(list(external_ids)):
            conn.execute(
                update(sync_records)
                .where(*key.rows(), R.external_id.in_(part))
                .values(last_seen_run=run_id)
            )


def claim_live(now: datetime) -> ColumnElement[bool]:
    """A push holds the row: its claim's lease has not ended."""
    return and_(R.claimed_by.is_not(None), R.claim_expires_at >= now)


def claim_free(now: datetime) -> ColumnElement[bool]:
    """No push holds the row: never claimed, released, or its lease ended."""
    return or_(R.claim_expires_at.is_(None), R.claim_expires_at < now)


def maybe_in_dialer() -> ColumnElement[bool]:
    """A row whose record the dialer may hold (wanted, known, or a create in flight)."""
    return or_(R.desired == "present", R.record_id.is_not(None), R.inflight == "create")


def unverified_ids(db: Database, key: ListKey) -> list[str]:
    with db.read() as conn:
        query = select(R.external_id).where(*key.rows(), R.status == Status.UNVERIFIED)
        return list(conn.execute(query).scalars())


def unseen_ids(db: Database, key: ListKey, run_id: int) -> list[str]:
    with db.read() as conn:
        query = select(R.external_id).where(
            *key.rows(),
            or_(R.last_seen_run.is_(None), R.last_seen_run != run_id),
            maybe_in_dialer(),
        )
        return list(conn.execute(query).scalars())


def ids_maybe_in_dialer(db: Database, key: ListKey, external_ids: Sequence[str]) -> list[str]:
    with db.read() as conn:
        out: list[str] = []
        for part in chunks(list(external_ids)):
            query = select(R.external_id).where(
                *key.rows(), R.external_id.in_(part), maybe_in_dialer()
            )
            out.extend(conn.execute(query).scalars())
        return out


def row_states(db: Database, key: ListKey, external_ids: Sequence[str]) -> dict[str, RowState]:
    with db.read() as conn:
        return rows_of(conn, key, external_ids)


def record_ids(db: Database, key: ListKey, external_ids: Sequence[str]) -> dict[str, str | None]:
    return {k: v.record_id for k, v in row_states(db, key, external_ids).items()}


def count(db: Database, *conditions: ColumnElement[bool]) -> int:
    with db.read() as conn:
        query = select(func.count()).select_from(sync_records).where(*conditions)
        return int(conn.execute(query).scalar_one())


def set_where(db: Database, key: ListKey, *conditions: ColumnElement[bool], **values: Any) -> int:
    """Set ``values`` on the rows of one list that meet ``conditions``; how many."""
    with db.tx() as conn:
        result = conn.execute(update(sync_records).where(*key.rows(), *conditions).values(**values))
        return int(result.rowcount or 0)


def unsettle(conn: Connection, row_ids: Sequence[int], now: datetime) -> None:
    """Put back in the queue rows that a decision made on a stale read left at rest.

    The pull decides from rows read at the start of its transaction; a push answer committed
    meanwhile (a create just applied) can make "skipped: never in the dialer" false. A row at
    rest must agree with what the dialer holds (the table above transitions.AT_REST);
    checked in the same transaction, after the writes, so no answer recorded before is missed
    (and one recorded after is compare-and-set against the new desired state).
    """
    for part in chunks(list(row_ids)):
        conn.execute(
            update(sync_records)
            .where(R.id.in_(part), R.status.in_(transitions.AT_REST), ~_at_rest_consistent())
            .values(status=Status.PENDING, next_attempt_at=None, updated_at=now)
        )


def _at_rest_consistent() -> ColumnElement[bool]:
    """A row at rest that agrees with what the dialer holds (see transitions.AT_REST)."""
    return or_(
        and_(
            R.status == Status.SYNCED,
            R.desired == "present",
            R.record_id.is_not(None),
            R.sent_hash == R.payload_hash,
        ),
        and_(
            R.status.in_([Status.SKIPPED, Status.REMOVED]),
            R.record_id.is_(None),
            or_(R.inflight.is_(None), R.inflight != "create"),
        ),
        R.status.in_([Status.REJECTED, Status.BLOCKED]),
    )


def update_each(
    conn: Connection, rows: Sequence[dict[str, Any]], where: ColumnElement[bool]
) -> None:
    """One executemany per set of columns; ``_``-prefixed keys are the condition's values."""
    for group in group_by_keys(rows):
        keys = [k for k in group[0] if not k.startswith("_")]
        conn.execute(
            update(sync_records).where(where).values({k: bindparam(k) for k in keys}), group
        )


def group_by_keys(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """executemany needs every dict of one call to have the same keys."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())
