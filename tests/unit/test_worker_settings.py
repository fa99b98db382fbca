"""A worker process reads its settings once, and the Celery task defaults come from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

# Run in a fresh interpreter: importing the Celery app and its tasks is what is measured.
_PROBE = textwrap.dedent(
    """
    import json
    import dialsync.settings as s

    reads = []
    original = s.Settings.__init__

    def counting(self, *args, **kwargs):
        reads.append(1)
        original(self, *args, **kwargs)

    s.Settings.__init__ = counting
    from dialsync.worker import celery_app, runtime, tasks

    celery_app._logging()  # what a worker's main process runs as it starts
    celery_app._serve_metrics()
    runtime.settings()
    celery_app._after_fork()  # a pool process: it keeps the settings it inherited
    runtime.settings()
    limits = {
        name: [t.acks_late, t.soft_time_limit, t.time_limit]
        for name, t in sorted(celery_app.app.tasks.items())
        if name.startswith("dialsync.")
    }
    print(json.dumps({"reads": len(reads), "limits": limits}))
    """
)


def _probe(**env: str) -> dict[str, object]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DIALSYNC_")}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**base, "DIALSYNC_METRICS__PORT": "", "DIALSYNC_BROKER_URL": "memory://", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_worker_process_reads_its_settings_once_and_its_tasks_take_their_limits() -> None:
    found = _probe(
        DIALSYNC_SYNC__PULL_TIME_LIMIT_SECONDS="600",
        DIALSYNC_SYNC__PUSH_TIME_LIMIT_SECONDS="120",
    )
    assert found["reads"] == 1
    assert found["limits"] == {
        "dialsync.alerts": [False, 60, 90],
        "dialsync.pull": [True, 600, 660],
        "dialsync.push": [True, 120, 180],
        "dialsync.reconcile": [True, 600, 660],
        "dialsync.resync": [True, 600, 660],
    }
