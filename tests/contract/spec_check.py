"""Requests our adapters send, and answers the sandboxes give, checked against JSON schemas we
wrote from the vendors' OpenAPI documents (``tests/contract/specs/``; each file names its
sources and their versions).

An exchange whose operation the file does not list fails the check, unless the file names it
as unchecked (Conga's token endpoint, which its Data API document does not cover): dialsync
calls documented operations only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from dialsync.sandbox.server import Exchange

SPECS = Path(__file__).parent / "specs"


@cache
def spec(system: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SPECS / f"{system}.json").read_text())
    return document


def _validate(system: str, schema: dict[str, Any], value: Any, where: str) -> list[str]:
    rooted = {"$defs": spec(system).get("$defs", {}), **schema}
    validator = Draft202012Validator(rooted)
    errors = validator.iter_errors(value)
    return [f"{where}: {e.message} at {list(e.absolute_path)}" for e in errors]


def problems(system: str, exchange: Exchange) -> list[str]:
    """What in one exchange the vendor's document does not allow (empty: all of it does)."""
    document = spec(system)
    request, response = exchange.request, exchange.response
    label = f"{request.method} {request.path}"
    for unchecked in document.get("unchecked", []):
        if unchecked["method"] == request.method and re.search(unchecked["path"], request.path):
            return []
    operation = next(
        (
            op
            for op in document["operations"]
            if op["method"] == request.method and re.search(op["path"], request.path)
        ),
        None,
    )
    if operation is None:
        return [f"{label}: not an operation of the {system} documents"]
    found: list[str] = []
    wanted = operation["request"]
    query = {name: values[-1] for name, values in request.query.items()}
    if "query" in wanted:
        found += _validate(system, wanted["query"], query, f"{label} query")
    if "form" in wanted:
        found += _validate(system, wanted["form"], request.form(), f"{label} form")
    if "body" in wanted:
        found += _validate(system, wanted["body"], request.json(), f"{label} body")
    elif request.body and "form" not in wanted:
        found.append(f"{label}: a body the operation does not take")
    if response.drop or response.status == 0:
        return found  # nothing was answered (an injected dropped connection)
    status = str(response.status)
    schema = operation["responses"].get(status) or document["any_status"].get(status)
    if schema is None:
        found.append(f"{label}: answered {status}, which the document does not list")
    else:
        found += _validate(system, schema, response.body, f"{label} answer {status}")
    return found


def check_exchanges(system: str, exchanges: Iterable[Exchange]) -> None:
    """Fail with every exchange the vendor's document does not allow."""
    found = [p for exchange in exchanges for p in problems(system, exchange)]
    assert not found, "\n".join(found[:20])


@contextmanager
def checked(system: str, box: Any) -> Iterator[Any]:
    """Record a started sandbox's exchanges, and check them when the block ends."""
    box.server.record = True
    yield box
    check_exchanges(system, box.server.exchanges)
