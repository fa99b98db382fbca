"""What the compliance history costs a sync: state-database statements and commits per run.

    .venv/bin/python bench/bench_history.py --contacts 5000

Runs an initial load, a 1% change and an opt-out of 1% (their removal) in this process against
the sandboxes (no added latency: the state database is what is measured), counting every SQL
statement and every commit the engine makes, and the history rows written. Run it against a
tree without the history (PYTHONPATH=that/src) for the "before" figures.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, func, select, text

from dialsync.sandbox.harness import Sandboxes
from dialsync.store.locks import writer_lock
from dialsync.wiring import build_engine, build_store


def person(n: int) -> dict[str, Any]:
    return {
        "FirstName": f"First{n}",
        "LastName": f"Last{n}",
        "MobilePhone": f"+1 415 555 {n % 10000:04d}" if n < 10000 else f"+1 212 55{n:05d}",
        "MailingCountry": "United States",
    }


def measured(box: Sandboxes, db_url: str) -> dict[str, float]:
    settings = box.settings(db_url)
    store = build_store(settings)
    engine = build_engine(settings, store)
    counts = {"statements": 0, "commits": 0}

    def statement(*_: Any) -> None:
        counts["statements"] += 1

    def commit(*_: Any) -> None:
        counts["commits"] += 1

    event.listen(store.engine, "before_cursor_execute", statement)
    event.listen(store.engine, "commit", commit)
    started = time.perf_counter()
    try:
        with writer_lock(store.engine, "sync"):
            report = engine.sync()
    finally:
        engine.close()
    seconds = time.perf_counter() - started
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(text("history"))).scalar_one()
    except Exception:  # a tree without the history table
        rows = 0
    return {
        **counts,
        "seconds": seconds,
        "history_rows": rows,
        **{k: v for k, v in report.as_dict().items() if v},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=5000)
    args = parser.parse_args()
    n = args.contacts
    with tempfile.TemporaryDirectory() as tmp, Sandboxes(Path(tmp) / "box") as box:
        db_url = f"sqlite:///{Path(tmp) / 'state.db'}"
        sf = box.salesforce
        ids = sf.insert_many([person(i) for i in range(n)])
        rows = [("initial load", measured(box, db_url))]
        time.sleep(1.1)  # one-second SystemModstamp precision
        rng = random.Random(5)
        for contact in rng.sample(ids, max(1, n // 100)):
            sf.update(contact, {"LastName": "Changed"})
        rows.append(("1% changed", measured(box, db_url)))
        time.sleep(1.1)
        for contact in rng.sample(ids, max(1, n // 100)):
            sf.update(contact, {"DoNotCall": True})
        rows.append(("1% opted out", measured(box, db_url)))
        rows.append(("no-op", measured(box, db_url)))
    print(f"{n:,} contacts, SQLite, one process")
    print("| run | statements | commits | history rows (total) | seconds | counts |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        extra = {k: v for k, v in r.items() if k not in ("statements", "commits", "seconds")}
        history = extra.pop("history_rows")
        print(
            f"| {name} | {r['statements']:.0f} | {r['commits']:.0f} | {history:.0f} |"
            f" {r['seconds']:.2f} | {extra} |"
        )


if __name__ == "__main__":
    main()
