"""Change-to-dialer latency with the stream on (Change Data Capture over the Pub/Sub API).

    .venv/bin/python bench/bench_stream.py                 # 200 updates + 100 opt-outs
    .venv/bin/python bench/bench_stream.py --updates 400 --opt-outs 200 --td-latency 0.05

The sandboxes (Salesforce, its Pub/Sub API over real gRPC/TLS, Talkdesk) run in this process;
the stream runs as `dialsync run` runs it (a thread, pushing in-process). Each change is made in
the Salesforce sandbox at a random moment; its latency ends when the Talkdesk list shows it (a
watcher reads the list every 10 ms). Opt-outs (DoNotCall set: the record must leave the list)
are measured apart from ordinary updates. Target: p95 <= 3 s for both.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, table
from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.pubsub import PubSubSandbox
from dialsync.settings import StreamSettings
from dialsync.stream.service import StreamMetrics, run_stream
from dialsync.wiring import build_engine, build_store

TARGET_P95 = 3.0


def person(n: int) -> dict[str, object]:
    return {
        "FirstName": f"First{n}",
        "LastName": f"Last{n}",
        "MobilePhone": f"+1 415 555 {n:04d}",
        "MailingCountry": "United States",
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--opt-outs", type=int, default=100)
    parser.add_argument("--td-latency", type=float, default=0.05, help="per dialer call, s")
    parser.add_argument("--sf-latency", type=float, default=0.05, help="per Salesforce call, s")
    parser.add_argument("--gap", type=float, default=0.05, help="mean pause between changes, s")
    parser.add_argument(
        "--no-target", action="store_true", help="exit 0 whatever p95 is (a CI smoke run)"
    )
    args = parser.parse_args()
    rng = random.Random(7)
    total = args.updates + args.opt_outs
    with tempfile.TemporaryDirectory(prefix="dialsync-bench-stream-") as tmp:
        box = Sandboxes(
            Path(tmp) / "box",
            salesforce={"latency": args.sf_latency},
            talkdesk={"latency": args.td_latency},
        ).start()
        pubsub = PubSubSandbox(box.salesforce, keepalive_seconds=1.0).start()
        try:
            sf = box.salesforce
            ids = sf.insert_many([person(n) for n in range(total)])
            settings = box.settings(
                f"sqlite:///{Path(tmp) / 'state.db'}",
                stream=StreamSettings(enabled=True, pubsub_endpoint=pubsub.endpoint),
            )
            store = build_store(settings)
            engine = build_engine(settings, store)
            engine.sync()  # the initial load: every contact listed
            stop = threading.Event()
            observed = StreamMetrics()
            thread = threading.Thread(
                target=run_stream,
                args=(settings, engine, stop),
                kwargs={"database": store.engine, "push": True, "metrics": observed},
            )
            thread.start()
            if not observed.ready.wait(60):  # subscribed, confirmed and caught up
                raise SystemExit("the stream did not subscribe within 60 s")
            results = measure(box, ids, args, rng)
            stop.set()
            thread.join(timeout=30)
            engine.close()
        finally:
            pubsub.stop()
            box.stop()
    report(results, args)


def measure(
    box: Sandboxes, ids: list[str], args: argparse.Namespace, rng: random.Random
) -> dict[str, list[float]]:
    """Make the changes; return latencies (seconds) by kind."""
    plan = ["update"] * args.updates + ["opt-out"] * args.opt_outs
    rng.shuffle(plan)
    waiting: dict[str, tuple[str, str, float]] = {}  # id -> (kind, expected name, made at)
    done: dict[str, list[float]] = {"update": [], "opt-out": []}
    lock = threading.Lock()
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            records = {r["external_id"]: r for r in box.talkdesk.records(box.list_id)}
            now = time.monotonic()
            with lock:
                for cid, (kind, name, made) in list(waiting.items()):
                    record = records.get(cid)
                    seen = (
                        record is None
                        if kind == "opt-out"
                        else (record is not None and record.get("first_name") == name)
                    )
                    if seen:
                        done[kind].append(now - made)
                        del waiting[cid]
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    for n, (cid, kind) in enumerate(zip(ids, plan, strict=False)):
        time.sleep(rng.expovariate(1 / args.gap))
        name = f"Changed{n}"
        with lock:
            waiting[cid] = (kind, name, time.monotonic())
        if kind == "opt-out":
            box.salesforce.update(cid, {"DoNotCall": True})
        else:
            box.salesforce.update(cid, {"FirstName": name})
    deadline = time.monotonic() + 120
    while waiting and time.monotonic() < deadline:
        time.sleep(0.1)
    finished.set()
    watcher.join(timeout=5)
    if waiting:
        print(f"WARNING: {len(waiting)} changes never reached the list", file=sys.stderr)
    return done


def report(results: dict[str, list[float]], args: argparse.Namespace) -> None:
    rows = []
    ok = True
    for kind, values in results.items():
        p50, p95 = statistics.median(values), percentile(values, 0.95)
        ok = ok and p95 <= TARGET_P95
        rows.append(
            (
                kind,
                str(len(values)),
                f"{p50:.2f} s",
                f"{p95:.2f} s",
                f"{max(values):.2f} s",
                "yes" if p95 <= TARGET_P95 else "NO",
            )
        )
    print(f"Stream latency, change in Salesforce -> visible in the Talkdesk list ({machine()})")
    print(
        f"dialer latency {args.td_latency * 1000:.0f} ms/call, Salesforce "
        f"{args.sf_latency * 1000:.0f} ms/call, a change every {args.gap * 1000:.0f} ms on average"
    )
    print()
    print(table(rows, ("changes", "n", "p50", "p95", "max", f"p95 <= {TARGET_P95:.0f} s")))
    sys.exit(0 if ok or args.no_target else 1)


if __name__ == "__main__":
    main()
