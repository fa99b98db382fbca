"""The shipped deployment: docker-compose.yml's structure, and its service commands run as
local processes against the local Redis and PostgreSQL (this machine has no Docker engine)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dialsync.sandbox.harness import Sandboxes
from tests.integration.helpers import ours, person
from tests.integration.service import free_port, processes, wait_until

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def seconds(value: str) -> int:
    match = re.fullmatch(r"(\d+)([sm])", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def test_compose_file_structure() -> None:
    services = {k: v for k, v in compose()["services"].items() if "profiles" not in v}
    assert set(services) == {"redis", "postgres", "migrate", "worker", "beat", "flower"}
    for name in ("redis", "postgres", "worker", "beat", "flower"):
        assert "healthcheck" in services[name], name
    for name in ("worker", "beat", "flower"):
        # unhealthy when the last pull failed for a setting or a credential (the state DB)
        assert "dialsync health" in " ".join(services[name]["healthcheck"]["test"]), name
    assert any("postgres-data" in v for v in services["postgres"]["volumes"])
    assert services["migrate"]["command"] == ["dialsync", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    worker = services["worker"]
    # --scale worker=3 needs no fixed name and no host port
    assert "container_name" not in worker and "ports" not in worker
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    # longer than a push batch (the push task stops taking batches at 60% of 300 s)
    assert seconds(worker["stop_grace_period"]) > 0.6 * 300
    assert services["beat"]["deploy"]["replicas"] == 1
    flower = services["flower"]
    assert flower["ports"] == ["5555:5555"]
    env = flower["environment"]
    # no default: compose refuses to start Flower without credentials
    assert ":?" in env["DIALSYNC_FLOWER__USER"] and ":?" in env["DIALSYNC_FLOWER__PASSWORD"]
    for name in ("migrate", "worker", "beat", "flower"):
        svc = services[name]
        assert svc["image"] == "dialsync:latest" and svc["env_file"] == ".env"
        assert svc["environment"]["DIALSYNC_BROKER_URL"] == "redis://redis:6379/0"
        assert svc["command"][0] == "dialsync"


def test_env_example_and_dockerfile() -> None:
    example = (ROOT / ".env.example").read_text()
    for var in (
        "POSTGRES_PASSWORD",
        "FLOWER_USER",
        "FLOWER_PASSWORD",
        "DIALSYNC_TALKDESK__RECORD_LIST_ID",
        "DIALSYNC_SALESFORCE__CLIENT_ID",
    ):
        assert re.search(rf"^#?\s*{var}=", example, re.M), var
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2  # multi-stage
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")


def local(command: list[str]) -> list[str]:
    assert command[0] == "dialsync"
    return command[1:]


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_compose_commands_run_as_local_processes(
    tmp_path: Path, pg_url: str, broker_url: str
) -> None:
    services = compose()["services"]
    port = free_port()
    with Sandboxes(tmp_path / "box") as box:
        env = {
            **box.env(pg_url),
            "DIALSYNC_BROKER_URL": broker_url,
            "DIALSYNC_SYNC__INTERVAL_SECONDS": "2",
            "DIALSYNC_FLOWER__USER": "ops",
            "DIALSYNC_FLOWER__PASSWORD": "pw-123456",
            "DIALSYNC_FLOWER__PORT": str(port),
            "DIALSYNC_FLOWER__ADDRESS": "127.0.0.1",
        }
        ids = box.salesforce.insert_many([person(i) for i in range(40)])
        with processes(env, tmp_path) as procs:
            migrate = procs.run(*local(services["migrate"]["command"]))
            assert migrate.returncode == 0, migrate.stderr
            procs.start(*local(services["worker"]["command"]), name="worker")
            procs.start(*local(services["beat"]["command"]), name="beat")
            procs.start(*local(services["flower"]["command"]), name="flower")
            wait_until(lambda: set(ours(box)) == set(ids), what="convergence")

            def flower(auth: tuple[str, str] | None) -> int:
                try:
                    return httpx.get(
                        f"http://127.0.0.1:{port}/api/workers", auth=auth, timeout=2
                    ).status_code
                except httpx.HTTPError:
                    return 0

            wait_until(lambda: flower(("ops", "pw-123456")) == 200, what="Flower")
            assert flower(None) == 401
            assert flower(("ops", "wrong")) == 401


def test_flower_refuses_to_start_without_auth(tmp_path: Path) -> None:
    with processes({"DIALSYNC_BROKER_URL": "redis://127.0.0.1:6379/0"}, tmp_path) as procs:
        result = procs.run("flower")
    assert result.returncode == 2
    assert "DIALSYNC_FLOWER__PASSWORD" in result.stderr
