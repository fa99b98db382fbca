"""Progress without a terminal (issue 11, item 9): "run started" with the contacts counted
first, then a progress line every DIALSYNC_SYNC__PROGRESS_SECONDS, never going backwards."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dialsync.sandbox.harness import Sandboxes
from tests.integration.helpers import person
from tests.integration.test_cli import cli


def test_a_sync_in_a_pipe_logs_start_and_progress_lines(
    sandboxes: Sandboxes, tmp_path: Path
) -> None:
    box = sandboxes
    box.salesforce.insert_many([person(i) for i in range(2500)])
    # A line at every hook that comes at least this long after the last one.
    env = {**box.env(), "DIALSYNC_SYNC__PROGRESS_SECONDS": "0.000001"}
    result = cli(["sync"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert not any(line.startswith("[") for line in lines)  # no bar in a pipe
    started = [line for line in lines if "run 1 (sync) started" in line]
    assert len(started) == 1 and started[0].endswith("started: 2,500 contacts to read")
    progress = [line for line in lines if "run 1 (sync) progress" in line]
    assert len(progress) >= 2, result.stderr
    shares = [int(re.search(r"progress (\d+)%", line).group(1)) for line in progress]  # type: ignore[union-attr]
    assert shares == sorted(shares)
    assert all(re.search(r"read [\d,]+ of 2,500, created [\d,]+, .*/s, ETA ", p) for p in progress)
    assert any("run 1 (sync) finished in" in line for line in lines)

    # The same lines as JSON carry the numbers as fields.
    box.salesforce.insert_many([person(5000 + i) for i in range(300)])
    env["DIALSYNC_LOG_FORMAT"] = "json"
    result = cli(["sync", "--full"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    first = next(e for e in entries if e["message"].startswith("run 2 (full) started"))
    assert first["total"] == 2800 and first["run_id"] == 2 and first["kind"] == "full"
    steps = [e for e in entries if "progress" in e["message"]]
    assert steps and all(e["total"] == 2800 and isinstance(e["counts"], dict) for e in steps)
    done = next(e for e in entries if e["message"].startswith("run 2 (full) finished"))
    assert done["counts"]["created"] == 300 and done["status"] == "ok"
