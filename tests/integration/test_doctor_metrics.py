"""`dialsync doctor` against healthy and broken set-ups, and the worker's /metrics endpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dialsync.sandbox.harness import Sandboxes
from tests.integration.helpers import ours, person
from tests.integration.service import free_port, processes, wait_until
from tests.integration.test_cli import cli


def doctor(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    result = cli(["doctor", "--json", *args], env, cwd)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    return result.returncode, checks


def test_doctor_passes_a_healthy_setup(sandboxes: Sandboxes, tmp_path: Path) -> None:
    box = sandboxes
    prospects = box.talkdesk.create_list("Prospects", "PHONE_NUMBER")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        f"[routing]\nfield = 'OwnerId'\n[routing.lists]\n{box.salesforce.default_owner_id} = "
        f"'{prospects}'\n"
    )
    box.salesforce.insert_many([person(i) for i in range(3)])
    env = {**box.env(), "DIALSYNC_MAPPING__FILE": str(mapping)}
    assert cli(["sync"], env, tmp_path).returncode == 0
    code, checks = doctor(env, tmp_path)
    assert code == 0, checks
    assert {name: c["status"] for name, c in checks.items()} == {
        "settings": "ok",
        "mapping file": "ok",
        "salesforce auth": "ok",
        "salesforce API usage": "ok",
        "mapping fields": "ok",
        "talkdesk auth": "ok",
        "talkdesk list Outbound": "ok",
        "talkdesk list Prospects": "ok",
        "database": "ok",
        "broker": "ok",
        "stream": "ok",  # off: nothing more to check
    }
    assert (
        "unique by PHONE_NUMBER; 3 of them ours, no duplicates"
        in checks["talkdesk list Prospects"]["detail"]
    )
    assert "requests in the last 24 h" in checks["salesforce API usage"]["detail"]
    human = cli(["doctor"], env, tmp_path)
    assert human.stdout.splitlines()[-1] == "all checks passed"
    assert "[ ok ] talkdesk list Outbound" in human.stdout


def test_doctor_names_each_failure_and_its_fix(sandboxes: Sandboxes, tmp_path: Path) -> None:
    box = sandboxes
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        "[routing]\nfield = 'Account.Type'\n[routing.lists]\nProspect = 'no-such-list'\n"
    )
    # Two records of ours for one contact: someone uploaded a copy.
    copy = {
        "first_name": "A",
        "last_name": "B",
        "phone_numbers": [{"phone_number": "+14155550101", "phone_type": "MOBILE"}],
        "external_provider": "salesforce",
        "external_id": "0035e00000AbCdEAAZ",
    }
    box.talkdesk.add_record(box.list_id, copy)
    box.talkdesk.add_record(box.list_id, copy)
    env = {
        **box.env(),
        "DIALSYNC_MAPPING__FILE": str(mapping),
        "DIALSYNC_SALESFORCE__CLIENT_SECRET": "wrong-secret",
    }
    code, checks = doctor(env, tmp_path)
    assert code == 1
    auth = checks["salesforce auth"]
    assert auth["status"] == "fail" and "invalid_client" in auth["detail"]
    assert "CLIENT_SECRET" in auth["fix"] and "wrong-secret" not in json.dumps(checks)
    missing = checks["talkdesk list no-such-list"]
    assert missing["status"] == "fail" and "create the list in Talkdesk" in missing["fix"]
    twice = checks["talkdesk list Outbound"]
    assert twice["status"] == "warn" and "1 contact with more than one record" in twice["detail"]
    assert checks["talkdesk auth"]["status"] == "ok"  # the checks went on after a failure
    human = cli(["doctor"], env, tmp_path).stdout
    assert "[FAIL] salesforce auth" in human and "fix: check DIALSYNC_SALESFORCE__" in human
    assert human.splitlines()[-1] == "2 failed, 1 warning"


@pytest.mark.parametrize(
    ("change", "check", "named"),
    [
        ({"DIALSYNC_SYNC__INTERVAL_SECONDS": "often"}, "settings", "INTERVAL_SECONDS"),
        ({"DIALSYNC_TALKDESK__CLIENT_ID": ""}, "dialer settings", "TALKDESK__CLIENT_ID"),
        ({"DIALSYNC_TALKDESK__API_URL": "http://127.0.0.1:9"}, None, "API_URL"),
        ({"DIALSYNC_BROKER_URL": "redis://127.0.0.1:9/0"}, "broker", "DIALSYNC_BROKER_URL"),
    ],
)
def test_doctor_fails_on_broken_settings(
    sandboxes: Sandboxes,
    tmp_path: Path,
    change: dict[str, str],
    check: str | None,
    named: str,
) -> None:
    env = {**sandboxes.env(), "DIALSYNC_TALKDESK__MAX_ATTEMPTS": "1", **change}
    code, checks = doctor(env, tmp_path, "--no-scan")
    assert code == 1
    failed = [c for c in checks.values() if c["status"] == "fail"]
    assert len(failed) == 1, failed
    if check is not None:
        assert failed[0]["name"] == check
    assert named in failed[0]["detail"] + failed[0]["fix"]


def test_doctor_asks_the_workers(sandboxes: Sandboxes, tmp_path: Path, broker_url: str) -> None:
    env = {**sandboxes.env(), "DIALSYNC_BROKER_URL": broker_url}
    code, checks = doctor(env, tmp_path, "--no-scan")
    assert code == 0
    assert checks["broker"]["status"] == "warn"
    assert checks["broker"]["fix"] == "start `dialsync worker`"


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.redis
@pytest.mark.slow
def test_the_worker_serves_metrics(tmp_path: Path, broker_url: str) -> None:
    port = free_port()
    with Sandboxes(tmp_path / "box") as box:
        env = {
            **box.env(),
            "DIALSYNC_BROKER_URL": broker_url,
            "DIALSYNC_SYNC__INTERVAL_SECONDS": "2",
            "DIALSYNC_METRICS__PORT": str(port),
            "DIALSYNC_METRICS__ADDRESS": "127.0.0.1",
            "DIALSYNC_METRICS__DIR": str(tmp_path / "metrics"),
            # 30 records in a list of at most 36: past Talkdesk's 80% warning
            "DIALSYNC_TALKDESK__LIST_CAPACITY": "36",
        }
        with processes(env, tmp_path) as procs:
            ids = box.salesforce.insert_many([person(i) for i in range(30)])
            box.talkdesk.fail_next(1, 429, retry_after=0.1)
            procs.start("worker", "-c", "2", name="worker")
            procs.start("beat", name="beat")
            wait_until(lambda: set(ours(box)) == set(ids), what="the initial load")
            lid = box.list_id
            where = {"destination": "talkdesk", "list": lid}

            def records(samples: dict[Any, float], result: str) -> float:
                labels = {"destination": "talkdesk", "list": lid, "op": "create"}
                return value(samples, "dialsync_records_total", result=result, **labels)

            def settled() -> bool:
                try:
                    samples = scrape(port)
                except httpx.HTTPError:
                    return False
                backlog = value(samples, "dialsync_backlog_rows", destination="talkdesk", list=lid)
                fill = value(samples, "dialsync_record_list_fill_ratio", **where)
                return records(samples, "ok") == 30 and backlog == 0 and fill == 30 / 36

            wait_until(settled, what="the metrics of the initial load")
            samples = scrape(port)
            http = "dialsync_http_requests_total"
            assert value(samples, "dialsync_state_db_up") == 1
            synced = {"destination": "talkdesk", "list": lid, "status": "synced"}
            assert value(samples, "dialsync_sync_records", **synced) == 30
            assert value(samples, "dialsync_rate_limited_total", system="talkdesk") == 1
            assert value(samples, http, system="talkdesk", status="429") == 1
            assert value(samples, http, system="talkdesk", status="200") > 0
            assert value(samples, http, system="salesforce", status="200") > 0
            used = value(samples, "dialsync_salesforce_api_requests_used")
            assert 0 < used <= box.salesforce.api_usage
            assert value(samples, "dialsync_salesforce_api_requests_limit") == 1_000_000
            assert value(samples, "dialsync_runs_total", kind="pull", status="ok") >= 1
            assert value(samples, "dialsync_last_success_timestamp_seconds", kind="pull") > 0
            assert ("dialsync_sync_lag_seconds", ()) in samples
            latency = "dialsync_dialer_request_duration_seconds_count"
            assert value(samples, latency, system="talkdesk") >= 2  # the 429 and the creates
            assert value(samples, "dialsync_sync_interval_seconds") == 2
            assert value(samples, "dialsync_opt_out_threshold_seconds") == 900
            wait_until(
                lambda: "holds 30 of at most 36 records (83%); past 80%" in procs.log("worker"),
                what="the capacity warning, as a run opens the list",
            )
        assert "metrics: serving" in procs.log("worker")
