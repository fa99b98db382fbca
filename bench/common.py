"""Shared pieces of the benchmarks: sandboxes in their own process, timed `dialsync` runs."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Sandbox:
    env: dict[str, str]
    workdir: Path

    @property
    def talkdesk(self) -> str:
        return self.env["SANDBOX_TALKDESK_URL"]

    @property
    def salesforce(self) -> str:
        return self.env["SANDBOX_SALESFORCE_URL"]

    def td_stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.talkdesk}/_sandbox/stats", timeout=30).json())

    def sf_stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.salesforce}/_sandbox/stats", verify=False, timeout=30).json())

    def records(self) -> list[dict[str, Any]]:
        url = f"{self.talkdesk}/_sandbox/lists/{self.env['SANDBOX_LIST_ID']}/records"
        return list(httpx.get(url, timeout=120).json()["records"])

    def contacts(self) -> list[dict[str, Any]]:
        return list(
            httpx.get(f"{self.salesforce}/_sandbox/contacts", verify=False, timeout=120).json()
        )

    def update(self, contact_id: str, fields: dict[str, Any]) -> None:
        httpx.patch(
            f"{self.salesforce}/_sandbox/contacts/{contact_id}",
            json=fields,
            verify=False,
            timeout=30,
        ).raise_for_status()


@contextlib.contextmanager
def sandbox(
    contacts: int,
    *,
    sf_latency: float = 0.1,
    td_latency: float = 0.05,
    td_max_rps: float | None = None,
    database_url: str | None = None,
) -> Iterator[Sandbox]:
    with tempfile.TemporaryDirectory(prefix="dialsync-bench-") as tmp:
        work = Path(tmp)
        env_file = work / "env.json"
        cmd = [
            sys.executable,
            "-m",
            "dialsync.sandbox.serve",
            "--workdir",
            str(work / "box"),
            "--env-file",
            str(env_file),
            "--contacts",
            str(contacts),
            "--sf-latency",
            str(sf_latency),
            "--td-latency",
            str(td_latency),
        ]
        if td_max_rps:
            cmd += ["--td-max-rps", str(td_max_rps)]
        if database_url:
            cmd += ["--database-url", database_url]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300
            while not env_file.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox process did not start")
                time.sleep(0.2)
            env = json.loads(env_file.read_text())
            if not database_url:
                env["DIALSYNC_DATABASE_URL"] = f"sqlite:///{work / 'state.db'}"
            yield Sandbox(env, work)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@dataclass
class Timed:
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    returncode: int

    def counts(self) -> dict[str, int]:
        return dict(json.loads(self.stdout.strip().splitlines()[-1]))


def run_dialsync(args: list[str], env: dict[str, str], cwd: Path) -> Timed:
    """Run `dialsync ...`; its wall time and its own peak RSS come from bench/measure.py.

    A child forked from this (large, long-lived) benchmark process would count our pages in
    its peak RSS; measure.py is a small process in between that forks the real one.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith("DIALSYNC_")}
    report = cwd / "measure.json"
    command = [
        sys.executable,
        str(ROOT / "bench" / "measure.py"),
        str(report),
        "--",
        sys.executable,
        "-m",
        "dialsync.cli",
        *args,
    ]
    with (cwd / "out.txt").open("w") as out, (cwd / "err.txt").open("w") as err:
        subprocess.run(command, env={**base, **env}, cwd=cwd, stdout=out, stderr=err, check=False)
    measured = json.loads(report.read_text())
    return Timed(
        measured["seconds"],
        measured["maxrss_kb"] / 1024,
        (cwd / "out.txt").read_text(),
        (cwd / "err.txt").read_text(),
        measured["returncode"],
    )


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
        for r in rows
    ]
    return "\n".join([line, sep, *body])
