"""Fail fast and say exactly what is wrong (issue 11, items 2, 5 and 7), as an operator sees it:
the command's exit code and its lines on stderr.

2 = the operator must fix a setting or a credential (the line names it); 1 = transient or a bug.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dialsync.sandbox.harness import Sandboxes
from tests.integration.helpers import person
from tests.integration.service import processes
from tests.integration.test_cli import cli

ROOT = Path(__file__).resolve().parents[2]


def config_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("error", "configuration"))]


# -- item 7: exit codes ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        (
            "DIALSYNC_SALESFORCE__CLIENT_SECRET",
            "wrong-secret-value",
            "DIALSYNC_SALESFORCE__CLIENT_SECRET",
        ),
        ("DIALSYNC_TALKDESK__CLIENT_SECRET", "wrong-secret-value", "DIALSYNC_TALKDESK__CLIENT"),
        (
            "DIALSYNC_TALKDESK__RECORD_LIST_ID",
            "00000000-0000-0000-0000-000000000000",
            "DIALSYNC_TALKDESK__RECORD_LIST_ID",
        ),
    ],
)
def test_wrong_credential_or_unknown_list_exits_2_naming_the_setting(
    sandboxes: Sandboxes, tmp_path: Path, variable: str, value: str, named: str
) -> None:
    env = {**sandboxes.env(), variable: value}
    result = cli(["sync"], env, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = config_lines(result.stderr)
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert "Traceback" not in result.stderr and "wrong-secret-value" not in result.stderr


def test_unknown_everbridge_record_type_exits_2_naming_it(tmp_path: Path) -> None:
    with Sandboxes(tmp_path / "box", destinations=("everbridge",)) as box:
        box.salesforce.insert_many([person(i) for i in range(2)])
        env = {**box.env(), "DIALSYNC_EVERBRIDGE__RECORD_TYPE_NAME": "NoSuchType"}
        result = cli(["sync"], env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "DIALSYNC_EVERBRIDGE__RECORD_TYPE_NAME" in result.stderr


def test_invalid_log_level_exits_2_naming_it(sandboxes: Sandboxes, tmp_path: Path) -> None:
    result = cli(["status"], {**sandboxes.env(), "DIALSYNC_LOG_LEVEL": "LOUD"}, tmp_path)
    assert result.returncode == 2
    assert "DIALSYNC_LOG_LEVEL" in result.stderr and "Traceback" not in result.stderr


# An unreachable dialer stays exit 1: test_cli.py::test_unreachable_api_exits_1.


def test_every_setting_problem_is_reported_at_once(sandboxes: Sandboxes, tmp_path: Path) -> None:
    env = {
        **sandboxes.env(),
        "DIALSYNC_SYNC__INTERVAL_SECONDS": "often",
        "DIALSYNC_LOG_LEVEL": "LOUD",
        "DIALSYNC_MAPPING__PRIORITY": "11",
    }
    result = cli(["sync"], env, tmp_path)
    assert result.returncode == 2
    for name in (
        "DIALSYNC_SYNC__INTERVAL_SECONDS",
        "DIALSYNC_LOG_LEVEL",
        "DIALSYNC_MAPPING__PRIORITY",
    ):
        assert name in result.stderr, result.stderr
    env = sandboxes.env()
    del env["DIALSYNC_TALKDESK__RECORD_LIST_ID"]
    env["DIALSYNC_TALKDESK__CLIENT_SECRET"] = "  "
    result = cli(["sync"], env, tmp_path)
    assert result.returncode == 2
    assert "DIALSYNC_TALKDESK__RECORD_LIST_ID" in result.stderr
    assert "DIALSYNC_TALKDESK__CLIENT_SECRET" in result.stderr


def test_misspelled_variable_is_reported_in_env_and_dotenv(
    sandboxes: Sandboxes, tmp_path: Path
) -> None:
    env = {**sandboxes.env(), "DIALSYNC_SYNC__INTERVAL_SECOND": "30"}
    (tmp_path / ".env").write_text("DIALSYNC_TALKDESK__MAX_REQUEST_PER_SECOND=5\n")
    result = cli(["status"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert any(
        "DIALSYNC_SYNC__INTERVAL_SECOND " in w and "DIALSYNC_SYNC__INTERVAL_SECONDS" in w
        for w in warnings
    ), result.stderr
    assert any(
        "DIALSYNC_TALKDESK__MAX_REQUEST_PER_SECOND " in w
        and "DIALSYNC_TALKDESK__MAX_REQUESTS_PER_SECOND" in w
        for w in warnings
    ), result.stderr
    # A typo is often why a setting is missing: both are said, the suggestion first.
    typo = sandboxes.env()
    typo["DIALSYNC_TALKDESK__CLIENT_SECRT"] = typo.pop("DIALSYNC_TALKDESK__CLIENT_SECRET")
    missing = cli(["sync"], typo, tmp_path)
    assert missing.returncode == 2
    first, *rest = missing.stderr.splitlines()
    assert first.startswith("warning: DIALSYNC_TALKDESK__CLIENT_SECRT is not a known setting")
    assert "did you mean DIALSYNC_TALKDESK__CLIENT_SECRET?" in first
    assert any("DIALSYNC_TALKDESK__CLIENT_SECRET is not set" in line for line in rest)
    doctor = cli(["doctor", "--no-scan", "--json"], env, tmp_path)
    assert doctor.returncode == 1
    checks = json.loads(doctor.stdout)["checks"]
    unknown = [c for c in checks if c["name"] == "unknown variable"]
    assert {c["status"] for c in unknown} == {"fail"} and len(unknown) == 2
    assert any("DIALSYNC_SYNC__INTERVAL_SECONDS" in c["fix"] for c in unknown)


# -- item 7: mapping check -----------------------------------------------------------------------
def test_mapping_check_reports_every_problem_of_the_file_at_once(
    sandboxes: Sandboxes, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[phones]\nMobilePhone = "MOBILE"\nPhone = "MOBILE"\nPager__c = "HOME"\n\n'
        '[routing]\nfield = "Acount.Type"\n[routing.lists]\nCustomer = "abc"\n'
    )
    env = sandboxes.env()
    del env["DIALSYNC_TALKDESK__RECORD_LIST_ID"]
    result = cli(["mapping", "check", "--file", str(bad)], env, tmp_path)
    assert result.returncode == 2
    assert "4 problems" in result.stderr, result.stderr
    for expected in (
        "bad.toml:3: phones.Phone: MOBILE is already the type of MobilePhone",
        "bad.toml:4: phones.Pager__c: Contact has no field 'Pager__c'",
        "bad.toml:6: routing: the mapping file routes contacts but names no default list",
        "bad.toml:7: routing.field: Contact has no relationship 'Acount'",
    ):
        assert expected in result.stderr, result.stderr


def test_mapping_check_without_a_file_checks_the_default_mapping(
    sandboxes: Sandboxes, tmp_path: Path
) -> None:
    result = cli(["mapping", "check"], sandboxes.env(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "the default mapping (DIALSYNC_MAPPING__FILE unset): valid" in result.stdout
    assert "every field it names exists in this org's Contact" in result.stdout
    assert "MobilePhone -> MOBILE" in result.stdout


# -- item 5: Flower's password ---------------------------------------------------------------
def env_example_value(name: str) -> str:
    match = re.search(rf"^{name}=(.*)$", (ROOT / ".env.example").read_text(), re.M)
    assert match, name
    return match.group(1).strip()


@pytest.mark.parametrize("password", ["", "   ", "placeholder"])
def test_flower_refuses_blank_and_placeholder_passwords(tmp_path: Path, password: str) -> None:
    if password == "placeholder":
        password = env_example_value("FLOWER_PASSWORD")
    env = {
        "DIALSYNC_BROKER_URL": "redis://127.0.0.1:9/0",
        "DIALSYNC_FLOWER__USER": "ops",
        "DIALSYNC_FLOWER__PASSWORD": password,
        "DIALSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
    }
    with processes(env, tmp_path) as procs:
        result = procs.run("flower", timeout=60)
    assert result.returncode == 2, result.stderr
    assert "DIALSYNC_FLOWER__PASSWORD" in result.stderr
    assert "Traceback" not in result.stderr


# -- item 2: long-running processes check their settings before they start --------------------
@pytest.mark.parametrize("command", ["worker", "beat", "run", "flower"])
def test_service_commands_exit_2_before_starting_when_a_setting_is_missing(
    sandboxes: Sandboxes, tmp_path: Path, command: str
) -> None:
    env = {
        **sandboxes.env(),
        "DIALSYNC_TALKDESK__CLIENT_SECRET": "",
        "DIALSYNC_BROKER_URL": "redis://127.0.0.1:9/0",  # never reached: the check comes first
        "DIALSYNC_FLOWER__USER": "ops",
        "DIALSYNC_FLOWER__PASSWORD": "a-real-password",
    }
    with processes(env, tmp_path) as procs:
        result = procs.run(command, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "DIALSYNC_TALKDESK__CLIENT_SECRET" in result.stderr
    assert "ready" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.postgres
def test_worker_exits_2_when_the_schema_is_behind(
    sandboxes: Sandboxes, tmp_path: Path, pg_url: str
) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from dialsync.store import migrate

    engine = create_engine(pg_url)
    config = migrate._config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    engine.dispose()
    env = {**sandboxes.env(pg_url), "DIALSYNC_BROKER_URL": "redis://127.0.0.1:9/0"}
    with processes(env, tmp_path) as procs:
        result = procs.run("worker", timeout=60)
    assert result.returncode == 2, result.stderr
    assert "dialsync db upgrade" in result.stderr


def test_health_is_unhealthy_after_a_credential_refusal_only(
    sandboxes: Sandboxes, tmp_path: Path
) -> None:
    sandboxes.salesforce.insert_many([person(i) for i in range(3)])
    env = sandboxes.env()
    assert cli(["health"], env, tmp_path).returncode == 0  # nothing ran yet
    assert cli(["sync"], env, tmp_path).returncode == 0
    healthy = cli(["health"], env, tmp_path)
    assert healthy.returncode == 0 and healthy.stdout.startswith("healthy:"), healthy.stdout
    down = {**env, "DIALSYNC_TALKDESK__API_URL": "http://127.0.0.1:9"}
    down["DIALSYNC_TALKDESK__MAX_ATTEMPTS"] = "1"
    assert cli(["sync"], down, tmp_path).returncode == 1
    transient = cli(["health", "--json"], env, tmp_path)
    assert transient.returncode == 0, transient.stdout  # a transient failure is retried
    refused = {**env, "DIALSYNC_TALKDESK__CLIENT_SECRET": "wrong-secret-value"}
    assert cli(["sync"], refused, tmp_path).returncode == 2
    sick = cli(["health"], env, tmp_path)
    assert sick.returncode == 1
    assert sick.stdout.startswith("unhealthy:") and "a setting or credential" in sick.stdout
    assert "wrong-secret-value" not in sick.stdout
    assert cli(["sync"], env, tmp_path).returncode == 0  # fixed: healthy again
    assert cli(["health"], env, tmp_path).returncode == 0
