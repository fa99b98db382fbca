"""Run both sandboxes in their own process: `python -m dialsync.sandbox.serve --help`.

For benchmarks, so that what is measured (a `dialsync` process) does not share memory or CPU
time with the fakes (`dialsync sandbox` is the operator's door to the same sandboxes). Writes
the DIALSYNC_* variables that point at them to a JSON file, then serves until SIGTERM or
SIGINT.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dialsync.sandbox import seed as seed_module
from dialsync.sandbox.harness import Sandboxes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--env-file", type=Path, required=True)
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--stamp-age",
        type=float,
        default=3600.0,
        help="seconds in the past the seeded contacts are stamped",
    )
    parser.add_argument(
        "--spread-days",
        type=float,
        default=30.0,
        help="the seeded stamps spread over this many days",
    )
    parser.add_argument("--sf-latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--td-latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--td-max-rps", type=float, default=None)
    parser.add_argument("--unique-type", default="EXTERNAL")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)

    box = Sandboxes(
        args.workdir,
        unique_identifier_type=args.unique_type,
        salesforce={"latency": args.sf_latency},
        talkdesk={"latency": args.td_latency, "max_requests_per_second": args.td_max_rps},
    )
    box.start()
    seed_org(box, args.contacts, seed=args.seed, stamp_age=args.stamp_age, days=args.spread_days)
    env = box.env(args.database_url)
    env["SANDBOX_SALESFORCE_URL"] = box.salesforce.url
    env["SANDBOX_TALKDESK_URL"] = box.talkdesk.url
    env["SANDBOX_LIST_ID"] = box.list_id
    tmp = args.env_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(env, indent=2))
    tmp.replace(args.env_file)  # readers see the whole file or none
    wait_for_stop()
    box.stop()


def seed_org(
    box: Sandboxes, contacts: int, *, seed: int = 42, stamp_age: float = 3600.0, days: float = 30
) -> None:
    """``contacts`` seeded contacts (some DoNotCall, some without a usable phone).

    Stamps spread over the last ``days`` (oldest first), the newest ``stamp_age`` seconds ago,
    as in an org whose contacts changed over time: a lookback then re-reads only the last few
    minutes of changes, not the whole org."""
    chunk = 1000
    chunks = max(1, -(-contacts // chunk))
    newest = datetime.now(UTC) - timedelta(seconds=stamp_age)
    spread = timedelta(days=days)
    for k, start in enumerate(range(0, contacts, chunk)):
        count = min(chunk, contacts - start)
        rows = seed_module.contacts(count, seed=seed + start)
        for i, row in enumerate(rows):
            row["Email"] = f"contact{start + i}@example.com"
        stamp = newest - spread * (chunks - 1 - k) / chunks
        box.salesforce.insert_many(rows, stamp=stamp)


def wait_for_stop() -> None:
    """Until SIGTERM or SIGINT (Ctrl-C)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
