"""Print the fault table (Markdown) from tests/faults/results.json.

DIALSYNC_FAULTS_REPORT=1 .venv/bin/python -m pytest -m faults tests/faults
.venv/bin/python -m tests.faults.report            # or: ... report path/to/results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(data: dict[str, Any]) -> str:
    """The faults, then the security checks (cases named S1, S2 ...)."""
    faults = [c for c in data["cases"] if not str(c["case"]).startswith("S")]
    checks = [c for c in data["cases"] if str(c["case"]).startswith("S")]
    lines = [
        "| # | fault | what was injected | cycles to converge | lost | duplicated |",
        "|---|---|---|---|---|---|",
    ]
    for case in faults:
        number = str(case["case"]).partition(". ")[0]
        lines.append(
            f"| {_cell(number)} | {_cell(case['fault'])} | {_cell(case['injected'])} "
            f"| {case['cycles']} | {case['lost']} | {case['duplicated']} |"
        )
    if checks:
        lines += ["", "| # | security check | what was done | found |", "|---|---|---|---|"]
    for case in checks:
        number = str(case["case"]).partition(". ")[0]
        lines.append(
            f"| {_cell(number)} | {_cell(case['fault'])} | {_cell(case['injected'])} "
            f"| {_cell(_found(case['details']))} |"
        )
    return "\n".join(lines)


def _found(details: dict[str, Any]) -> str:
    if "leaks" in details:
        return "nothing" if not details["leaks"] else json.dumps(details["leaks"])
    if "literals_not_an_id" in details:
        return (
            f"{details['literals_not_an_id']} literals other than an 18-character Id in "
            f"{details['soql_statements']} SOQL statements"
        )
    return json.dumps(details)


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else RESULTS
    if not path.exists():
        print(f"no results at {path}: run the suite with DIALSYNC_FAULTS_REPORT=1", file=sys.stderr)
        return 1
    data = json.loads(path.read_text())
    print(table(data))
    print(f"\n{len(data['cases'])} cases, {data['generated_at']}, {data['machine']}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
