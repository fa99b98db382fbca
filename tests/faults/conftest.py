"""Fixtures of the fault suite: private Redis and PostgreSQL, and the results collector.

The cases marked ``faults`` are long; the default run (``scripts/test``) leaves them out. They
run with ``pytest -m faults``, with ``DIALSYNC_FAULTS=1``, or when tests/faults is named on the
command line. ``DIALSYNC_FAULTS_REPORT=1`` (or a file path) writes every case's figures to
``tests/faults/results.json``; ``python -m tests.faults.report`` turns them into the table.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_PG, REQUIRE_REDIS
from tests.faults.servers import (
    PrivatePostgres,
    PrivateRedis,
    postgres_bindir,
    redis_binary,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"


def _selected(config: pytest.Config) -> bool:
    if os.environ.get("DIALSYNC_FAULTS") == "1":
        return True
    markexpr = str(config.getoption("markexpr", "") or "")
    if "faults" in markexpr and "not faults" not in markexpr:
        return True
    return any("faults" in Path(str(arg).split("::")[0]).parts for arg in config.args)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _selected(config):
        return
    left_out = [item for item in items if item.get_closest_marker("faults") is not None]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item.get_closest_marker("faults") is None]


# -- results ---------------------------------------------------------------------------------
@dataclass
class CaseResult:
    case: str
    fault: str
    injected: str
    cycles: int
    lost: int
    duplicated: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class FaultReport:
    results: list[CaseResult] = field(default_factory=list)

    def record(
        self,
        case: str,
        *,
        fault: str,
        injected: str,
        cycles: int,
        lost: int,
        duplicated: int,
        **details: Any,
    ) -> None:
        self.results.append(CaseResult(case, fault, injected, cycles, lost, duplicated, details))


def _case_order(result: dict[str, Any]) -> tuple[bool, int, str]:
    """1a, 1b, ..., 10b, then S1, S2 (security)."""
    match = re.match(r"(S?)(\d+)(.*)", str(result["case"]))
    if match is None:
        return True, 10**6, str(result["case"])
    return match.group(1) == "S", int(match.group(2)), match.group(3)


@pytest.fixture(scope="session")
def fault_report() -> Iterator[FaultReport]:
    report = FaultReport()
    yield report
    target = os.environ.get("DIALSYNC_FAULTS_REPORT")
    if not target or not report.results:
        return
    path = RESULTS if target == "1" else Path(target)
    # Under pytest-xdist every worker ends its session here: read, merge and write one at a time,
    # or a worker's cases are lost to another's write.
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _merge_results(path, report)


def _merge_results(path: Path, report: FaultReport) -> None:
    previous: dict[str, Any] = {}
    if path.exists():  # a partial run (-k), or another xdist worker: keep their cases
        try:
            previous = {r["case"]: r for r in json.loads(path.read_text())["cases"]}
        except (ValueError, KeyError, TypeError):
            previous = {}
    for result in report.results:
        previous[result.case] = asdict(result)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(
        json.dumps(
            {
                "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
                "cases": sorted(previous.values(), key=_case_order),
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    tmp.replace(path)  # a reader (tests.faults.report) never sees half a file


# -- private services ------------------------------------------------------------------------
@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    binary = redis_binary()
    if binary is None:
        if REQUIRE_REDIS:
            pytest.fail("redis-server is required (DIALSYNC_TEST_REQUIRE_REDIS=1) but absent")
        pytest.skip("redis-server is not installed: cannot start a private Redis")
    server = PrivateRedis(binary).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """One private cluster for the suite: other test runs on the shared server never see it."""
    bindir = postgres_bindir()
    if bindir is None:
        if REQUIRE_PG:
            pytest.fail("initdb/pg_ctl are required (DIALSYNC_TEST_REQUIRE_POSTGRES=1) but absent")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    try:
        cluster = PrivatePostgres(bindir)
        cluster.init()
        cluster.start()
    except (RuntimeError, OSError) as exc:
        if REQUIRE_PG:
            pytest.fail(f"cannot start a private PostgreSQL cluster: {exc}")
        pytest.skip(f"cannot start a private PostgreSQL cluster: {exc}")
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def fault_pg_url(private_postgres: PrivatePostgres) -> str:
    """A fresh, migrated database in the private cluster."""
    return private_postgres.create_database()
