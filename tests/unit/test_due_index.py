"""The push's hot queries (how many rows are due, which to claim) run once per batch: on a
large list they must be answered by the due index, never by reading every row of the list.

SQLite's plan is the one at risk (dialsync never runs ANALYZE): a status test written as an OR
of two conditions made it pick an index on (destination, list_id) only and scan the list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from dialsync.store.store import open_store


def plans(url: str, work: Any) -> list[str]:
    """The SQLite query plans of the SELECTs that ``work(store)`` runs."""
    store = open_store(url)
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "sync_records" in statement:
            seen.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", capture)
    work(store)
    event.remove(store.engine, "before_cursor_execute", capture)
    out = []
    with store.engine.connect() as conn:
        for statement, params in seen:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
            out.append(" | ".join(str(r[-1]) for r in rows))
    store.engine.dispose()
    return out


def test_due_count_and_claim_use_the_due_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"

    def work(store: Any) -> None:
        store.target("talkdesk", "L").count_due()
        store.target("talkdesk", "L").claim("create", 100, 60.0)

    found = plans(url, work)
    assert len(found) >= 2, found
    for plan in found:
        if "sync_records" not in plan:
            continue
        assert "ix_sync_records_due" in plan, plan
    with open_store(url).engine.connect() as conn:  # the index the plans name exists
        names = conn.execute(text("SELECT name FROM sqlite_master WHERE type='index'")).scalars()
        assert "ix_sync_records_due" in set(names)


def test_unsettled_count_searches_by_status_and_by_inflight(tmp_path: Path) -> None:
    """Counted after every run: one OR of the two conditions made SQLite search the in-flight
    index by list alone, reading every row of the list."""
    found = plans(
        f"sqlite:///{tmp_path / 'state.db'}",
        lambda store: store.target("talkdesk", "L").count_unsettled(),
    )
    assert len(found) == 1, found
    (plan,) = found
    assert "ix_sync_records_due (destination=? AND list_id=? AND status=?)" in plan, plan
    assert "ix_sync_records_inflight (destination=? AND list_id=? AND inflight=?)" in plan, plan
    assert "SCAN sync_records" not in plan, plan
