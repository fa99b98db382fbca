"""`dialsync sandbox` as a new operator uses it (issue 11, item 13): start it, paste its
exports, sync, then add, edit and delete a contact and see each reach every dialer."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.service import wait_until
from tests.integration.test_cli import DIALSYNC, cli


def exports(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env


@pytest.mark.slow
def test_sandbox_serves_until_ctrl_c_and_its_contacts_can_be_changed(tmp_path: Path) -> None:
    out = tmp_path / "sandbox.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALSYNC_")}
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [*DIALSYNC, "sandbox", "--contacts", "20", "--env-file", str(tmp_path / "sb.env")],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "Ctrl-C to stop" in out.read_text(), what="the sandbox to start")
        printed = out.read_text()
        env = exports(printed)
        assert env["DIALSYNC_DESTINATIONS"] == "talkdesk,everbridge,conga"
        assert exports((tmp_path / "sb.env").read_text()) == env
        for name in ("Salesforce", "talkdesk", "everbridge", "conga"):
            assert re.search(rf"^# {name}\s+https?://127\.0\.0\.1:\d+", printed, re.M), name
        # A bash that sources the printed lines sees the same values (shell syntax).
        shell = subprocess.run(
            ["bash", "-c", f'. {tmp_path / "sb.env"} && echo "$DIALSYNC_CA_BUNDLE"'],
            capture_output=True,
            text=True,
            check=True,
        )
        assert shell.stdout.strip() == env["DIALSYNC_CA_BUNDLE"]

        def sync() -> dict[str, int]:
            result = cli(["sync", "--json"], env, tmp_path)
            assert result.returncode == 0, result.stderr
            return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

        first = sync()
        assert first["queried"] == 20 and first["created"] > 0

        added = cli(
            [
                "sandbox",
                "contact",
                "add",
                "--first-name",
                "Ada",
                "--last-name",
                "Lovelace",
                "--mobile",
                "+1 415 555 0142",
                "--json",
            ],
            env,
            tmp_path,
        )
        assert added.returncode == 0, added.stderr
        new = json.loads(added.stdout)["id"]
        assert sync()["created"] == 3  # one record in each of the three dialers

        edited = cli(["sandbox", "contact", "edit", new, "--last-name", "King"], env, tmp_path)
        assert edited.returncode == 0 and f"updated contact {new}: LastName" in edited.stdout
        assert sync()["updated"] == 3

        listed = cli(["sandbox", "contact", "list"], env, tmp_path).stdout
        assert f"{new}  Ada King" in listed and "21 contacts" in listed

        gone = cli(["sandbox", "contact", "delete", new], env, tmp_path)
        assert gone.returncode == 0 and f"deleted contact {new}" in gone.stdout
        assert sync()["deleted"] == 3
        missing = cli(["sandbox", "contact", "edit", new, "--last-name", "X"], env, tmp_path)
        assert missing.returncode == 1 and "no such contact" in missing.stderr
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        code = proc.wait(timeout=30)
    assert code == 0
    assert "Traceback" not in out.read_text()
    # Without a running sandbox, the contact commands say what to do.
    stale = cli(["sandbox", "contact", "list"], env, tmp_path)
    assert stale.returncode == 2 and "is `dialsync sandbox` still running?" in stale.stderr


def test_sandbox_help_says_how_to_add_edit_and_delete_contacts(tmp_path: Path) -> None:
    text = cli(["sandbox", "--help"], {}, tmp_path).stdout
    for verb in ("add", "edit", "delete"):
        assert f"dialsync sandbox contact {verb} " in text
    assert "export DIALSYNC_" in text and "Ctrl-C" in text
    sub = cli(["sandbox", "contact", "add", "--help"], {}, tmp_path)
    assert sub.returncode == 0 and "--mobile" in sub.stdout and "--do-not-call" in sub.stdout


@pytest.mark.slow
def test_the_demo_prints_no_path_it_deletes(tmp_path: Path) -> None:
    result = cli(["demo", "--contacts", "60"], {}, tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    paths = re.findall(r"(?<![\w:/])(/[\w./-]+)", result.stdout)
    assert all(Path(p).exists() for p in paths), paths
    kept = cli(
        ["demo", "--contacts", "60", "--workdir", str(tmp_path / "kept")], {}, tmp_path, timeout=300
    )
    assert kept.returncode == 0 and str(tmp_path / "kept" / "dialsync.db") in kept.stdout
    assert (tmp_path / "kept" / "dialsync.db").exists()
