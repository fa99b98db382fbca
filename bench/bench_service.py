"""Benchmarks 5 and 6: the Celery service (real Redis, PostgreSQL, worker and beat processes).

    .venv/bin/python bench/bench_service.py                       # defaults below
    .venv/bin/python bench/bench_service.py --interval 10 --changes 20 --scale-contacts 20000

5. change-to-dialer latency with beat interval I: random edits in the sandbox org, each timed
   until the sandbox dialer shows it; p50 and p95.
6. scale-out: 1, 2 and 4 worker processes (one task each) loading N contacts at 50 ms per
   dialer call, with the global rate limit off and on; the sandbox counts the most requests it
   saw in any one-second window.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Sandbox, machine, sandbox, table

PG_ADMIN = os.environ.get(
    "DIALSYNC_BENCH_POSTGRES_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PG_BENCH = PG_ADMIN.rsplit("/", 1)[0] + "/dialsync_bench"
REDIS = os.environ.get("DIALSYNC_BENCH_REDIS", "redis://127.0.0.1:6379/14")


def fresh_database() -> str:
    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS dialsync_bench WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE dialsync_bench"))
    engine.dispose()
    redis.Redis.from_url(REDIS).flushdb()
    return PG_BENCH


@contextmanager
def service(box: Sandbox, workers: int, interval: float, extra: dict[str, str]) -> Iterator[None]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DIALSYNC_")}
    env = {
        **base,
        **box.env,
        "DIALSYNC_DATABASE_URL": box.env["DIALSYNC_DATABASE_URL"],
        "DIALSYNC_BROKER_URL": REDIS,
        "DIALSYNC_SYNC__INTERVAL_SECONDS": str(int(interval)),
        "DIALSYNC_SYNC__PUSH_PARALLELISM": str(max(workers, 1)),
        "DIALSYNC_LOG_LEVEL": "WARNING",
        "DIALSYNC_METRICS__PORT": "",  # several workers on this host: none serves /metrics
        **extra,
    }
    cli = [sys.executable, "-m", "dialsync.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    procs = [
        subprocess.Popen(
            [*cli, "worker", "-c", "1"],
            env=env,
            cwd=box.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(workers)
    ]
    procs.append(
        subprocess.Popen(
            [*cli, "beat"],
            env=env,
            cwd=box.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    )
    try:
        yield
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def ours(box: Sandbox) -> dict[str, dict[str, object]]:
    return {
        str(r["external_id"]): r
        for r in box.records()
        if r.get("external_provider") == "salesforce"
    }


def callable_count(box: Sandbox) -> int:
    from datetime import UTC, datetime

    from dialsync.mapping import MappingConfig, map_contact
    from dialsync.models import DialerRecord, SourceContact

    config = MappingConfig(instance_url=box.salesforce)
    return sum(
        isinstance(
            map_contact(
                SourceContact(id=c["Id"], system_modstamp=datetime.now(UTC), fields=c), config
            ),
            DialerRecord,
        )
        for c in box.contacts()
    )


def wait(check: object, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.25)
    raise TimeoutError("did not converge")


def latency(contacts: int, interval: float, changes: int) -> list[float]:
    with sandbox(contacts, td_latency=0.05, sf_latency=0.1, database_url=fresh_database()) as box:
        expected = callable_count(box)
        with service(box, 2, interval, {}):
            wait(lambda: len(ours(box)) >= expected, 600)
            candidates = list(ours(box))
            rng = random.Random(9)
            made: dict[str, tuple[str, float]] = {}
            seen: dict[str, float] = {}
            stop = threading.Event()

            def poll() -> None:
                while not stop.is_set():
                    now = time.monotonic()
                    records = ours(box)
                    for cid, (marker, _) in list(made.items()):
                        if cid not in seen and records.get(cid, {}).get("last_name") == marker:
                            seen[cid] = now
                    time.sleep(0.2)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            for k, cid in enumerate(rng.sample(candidates, changes)):
                time.sleep(rng.uniform(0, interval))
                marker = f"Latency{k}"
                box.update(cid, {"LastName": marker})
                made[cid] = (marker, time.monotonic())
            wait(lambda: len(seen) == len(made), interval * 4 + 60)
            stop.set()
    return sorted(seen[cid] - at for cid, (_, at) in made.items())


def scale(contacts: int, workers: int, limit: float | None) -> tuple[float, int, int]:
    with sandbox(contacts, td_latency=0.05, sf_latency=0.1, database_url=fresh_database()) as box:
        expected = callable_count(box)
        extra = {"DIALSYNC_TALKDESK__MAX_REQUESTS_PER_SECOND": str(limit)} if limit else {}
        with service(box, workers, 2, extra):
            seconds = wait(lambda: len(ours(box)) >= expected, 1200)
        stats = box.td_stats()
    return seconds, int(stats["max_requests_in_any_second"]), int(stats["writes"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--latency-contacts", type=int, default=2_000)
    parser.add_argument("--scale-contacts", type=int, default=20_000)
    parser.add_argument("--limit", type=float, default=20.0, help="requests/s when the limit is on")
    args = parser.parse_args()
    rows = []
    lat = latency(args.latency_contacts, args.interval, args.changes)
    p50 = statistics.median(lat)
    p95 = lat[min(len(lat) - 1, math.ceil(0.95 * len(lat)) - 1)]
    rows.append(
        (
            "5. change-to-dialer latency",
            f"interval {args.interval:.0f} s, {args.changes} changes",
            f"p50 {p50:.1f} s, p95 {p95:.1f} s",
            f"target p95 <= {args.interval + 5:.0f} s",
        )
    )
    for limit in (None, args.limit):
        for workers in (1, 2, 4):
            seconds, peak, writes = scale(args.scale_contacts, workers, limit)
            rows.append(
                (
                    f"6. scale-out, limit {'off' if limit is None else f'{limit:.0f}/s'}",
                    f"{workers} worker process(es), {args.scale_contacts:,} contacts",
                    f"{seconds:.1f} s to converge ({args.scale_contacts / seconds:,.0f}/s)",
                    f"max {peak} requests in any second; {writes} writes",
                )
            )
    print(f"machine: {machine()}; dialer latency 50 ms, Salesforce 100 ms; PostgreSQL, Redis")
    print(table(rows, ("benchmark", "setup", "result", "notes")))
    print(
        f"\nreproduce: .venv/bin/python bench/bench_service.py --interval {args.interval:.0f} "
        f"--changes {args.changes} --latency-contacts {args.latency_contacts} "
        f"--scale-contacts {args.scale_contacts} --limit {args.limit:.0f}"
    )


if __name__ == "__main__":
    main()
