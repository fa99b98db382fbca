"""Run both sandboxes in their own process: `python -m dialsync.sandbox.serve --help`.

For benchmarks and manual trials, so that what is measured (a `dialsync` process) does not share
memory or CPU time with the fakes. Writes the DIALSYNC_* variables that point at them to a JSON
file, then serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dialsync.sandbox import seed
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
    # Stamps spread over the last --spread-days (oldest first), the newest --stamp-age seconds
    # ago, as in an org whose contacts changed over time: a lookback then re-reads only the
    # last few minutes of changes, not the whole org.
    chunk = 1000
    chunks = max(1, -(-args.contacts // chunk))
    newest = datetime.now(UTC) - timedelta(seconds=args.stamp_age)
    spread = timedelta(days=args.spread_days)
    for k, start in enumerate(range(0, args.contacts, chunk)):
        count = min(chunk, args.contacts - start)
        rows = seed.contacts(count, seed=args.seed + start)
        for i, row in enumerate(rows):
            row["Email"] = f"contact{start + i}@example.com"
        stamp = newest - spread * (chunks - 1 - k) / chunks
        box.salesforce.insert_many(rows, stamp=stamp)
    env = box.env(args.database_url)
    env["SANDBOX_SALESFORCE_URL"] = box.salesforce.url
    env["SANDBOX_TALKDESK_URL"] = box.talkdesk.url
    env["SANDBOX_LIST_ID"] = box.list_id
    tmp = args.env_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(env, indent=2))
    tmp.replace(args.env_file)  # readers see the whole file or none
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    box.stop()


if __name__ == "__main__":
    main()
