"""Metrics everywhere (issue 11, item 11): `dialsync run` serves the worker's /metrics, two
workers on one host get their own ports and names, and the systemd units do what they say."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import httpx
import pytest

from dialsync.cli import main
from dialsync.sandbox.harness import Sandboxes
from tests.integration.helpers import ours, person
from tests.integration.service import free_port, processes, wait_until
from tests.integration.test_doctor_metrics import scrape, value

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def test_run_serves_the_same_metrics_as_a_worker(sandboxes: Sandboxes, tmp_path: Path) -> None:
    box = sandboxes
    ids = box.salesforce.insert_many([person(i) for i in range(12)])
    port = free_port()
    env = {
        **box.env(),
        "DIALSYNC_SYNC__INTERVAL_SECONDS": "1",
        "DIALSYNC_METRICS__PORT": str(port),
        "DIALSYNC_METRICS__ADDRESS": "127.0.0.1",
    }
    with processes(env, tmp_path) as procs:
        procs.start("run", name="run")
        wait_until(lambda: set(ours(box)) == set(ids), what="the first cycle")
        lid = box.list_id

        def counted() -> bool:
            try:
                samples = scrape(port)
            except httpx.HTTPError:
                return False
            return value(samples, "dialsync_runs_total", kind="sync", status="ok") >= 1

        wait_until(counted, what="the run's metrics")
        samples = scrape(port)
        created = {"destination": "talkdesk", "list": lid, "op": "create", "result": "ok"}
        assert value(samples, "dialsync_records_total", **created) == 12
        assert (
            value(
                samples, "dialsync_sync_records", status="synced", destination="talkdesk", list=lid
            )
            == 12
        )
        assert value(samples, "dialsync_http_requests_total", system="salesforce", status="200") > 0
        assert value(samples, "dialsync_state_db_up") == 1
        # A second `run` (or a worker) on this host cannot take the port: exit 2, naming it.
        second = procs.run("run", "--cycles", "1")
        assert second.returncode == 2, second.stderr
        assert "DIALSYNC_METRICS__PORT" in second.stderr
        assert "Traceback" not in second.stderr
    assert "metrics: serving" in procs.log("run")


@pytest.mark.slow
@pytest.mark.redis
def test_two_workers_on_one_host_get_their_own_port_and_name(
    sandboxes: Sandboxes, tmp_path: Path, broker_url: str
) -> None:
    port, other = free_port(), free_port()
    env = {
        **sandboxes.env(),
        "DIALSYNC_BROKER_URL": broker_url,
        "DIALSYNC_METRICS__PORT": str(port),
        "DIALSYNC_METRICS__ADDRESS": "127.0.0.1",
        "DIALSYNC_METRICS__DIR": str(tmp_path / "metrics"),
    }
    with processes(env, tmp_path) as procs:
        assert procs.run("db", "upgrade").returncode == 0
        procs.start("worker", "-c", "1", "-n", "first", name="first")
        wait_until(
            lambda: "first@" in procs.log("first") and "ready" in procs.log("first"),
            what="the first worker",
        )
        clash = procs.run("worker", "-c", "1", "-n", "second", timeout=60)
        assert clash.returncode == 2
        assert f"127.0.0.1:{port}" in clash.stderr and "--metrics-port" in clash.stderr
        procs.start(
            "worker", "-c", "1", "-n", "second", "--metrics-port", str(other), name="second"
        )
        wait_until(
            lambda: "second@" in procs.log("second") and "ready" in procs.log("second"),
            what="the second worker",
        )
        for each in (port, other):
            assert value(scrape(each), "dialsync_state_db_up") == 1
        # Each keeps its own samples (a subdirectory per port), neither emptied the other's.
        assert sorted(p.name for p in (tmp_path / "metrics").iterdir()) == sorted(
            [f"port-{port}", f"port-{other}"]
        )
        assert "DuplicateNodenameWarning" not in procs.log("second")


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: section -> key -> values (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, val = line.partition("=")
        assert sep, f"{name}: not a key=value line: {raw!r}"
        current.setdefault(key.strip(), []).append(val.strip())
    return sections


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("dialsync-worker@.service", "worker"),
        ("dialsync-beat.service", "beat"),
        ("dialsync-flower.service", "flower"),
        ("dialsync-stream.service", "stream"),
    ],
)
def test_systemd_units_run_real_commands_and_stop_on_exit_2(name: str, command: str) -> None:
    service = unit(name)["Service"]
    assert unit(name)["Install"]["WantedBy"] == ["multi-user.target"]
    # A configuration error (exit 2) is not retried every RestartSec forever.
    assert service["Restart"] == ["always"]
    assert "2" in service["RestartPreventExitStatus"][0].split()
    for exec_line in service.get("ExecStartPre", []) + service["ExecStart"]:
        argv = shlex.split(exec_line.replace("%i", "9809"))
        assert argv[0] == "/opt/dialsync/.venv/bin/dialsync"
        # Every argument parses as the dialsync command line parses it.
        with main.make_context("dialsync", argv[1:], resilient_parsing=False) as ctx:
            sub = main.get_command(ctx, argv[1])
            assert sub is not None, exec_line
            leaf = sub
            args = argv[2:]
            while isinstance(leaf, click.Group):
                leaf = leaf.get_command(ctx, args[0])  # type: ignore[assignment]
                args = args[1:]
                assert leaf is not None
            parsed = leaf.make_context(argv[1], list(args))
        if argv[1] == command == "worker":
            assert parsed.params["metrics_port"] == 9809
            assert parsed.params["name"] == "worker-9809"
    assert service["ExecStart"][0].split()[1] == command


def test_migrations_run_once_and_a_failure_does_not_loop() -> None:
    migrate = unit("dialsync-migrate.service")["Service"]
    assert migrate["Type"] == ["oneshot"] and "Restart" not in migrate
    assert migrate["ExecStart"] == ["/opt/dialsync/.venv/bin/dialsync db upgrade"]
    for name in ("dialsync-worker@.service", "dialsync-beat.service", "dialsync-stream.service"):
        sections = unit(name)
        assert "ExecStartPre" not in sections["Service"]  # it would restart in a loop
        assert "dialsync-migrate.service" in sections["Unit"]["Requires"][0].split()
        assert "dialsync-migrate.service" in sections["Unit"]["After"][0].split()


def test_the_worker_unit_is_a_template_per_port() -> None:
    text = (UNITS / "dialsync-worker@.service").read_text()
    assert "systemctl enable --now dialsync-worker@9808 dialsync-worker@9809" in text
    readme = (UNITS.parents[1] / "README.md").read_text()
    assert "dialsync-worker@9808" in readme
