"""Benchmarks 1-4 and 7 of the sync engine, against the sandboxes in their own process.

    .venv/bin/python bench/bench_sync.py                  # 100,000 and 10,000 contacts
    .venv/bin/python bench/bench_sync.py --contacts 20000 --small 5000 --naive 1000

Prints a Markdown table. Latencies are added by the sandboxes per request (defaults: 50 ms per
dialer call, 100 ms per Salesforce request). Each `dialsync sync` runs as its own process, so
its peak RSS is its own (wait4).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, run_dialsync, sandbox, table
from bench.naive import run_naive


def load(n: int, td_latency: float, sf_latency: float) -> dict[str, object]:
    """Initial load, then 1% changed, then a no-op run, all on one state DB."""
    out: dict[str, object] = {}
    with sandbox(n, sf_latency=sf_latency, td_latency=td_latency) as box:
        first = run_dialsync(["sync", "--json"], box.env, box.workdir)
        assert first.returncode == 0, first.stderr[-2000:]
        counts = first.counts()
        td, sf = box.td_stats(), box.sf_stats()
        out["initial"] = (first, counts, td["writes"], sf["requests"])
        # 1% of the contacts change in Salesforce
        contacts = box.contacts()
        changed = random.Random(5).sample(contacts, max(1, n // 100))
        for contact in changed:
            box.update(contact["Id"], {"Title": "Changed for the benchmark"})
        before_td, before_sf = box.td_stats()["writes"], box.sf_stats()["requests"]
        second = run_dialsync(["sync", "--json"], box.env, box.workdir)
        assert second.returncode == 0, second.stderr[-2000:]
        out["incremental"] = (
            second,
            second.counts(),
            box.td_stats()["writes"] - before_td,
            box.sf_stats()["requests"] - before_sf,
            len(changed),
        )
        before_td, before_sf = box.td_stats()["writes"], box.sf_stats()["requests"]
        third = run_dialsync(["sync", "--json"], box.env, box.workdir)
        assert third.returncode == 0, third.stderr[-2000:]
        out["noop"] = (
            third,
            third.counts(),
            box.td_stats()["writes"] - before_td,
            box.sf_stats()["requests"] - before_sf,
        )
    return out


def naive_vs_dialsync(n: int, td_latency: float, sf_latency: float) -> tuple[dict[str, float], ...]:
    with sandbox(n, sf_latency=sf_latency, td_latency=td_latency) as box:
        naive = run_naive(box.env)
    with sandbox(n, sf_latency=sf_latency, td_latency=td_latency) as box:
        ours = run_dialsync(["sync", "--json"], box.env, box.workdir)
        ours_calls = box.td_stats()["writes"]
    return naive, {"seconds": ours.seconds, "dialer_calls": ours_calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000, help="the memory comparison size")
    parser.add_argument("--naive", type=int, default=2_000, help="contacts for the baseline")
    parser.add_argument("--td-latency", type=float, default=0.05)
    parser.add_argument("--sf-latency", type=float, default=0.1)
    args = parser.parse_args()
    n = args.contacts
    big = load(n, args.td_latency, args.sf_latency)
    small = load(args.small, args.td_latency, args.sf_latency)
    first, counts, writes, sf_requests = big["initial"]  # type: ignore[misc]
    to_write = counts["created"] + counts["updated"] + counts["deleted"]
    floor = math.ceil(to_write / 100)
    inc, inc_counts, inc_writes, inc_sf, changed = big["incremental"]  # type: ignore[misc]
    noop, _, noop_writes, noop_sf = big["noop"]  # type: ignore[misc]
    small_first = small["initial"][0]  # type: ignore[index]
    naive, ours = naive_vs_dialsync(args.naive, args.td_latency, args.sf_latency)
    rows = [
        (
            "1. initial load",
            f"{n:,} contacts ({to_write:,} callable)",
            f"{first.seconds:.1f} s, {n / first.seconds:,.0f} contacts/s",
            f"dialer writes {writes} (floor {floor}: {writes / floor:.3f}x); Salesforce requests "
            f"{sf_requests} (ceil(N/2000) = {math.ceil(n / 2000)})",
            f"peak RSS {first.peak_rss_mb:.0f} MB",
        ),
        (
            "2. incremental",
            f"{changed:,} changed (1%)",
            f"{inc.seconds:.1f} s",
            f"dialer writes {inc_writes} (updated {inc_counts['updated']}); Salesforce requests "
            f"{inc_sf}",
            f"peak RSS {inc.peak_rss_mb:.0f} MB",
        ),
        (
            "3. no-op",
            "nothing changed",
            f"{noop.seconds:.1f} s",
            f"dialer writes {noop_writes}; Salesforce requests {noop_sf}",
            f"peak RSS {noop.peak_rss_mb:.0f} MB",
        ),
        (
            "4. memory",
            f"{args.small:,} vs {n:,} contacts",
            f"{small_first.seconds:.1f} s at {args.small:,}",
            f"peak RSS {small_first.peak_rss_mb:.0f} MB vs {first.peak_rss_mb:.0f} MB",
            f"{first.peak_rss_mb / small_first.peak_rss_mb:.2f}x",
        ),
        (
            "7. naive baseline",
            f"{args.naive:,} contacts",
            f"naive {naive['seconds']:.1f} s vs dialsync {ours['seconds']:.1f} s "
            f"({naive['seconds'] / ours['seconds']:.1f}x)",
            f"dialer calls naive {naive['dialer_calls']:.0f} "
            f"vs dialsync {ours['dialer_calls']:.0f} "
            f"({naive['dialer_calls'] / max(1, ours['dialer_calls']):.0f}x fewer)",
            "",
        ),
    ]
    print(f"machine: {machine()}")
    print(
        f"latency: dialer {args.td_latency * 1000:.0f} ms per call, Salesforce "
        f"{args.sf_latency * 1000:.0f} ms per request; state DB SQLite"
    )
    print(table(rows, ("benchmark", "size", "time", "calls", "memory")))
    print(
        f"\nreproduce: .venv/bin/python bench/bench_sync.py --contacts {n} --small {args.small} "
        f"--naive {args.naive} --td-latency {args.td_latency} --sf-latency {args.sf_latency}"
    )


if __name__ == "__main__":
    main()
