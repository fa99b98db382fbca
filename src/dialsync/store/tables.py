"""SQLAlchemy Core tables; the same code runs on SQLite and PostgreSQL.

Times are stored as naive UTC (SQLite has no time zones) and come back aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from dialsync.store.protocol import RUN_COUNTERS


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


metadata = MetaData()

# One row per (destination, list, external id). Statuses:
#   pending   the dialer must change (create, update or delete: derived from the columns)
#   retrying  as pending, after a transient failure; due at next_attempt_at
#   synced    the dialer holds payload_hash (sent_hash == payload_hash)
#   rejected  the dialer refused the payload; reason_code says why
#   skipped   must not be called and was never in the list (reason_code says why)
#   removed   must not be called and was removed from the list
sync_records = Table(
    "sync_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("destination", String(32), nullable=False),
    Column("list_id", String(64), nullable=False),
    Column("external_id", String(64), nullable=False),
    Column("record_id", String(64)),
    Column("status", String(16), nullable=False),
    Column("desired", String(8), nullable=False),  # present | absent
    Column("payload", Text),  # the rendered destination payload, JSON
    Column("payload_hash", String(64)),
    Column("sent_hash", String(64)),  # what the dialer holds; NULL = unknown
    Column("source_modstamp", UTCDateTime()),
    Column("reason_code", String(64)),
    Column("reason_message", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime()),
    # Write-ahead marker: set and committed before a dialer write, cleared with its result.
    # A create still marked after a crash may have happened: the list is scanned before retrying.
    Column("inflight", String(8)),
    Column("inflight_at", UTCDateTime()),
    Column("claimed_by", String(64)),
    Column("claim_expires_at", UTCDateTime()),
    Column("last_seen_run", Integer),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("destination", "list_id", "external_id", name="uq_sync_records_key"),
    Index("ix_sync_records_due", "destination", "list_id", "status", "next_attempt_at"),
    Index("ix_sync_records_inflight", "destination", "list_id", "inflight"),
)

# Dialer records of ours that no contact owns any more (duplicates found while adopting).
dialer_orphans = Table(
    "dialer_orphans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("destination", String(32), nullable=False),
    Column("list_id", String(64), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("external_id", String(64)),
    Column("reason", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("destination", "list_id", "record_id", name="uq_dialer_orphans_key"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("modstamp", UTCDateTime()),
    Column("last_id", String(32)),
    Column("deleted_until", UTCDateTime()),
    Column("reconciled_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
)

list_state = Table(
    "list_state",
    metadata,
    Column("destination", String(32), primary_key=True),
    Column("list_id", String(64), primary_key=True),
    Column("scanned_at", UTCDateTime()),
    Column("unique_identifier_type", String(32)),
    # Records of other providers the list held at its last scan (NULL: not known yet).
    Column("others_count", Integer),
)


runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # running | ok | failed
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("window_start", UTCDateTime()),
    Column("window_end", UTCDateTime()),
    *(Column(name, Integer, nullable=False, default=0) for name in RUN_COUNTERS),
    Column("error", Text),
    # config (a setting or credential must change) | transient | error; NULL when it went well
    Column("error_kind", String(16)),
    Column("host", String(128)),
    Column("pid", Integer),
)

# Per target: the fingerprint of everything that shaped the payloads its rows hold (the mapping,
# its settings, the destination's rendering), and the inputs it was made of, so a change can be
# named. A different fingerprint at the next pull re-renders every row (dialsync.remap).
target_fingerprints = Table(
    "target_fingerprints",
    metadata,
    Column("destination", String(32), primary_key=True),
    Column("list_id", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("inputs", Text, nullable=False),  # JSON: input name -> value or digest
    Column("recorded_at", UTCDateTime(), nullable=False),
)

# One row per alert (and subject: a destination, a list). ``firing`` is what the last
# evaluation found; ``notified`` what the webhook last acknowledged. They differ while a
# message is owed: the claim columns let one process send it, whichever process evaluated.
alert_state = Table(
    "alert_state",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("alert", String(32), nullable=False),
    Column("destination", String(100)),
    Column("firing", Integer, nullable=False, default=0),
    Column("since", UTCDateTime(), nullable=False),  # when ``firing`` took its value
    Column("detail", Text),  # JSON: text, contact_ids, values; no phones or names
    Column("notified", String(16)),  # firing | resolved | NULL (never sent)
    Column("notified_at", UTCDateTime()),
    Column("attempts", Integer, nullable=False, default=0),  # failed deliveries in a row
    Column("next_attempt_at", UTCDateTime()),
    Column("claimed_until", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
)
