"""deploy/prometheus and deploy/grafana: the alert rules pass `promtool test rules`, and every
metric they (and the dashboard) query is one dialsync serves."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
METRICS_SOURCE = (ROOT / "src" / "dialsync" / "metrics.py").read_text()
_NAME = re.compile(r"\bdialsync_[a-z0-9_]+")
# What prometheus-client adds to a histogram's name.
_SUFFIXES = ("_bucket", "_sum", "_count")


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((GRAFANA / "dashboards" / "dialsync.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def _served(name: str) -> bool:
    candidates = [name] + [name[: -len(s)] for s in _SUFFIXES if name.endswith(s)]
    return any(f'"{c}"' in METRICS_SOURCE for c in candidates)


def test_promtool_rule_tests_pass() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("DIALSYNC_TEST_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is required (Debian: apt-get install prometheus)")
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    check = subprocess.run(
        [promtool, "check", "rules", "alerts.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    result = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_has_a_unit_test() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for t in tests for case in t.get("alert_rule_test", [])}
    firing = {
        case["alertname"]
        for t in tests
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    names = {rule["alert"] for rule in _rules()}
    assert names == tested == firing  # each rule is seen firing at least once


def test_the_rules_cover_the_webhook_alerts() -> None:
    from dialsync.alerts.conditions import ALERTS

    names = {rule["alert"] for rule in _rules()}
    camel = {"Dialsync" + "".join(part.title() for part in a.split("_")) for a in ALERTS}
    assert camel <= names


def test_rules_and_dashboard_query_only_served_metrics() -> None:
    exprs = [rule["expr"] for rule in _rules()] + _dashboard_exprs()
    used = {name for expr in exprs for name in _NAME.findall(expr)}
    assert len(used) >= 10
    missing = sorted(name for name in used if not _served(name))
    assert missing == []


def test_the_scrape_config_loads_the_rules() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["dialsync"]["dns_sd_configs"][0]["port"] == 9808  # DIALSYNC_METRICS__PORT


def test_the_monitoring_profile_mounts_what_it_needs() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    prom, grafana = services["prometheus"], services["grafana"]
    assert prom["profiles"] == grafana["profiles"] == ["monitoring"]
    for svc in (prom, grafana):
        for volume in svc["volumes"]:
            host = volume.split(":")[0]
            if host.startswith("./"):
                assert (ROOT / host).exists(), host
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = provisioned["datasources"][0]["uid"]
    dashboard = json.loads((GRAFANA / "dashboards" / "dialsync.json").read_text())
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {uid}
