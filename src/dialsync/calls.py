"""What each HTTP call to Salesforce or a dialer reports: one ``Call``, handed to hooks.

The composition root (wiring.py) passes the hooks in when it builds the clients: a response
hook on the Salesforce session, a transport around each dialer's httpx client. The log hook
writes one DEBUG line per call (the SOQL of a query, method, path, status, duration, records);
the metrics hook counts answers. Bodies are never logged: tokens travel in them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import requests

log = logging.getLogger("dialsync.http")


@dataclass(frozen=True)
class Call:
    system: str  # salesforce, talkdesk, everbridge, conga
    method: str
    path: str  # the URL's path, without host or query
    status: int
    seconds: float
    records: int | None = None  # records sent or received, when the body says
    soql: str | None = None  # a Salesforce query's SOQL
    headers: Any = None  # the response headers (Sforce-Limit-Info for the metrics)


CallHook = Callable[[Call], None]


def log_call(call: Call) -> None:
    """One DEBUG line per call; phone numbers and names are masked by the log filter."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    what = f" {call.soql}" if call.soql else ""
    records = f", {call.records} records" if call.records is not None else ""
    log.debug(
        "%s %s %s%s -> %s in %.3fs%s",
        call.system,
        call.method,
        call.path,
        what,
        call.status,
        call.seconds,
        records,
        extra={
            "system": call.system,
            "method": call.method,
            "path": call.path,
            "status": call.status,
            "seconds": round(call.seconds, 3),
            **({"records": call.records} if call.records is not None else {}),
            **({"soql": call.soql} if call.soql else {}),
        },
    )


def _notify(hooks: Sequence[CallHook], call: Call) -> None:
    for hook in hooks:
        try:
            hook(call)
        except Exception:  # a hook must never break a call
            log.exception("a call hook failed")


def count_records(body: Any) -> int | None:
    """Records in a request or response body of any of our APIs: a JSON list, or the list
    under records, data, Data, _embedded.records, page.data or deletedRecords."""
    if isinstance(body, list):
        return len(body)
    if not isinstance(body, dict):
        return None
    for key in ("records", "data", "Data", "deletedRecords", "ids"):
        if isinstance(body.get(key), list):
            return len(body[key])
    for outer, inner in (("_embedded", "records"), ("page", "data")):
        nested = body.get(outer)
        if isinstance(nested, dict) and isinstance(nested.get(inner), list):
            return len(nested[inner])
    return None


def _json(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None


# -- Salesforce: a response hook on the requests session simple-salesforce uses ---------------
def requests_hook(system: str, hooks: Sequence[CallHook]) -> Callable[..., None]:
    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        url = urlsplit(str(request.url or ""))
        soql = parse_qs(url.query).get("q", [None])[0]
        detail = log.isEnabledFor(logging.DEBUG)  # a body is parsed only for the log
        records = None
        if detail and "json" in response.headers.get("Content-Type", ""):
            records = count_records(_json(response.content))
        _notify(
            hooks,
            Call(
                system,
                str(request.method),
                url.path,
                response.status_code,
                response.elapsed.total_seconds(),
                records,
                soql,
                response.headers,
            ),
        )

    return hook


# -- dialers: a transport around the one each httpx client would have made ----------------------
class ObservedTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, system: str, hooks: Sequence[CallHook]) -> None:
        self.inner = inner
        self.system = system
        self.hooks = list(hooks)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        try:
            response = self.inner.handle_request(request)
        except httpx.TransportError as exc:  # no answer: nothing to count, one line to read
            log.debug(
                "%s %s %s -> %s after %.3fs",
                self.system,
                request.method,
                request.url.path,
                exc.__class__.__name__,
                time.monotonic() - started,
                extra={"system": self.system, "method": request.method, "path": request.url.path},
            )
            raise
        seconds = time.monotonic() - started
        records = None
        if log.isEnabledFor(logging.DEBUG):
            if request.method in ("GET",):
                # Read here so the records can be counted; the client reads the same bytes.
                records = count_records(_json(response.read()))
            elif "json" in request.headers.get("Content-Type", ""):
                records = count_records(_json(request.content))
        _notify(
            self.hooks,
            Call(
                self.system,
                request.method,
                request.url.path,
                response.status_code,
                seconds,
                records,
                headers=response.headers,
            ),
        )
        return response

    def close(self) -> None:
        self.inner.close()
