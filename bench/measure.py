"""Run a command and write its wall time and peak RSS to a JSON file.

Used by run_dialsync() as a small middle process: a child forked from a large benchmark
process would report the parent's pages in its peak RSS; forked from this small one, it reports
its own. Usage: python bench/measure.py REPORT.json -- command args...
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main() -> None:
    report, sep, *command = sys.argv[1:]
    assert sep == "--" and command, __doc__
    started = time.perf_counter()
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    with open(report, "w") as fh:
        json.dump(
            {
                "seconds": seconds,
                "maxrss_kb": usage.ru_maxrss,
                "returncode": os.waitstatus_to_exitcode(status),
            },
            fh,
        )


if __name__ == "__main__":
    main()
