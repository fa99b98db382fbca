"""Injected faults as the dialer sandboxes share them: Talkdesk's and the ``DialerSandbox``
base of Everbridge and Conga.

Each sandbox keeps its own fault fields (Talkdesk also delays calls) and the shape of its error
bodies; what is the same is the seeded draw that picks at most one fault per call, the answer a
fault gives, and how fault fields are set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from typing import Any

from dialsync.sandbox.server import Response

ErrorBody = Callable[[int, str, str], Response]  # (status, code, message) -> the vendor's answer
_CODES = {429: "TOO_MANY_REQUESTS", 500: "INTERNAL_SERVER_ERROR", 503: "UNAVAILABLE"}


def seconds_text(value: float) -> str:
    # Retry-After is whole seconds; a fraction is kept only so tests can ask for short waits.
    return str(int(value)) if float(value).is_integer() else str(value)


def fault_response(error: ErrorBody, status: int, retry_after: float | None) -> Response:
    """The answer of an injected failure, nothing applied."""
    response = error(status, _CODES.get(status, f"HTTP_{status}"), "injected fault")
    if retry_after is not None:
        response.headers["Retry-After"] = seconds_text(retry_after)
    return response


def pick(draw: float, bands: Iterable[tuple[float, str]]) -> str | None:
    """The band a draw in [0, 1) falls in, rates stacked in order: they add up, and a seeded
    sequence of draws picks the same faults every run."""
    for rate, kind in bands:
        if draw < rate:
            return kind
        draw -= rate
    return None


def set_fields(faults: Any, values: Mapping[str, Any]) -> None:
    """Set fields of a faults dataclass; ValueError names any it does not have (caller locks)."""
    unknown = set(values) - {f.name for f in fields(faults)}
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    for name, value in values.items():
        setattr(faults, name, value)
