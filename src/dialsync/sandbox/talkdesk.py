"""Loopback fake of the Talkdesk Record Lists API, with OAuth, faults and a rate limit.

It follows ``shared/reference/talkdesk-record-lists.md`` (errors and paging included) so that the
real Talkdesk destination is exercised over real HTTP. Record rules live in
``talkdesk_validation``; this module is about HTTP, tokens, faults and bookkeeping.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
import random
import secrets
import ssl
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from dialsync.sandbox.faults import fault_response, pick, set_fields
from dialsync.sandbox.server import Handler, Request, Response, SandboxServer
from dialsync.sandbox.talkdesk_validation import (
    UNIQUE_IDENTIFIER_TYPES,
    BadRequest,
    Record,
    UniquenessIndex,
    apply_operation,
    parse_bulk_create,
    parse_bulk_delete,
    parse_bulk_update,
    record_errors,
    writable,
)

SCOPE = "record-lists:manage"
READ_ONLY = ("id", "record_list_id", "created_at", "updated_at", "_links")
WRITE_METHODS = frozenset({"POST", "PATCH", "DELETE"})
DEFAULT_PER_PAGE = 50  # documented default page size
MAX_PER_PAGE = 100
# "There is a limit in place of the maximum amount of records in record lists ... 250,000
# records" (Talkdesk support, Uploading a List); the API's answer when a create would pass it is
# undocumented: ours refuses the whole request, see _create_bulk.
LIST_CAPACITY = 250_000
LIMIT_CODE = "RECORD_LIST_LIMIT_REACHED"
_LIST = r"/record-lists/(?P<list_id>[^/]+)"
_RECORD = _LIST + r"/records/(?P<record_id>[^/]+)"


@dataclass
class TalkdeskFaults:
    """Injected failures; one seeded draw per eligible request picks at most one of them."""

    error_500_rate: float = 0.0  # answer 500, nothing applied
    error_429_rate: float = 0.0  # answer 429 with Retry-After, nothing applied
    retry_after: float = 1.0  # seconds; written as an integer when whole
    timeout_rate: float = 0.0  # sleep timeout_seconds, then apply and answer
    timeout_seconds: float = 2.0
    drop_after_apply_rate: float = 0.0  # apply, then close the connection without answering
    only_writes: bool = True  # only POST/PATCH/DELETE on /record-lists are eligible


@dataclass
class _Fault:
    early: Response | None = None  # answered instead of the call
    delay: float = 0.0  # slept before the call is applied
    drop: bool = False  # the answer is never sent


@dataclass
class _Token:
    expires_at: float  # time.monotonic()
    scopes: frozenset[str]


@dataclass
class _RecordList:
    id: str
    name: str
    unique_identifier_type: str
    capacity: int = LIST_CAPACITY
    records: dict[str, Record] = field(default_factory=dict)  # insertion order = creation order
    index: UniquenessIndex = field(default_factory=UniquenessIndex)


ApiHandler = Callable[[Request, _RecordList], Response]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_body(request: Request) -> Any:
    try:
        return request.json()
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest("INVALID_JSON", f"body is not valid JSON: {exc}") from None


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, {"code": code, "message": message})


class TalkdeskSandbox:
    """Record lists in memory behind the Talkdesk HTTP API. Thread-safe: one lock."""

    def __init__(
        self,
        *,
        client_id: str = "sandbox-talkdesk",
        client_secret: str = "sandbox-talkdesk-secret",
        token_ttl: float = 3600,
        latency: float = 0.0,
        tls: ssl.SSLContext | None = None,
        seed: int = 0,
        max_requests_per_second: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        list_capacity: int = LIST_CAPACITY,
    ) -> None:
        self.list_capacity = list_capacity  # per list; tests set a small one
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.max_requests_per_second = max_requests_per_second
        self.faults = TalkdeskFaults()
        self.server = SandboxServer(host=host, port=port, tls=tls, latency=latency)
        self._lock = self.server.lock  # the server's log lock: one lock for all state
        self._rng = random.Random(seed)
        self._fail_next: deque[tuple[int, float | None]] = deque()
        self._tokens: dict[str, _Token] = {}
        self._lists: dict[str, _RecordList] = {}
        self._counts: Counter[str] = Counter()
        self._admitted: deque[float] = deque()  # API requests let through in the last second
        self._arrivals: deque[float] = deque()  # every API request in the last second
        self._max_in_second = 0
        self.server.before_request = self._before_request
        self._add_routes()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> TalkdeskSandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> TalkdeskSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    # -- state helpers (Python API) ----------------------------------------------------------
    def create_list(
        self, name: str = "Sandbox list", unique_identifier_type: str = "EXTERNAL"
    ) -> str:
        if unique_identifier_type not in UNIQUE_IDENTIFIER_TYPES:
            raise ValueError(f"unique_identifier_type must be one of {UNIQUE_IDENTIFIER_TYPES}")
        list_id = str(uuid.uuid4())
        with self._lock:
            self._lists[list_id] = _RecordList(
                list_id, name, unique_identifier_type, self.list_capacity
            )
        return list_id

    def set_capacity(self, list_id: str, capacity: int) -> None:
        with self._lock:
            self._get_list(list_id).capacity = capacity

    def records(self, list_id: str) -> list[Record]:
        with self._lock:
            record_list = self._get_list(list_id)
            return [self._render(record_list, r, self.url) for r in record_list.records.values()]

    def add_record(self, list_id: str, record: Record) -> str:
        """Insert without validation, as a CSV upload or another integration would."""
        with self._lock:
            record_list = self._get_list(list_id)
            record_id = str(record.get("id") or uuid.uuid4())
            if record_id in record_list.records:
                raise ValueError(f"record {record_id} already exists")
            data = {k: v for k, v in record.items() if k not in READ_ONLY}
            stamps = {k: record[k] for k in ("created_at", "updated_at") if k in record}
            self._insert(record_list, data, record_id, **stamps)
            return record_id

    def remove_record(self, list_id: str, record_id: str) -> None:
        """Delete as an admin would in the dialer's UI (KeyError when absent)."""
        with self._lock:
            record_list = self._get_list(list_id)
            if record_id not in record_list.records:
                raise KeyError(record_id)
            self._remove(record_list, record_id)

    def expire_tokens(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = -math.inf

    def fail_next(self, n: int, status: int, retry_after: float | None = None) -> None:
        """The next ``n`` fault-eligible requests answer ``status`` without being applied."""
        with self._lock:
            self._fail_next.extend([(status, retry_after)] * n)

    def set_faults(self, **values: Any) -> None:
        with self._lock:
            set_fields(self.faults, values)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            answered = [r for r in self.server.log if not r.path.startswith("/_sandbox")]
            status_counts = Counter(r.status for r in answered if r.status != 0)
            out: dict[str, Any] = {
                name: self._counts[name]
                for name in (
                    "token_requests",
                    "writes",
                    "creates_bulk",
                    "updates_bulk",
                    "deletes_bulk",
                    "creates_single",
                    "deletes_single",
                    "reads",
                )
            }
            out["status_counts"] = dict(sorted(status_counts.items()))
            out["dropped"] = sum(1 for r in answered if r.status == 0)
            out["max_requests_in_any_second"] = self._max_in_second
            for name in ("records_created", "records_updated", "records_deleted"):
                out[name] = self._counts[name]
            return out

    # -- internals ---------------------------------------------------------------------------
    def _get_list(self, list_id: str) -> _RecordList:
        try:
            return self._lists[list_id]
        except KeyError:
            raise KeyError(f"unknown record list {list_id}") from None

    def _insert(
        self,
        record_list: _RecordList,
        data: Record,
        record_id: str | None = None,
        created_at: str | None = None,
        updated_at: str | None = None,
    ) -> Record:
        now = _now()
        record_id = record_id or str(uuid.uuid4())
        stored = {
            "id": record_id,
            "record_list_id": record_list.id,
            **copy.deepcopy(data),
            "created_at": created_at or now,
            "updated_at": updated_at or created_at or now,
        }
        record_list.records[record_id] = stored
        record_list.index.add(record_id, stored)
        return stored

    def _remove(self, record_list: _RecordList, record_id: str) -> None:
        stored = record_list.records.pop(record_id)
        record_list.index.remove(record_id, stored)
        self._counts["records_deleted"] += 1

    def _render(self, record_list: _RecordList, stored: Record, base: str) -> Record:
        out = copy.deepcopy(stored)
        out["_links"] = {
            "self": {"href": f"{base}/record-lists/{record_list.id}/records/{stored['id']}"},
            "record_list": {"href": f"{base}/record-lists/{record_list.id}"},
        }
        return out

    def _base(self, request: Request) -> str:
        # hrefs name the host the client used, so they work behind a port map or a hostname
        host = request.headers.get("host")
        return f"{self.server.scheme}://{host}" if host else self.url

    # -- request pipeline --------------------------------------------------------------------
    def _before_request(self, request: Request) -> Response | None:
        # The rate limit and the rate statistic cover the API only: the vendor's token endpoint
        # is another host (talkdeskid.com) and the admin routes are not part of the fake API.
        if not request.path.startswith("/record-lists"):
            return None
        now = time.monotonic()
        with self._lock:
            self._arrivals.append(now)
            while self._arrivals[0] <= now - 1.0:
                self._arrivals.popleft()
            self._max_in_second = max(self._max_in_second, len(self._arrivals))
            limit = self.max_requests_per_second
            if limit is None:
                return None
            while self._admitted and self._admitted[0] <= now - 1.0:
                self._admitted.popleft()
            # refused requests do not use up the window, so a client at the limit still flows
            if len(self._admitted) >= limit:
                response = _error(429, "TOO_MANY_REQUESTS", "rate limit exceeded")
                response.headers["Retry-After"] = "1"
                return response
            self._admitted.append(now)
        return None

    def _roll_fault(self, request: Request) -> _Fault:
        with self._lock:
            faults = self.faults
            if faults.only_writes and request.method not in WRITE_METHODS:
                return _Fault()
            if self._fail_next:
                status, retry_after = self._fail_next.popleft()
                return _Fault(early=self._fault_response(status, retry_after))
            chosen = pick(
                self._rng.random(),
                (
                    (faults.error_500_rate, "500"),
                    (faults.error_429_rate, "429"),
                    (faults.timeout_rate, "timeout"),
                    (faults.drop_after_apply_rate, "drop"),
                ),
            )
            retry_after, timeout = faults.retry_after, faults.timeout_seconds
        if chosen == "500":
            return _Fault(early=self._fault_response(500, None))
        if chosen == "429":
            return _Fault(early=self._fault_response(429, retry_after))
        if chosen == "timeout":
            return _Fault(delay=timeout)
        return _Fault(drop=chosen == "drop")

    @staticmethod
    def _fault_response(status: int, retry_after: float | None) -> Response:
        return fault_response(_error, status, retry_after)

    def _authorize(self, request: Request) -> Response | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            response = _error(401, "UNAUTHORIZED", "missing or unknown bearer token")
        elif token.expires_at <= time.monotonic():
            response = _error(401, "UNAUTHORIZED", "token expired")
        elif SCOPE not in token.scopes:
            return _error(403, "FORBIDDEN", f"token lacks scope {SCOPE}")
        else:
            return None
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    def _api(self, handler: ApiHandler, *counters: str) -> Handler:
        """Wrap an API handler with faults, auth, list lookup and counting."""

        def wrapped(request: Request) -> Response:
            fault = self._roll_fault(request)
            if fault.early is not None:
                return fault.early
            if fault.delay:
                time.sleep(fault.delay)  # outside the lock: other calls go on meanwhile
            with self._lock:
                denied = self._authorize(request)
                if denied is not None:
                    return denied
                record_list = self._lists.get(request.params["list_id"])
                if record_list is None:
                    response = _error(
                        404, "RECORD_LIST_NOT_FOUND", f"record list {request.params['list_id']}"
                    )
                else:
                    self._counts.update(counters)
                    try:
                        response = handler(request, record_list)
                    except BadRequest as exc:
                        response = Response(400, exc.body())
            if fault.drop:
                return Response(0, drop=True)  # status 0 in the log: nothing was answered
            return response

        return wrapped

    def _add_routes(self) -> None:
        add, api = self.server.add_route, self._api
        add("POST", "/oauth/token", self._token)
        add("GET", _LIST, api(self._get_record_list, "reads"))
        add("POST", _LIST + "/records/bulks", api(self._create_bulk, "writes", "creates_bulk"))
        add("PATCH", _LIST + "/records/bulks", api(self._update_bulk, "writes", "updates_bulk"))
        add("DELETE", _LIST + "/records/bulks", api(self._delete_bulk, "writes", "deletes_bulk"))
        add("POST", _LIST + "/records", api(self._create_one, "writes", "creates_single"))
        add("GET", _LIST + "/records", api(self._list_records, "reads"))
        add("GET", _RECORD, api(self._get_record, "reads"))
        add("DELETE", _RECORD, api(self._delete_one, "writes", "deletes_single"))
        add("POST", "/_sandbox/lists", self._admin_create_list)
        add("GET", "/_sandbox/lists/(?P<list_id>[^/]+)/records", self._admin_records)
        add("POST", "/_sandbox/lists/(?P<list_id>[^/]+)/records", self._admin_add_record)
        add(
            "DELETE",
            "/_sandbox/lists/(?P<list_id>[^/]+)/records/(?P<record_id>[^/]+)",
            self._admin_remove_record,
        )
        add("POST", "/_sandbox/faults", self._admin_faults)
        add("POST", "/_sandbox/expire-tokens", self._admin_expire_tokens)
        add("GET", "/_sandbox/stats", lambda _request: Response(200, self.stats()))

    # -- OAuth -------------------------------------------------------------------------------
    def _token(self, request: Request) -> Response:
        with self._lock:
            self._counts["token_requests"] += 1
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id = secret = ""
        if not (
            scheme.lower() == "basic"
            # bytes: compare_digest refuses non-ASCII str, and a client may send anything
            and secrets.compare_digest(client_id.encode(), self.client_id.encode())
            and secrets.compare_digest(secret.encode(), self.client_secret.encode())
        ):
            return Response(
                401,
                {"error": "invalid_client", "error_description": "client authentication failed"},
                {"WWW-Authenticate": "Basic"},
            )
        try:
            form = request.form()
        except UnicodeDecodeError:
            form = {}
        grant = form.get("grant_type")
        if grant != "client_credentials":
            error = "invalid_request" if grant is None else "unsupported_grant_type"
            return Response(400, {"error": error, "error_description": f"grant_type {grant!r}"})
        # the token carries exactly the scopes asked for: none asked means none granted (403)
        scopes = frozenset(form.get("scope", "").split())
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = _Token(time.monotonic() + self.token_ttl, scopes)
        ttl = self.token_ttl
        return Response(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
                "scope": " ".join(sorted(scopes)),
            },
            {"Cache-Control": "no-store"},
        )

    # -- API handlers (called with the lock held) --------------------------------------------
    def _get_record_list(self, request: Request, record_list: _RecordList) -> Response:
        return Response(
            200,
            {
                "id": record_list.id,
                "name": record_list.name,
                "unique_identifier_type": record_list.unique_identifier_type,
                "status": "ACTIVE",
                "records_count": len(record_list.records),
            },
        )

    def _create(self, record_list: _RecordList, item: Record, base: str) -> tuple[Record, bool]:
        """One create: the answer entry and whether it was created."""
        data = writable(item)
        errors = record_errors(data, record_list.unique_identifier_type, record_list.index)
        if errors:
            return {**copy.deepcopy(data), "errors": [e.code for e in errors]}, False
        stored = self._insert(record_list, data)
        self._counts["records_created"] += 1
        return {**self._render(record_list, stored, base), "errors": []}, True

    @staticmethod
    def _over_capacity(record_list: _RecordList, adding: int) -> Response | None:
        """Refuse a create that would take the list past its capacity, as a whole (the CSV
        upload is refused as a whole too; the API's answer is undocumented)."""
        held = len(record_list.records)
        if held + adding <= record_list.capacity:
            return None
        return Response(
            400,
            {
                "code": LIMIT_CODE,
                "message": "the record list has reached its limit of records",
                "description": f"{held} records held, {adding} more asked, at most "
                f"{record_list.capacity}",
            },
        )

    def _create_one(self, request: Request, record_list: _RecordList) -> Response:
        item = _json_body(request)
        if not isinstance(item, dict):
            raise BadRequest("INVALID_BODY", "body must be a record object")
        full = self._over_capacity(record_list, 1)
        if full is not None:
            return full
        data = writable(item)
        errors = record_errors(data, record_list.unique_identifier_type, record_list.index)
        if errors:
            codes = [e.code for e in errors]
            return Response(
                400,
                {
                    "code": "INVALID_RECORD",
                    "message": "errors found in the submitted data",
                    "description": ", ".join(codes),
                    "fields": [{"name": e.field, "description": e.code} for e in errors],
                },
            )
        stored = self._insert(record_list, data)
        self._counts["records_created"] += 1
        return Response(201, self._render(record_list, stored, self._base(request)))

    def _bulk_links(self, request: Request, record_list: _RecordList) -> dict[str, Any]:
        base = f"{self._base(request)}/record-lists/{record_list.id}"
        return {"self": {"href": f"{base}/records/bulks"}, "record_list": {"href": base}}

    def _create_bulk(self, request: Request, record_list: _RecordList) -> Response:
        items = parse_bulk_create(_json_body(request))
        full = self._over_capacity(record_list, len(items))
        if full is not None:
            return full
        base = self._base(request)
        # one at a time, so uniqueness also holds between records of the same request
        results = [self._create(record_list, item, base) for item in items]
        entries = [entry for entry, _ in results]
        created = sum(1 for _, ok in results if ok)
        return Response(
            201,
            {
                "record_list_id": record_list.id,
                "has_errors": created < len(entries),
                "total_errors": len(entries) - created,
                "total_created": created,
                "_links": self._bulk_links(request, record_list),
                "_embedded": {"records": entries},
            },
        )

    def _update_bulk(self, request: Request, record_list: _RecordList) -> Response:
        operations = parse_bulk_update(_json_body(request))
        base = self._base(request)
        entries: list[Record] = []
        for operation in operations:
            current = record_list.records.get(operation.record_id)
            if current is None:  # undocumented; the reference fixes our answer as OTHER
                entries.append({"id": operation.record_id, "errors": ["OTHER"]})
                continue
            candidate = apply_operation(current, operation.op, operation.value)
            errors = record_errors(
                candidate, record_list.unique_identifier_type, record_list.index, current["id"]
            )
            if errors:  # not applied: the entry shows the record as it still is
                entry = self._render(record_list, current, base)
                entries.append({**entry, "errors": [e.code for e in errors]})
                continue
            candidate["updated_at"] = _now()
            record_list.index.remove(current["id"], current)
            record_list.index.add(current["id"], candidate)
            record_list.records[current["id"]] = candidate
            self._counts["records_updated"] += 1
            entries.append({**self._render(record_list, candidate, base), "errors": []})
        failed = sum(1 for e in entries if e["errors"])
        return Response(
            200,
            {
                "record_list_id": record_list.id,
                "has_errors": failed > 0,
                "total_errors": failed,
                "_links": self._bulk_links(request, record_list),
                "_embedded": {"records": entries},
            },
        )

    def _delete_bulk(self, request: Request, record_list: _RecordList) -> Response:
        selectors = parse_bulk_delete(_json_body(request))
        deleted, failed = 0, []
        for selector in selectors:
            if selector.record_id is not None:
                matches = {selector.record_id} & record_list.records.keys()
            elif selector.external_ref is not None:
                matches = record_list.index.external_owners(selector.external_ref)
            else:
                assert selector.phone_number is not None
                matches = record_list.index.phone_owners(selector.phone_number)
            if not matches:  # undocumented; our choice per the reference
                failed.append({**selector.item, "errors": ["RECORD_NOT_FOUND"]})
            for record_id in matches:
                self._remove(record_list, record_id)
                deleted += 1
        return Response(
            200,
            {
                "total_deleted": deleted,
                "total_errors": len(failed),
                "_embedded": {"failed_records": failed},
            },
        )

    def _list_records(self, request: Request, record_list: _RecordList) -> Response:
        page = self._int_arg(request, "page", 1)
        per_page = self._int_arg(request, "per_page", DEFAULT_PER_PAGE)
        if page < 1:
            raise BadRequest("INVALID_PARAMETER", "page must be >= 1")
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise BadRequest("INVALID_PARAMETER", f"per_page must be 1..{MAX_PER_PAGE}")
        base = self._base(request)
        stored = list(record_list.records.values())
        total = len(stored)
        total_pages = math.ceil(total / per_page)
        chunk = stored[(page - 1) * per_page : page * per_page]
        href = f"{base}/record-lists/{record_list.id}/records?per_page={per_page}&page="
        links = {
            "self": {"href": f"{href}{page}"},
            "first": {"href": f"{href}1"},
            "last": {"href": f"{href}{max(total_pages, 1)}"},
        }
        if page < total_pages:
            links["next"] = {"href": f"{href}{page + 1}"}
        if page > 1:
            links["prev"] = {"href": f"{href}{min(page - 1, max(total_pages, 1))}"}
        return Response(
            200,
            {
                "total": total,
                "count": len(chunk),
                "page": page,
                "per_page": per_page,
                "total_pages": total_pages,
                "_links": links,
                "_embedded": {"records": [self._render(record_list, r, base) for r in chunk]},
            },
        )

    @staticmethod
    def _int_arg(request: Request, name: str, default: int) -> int:
        raw = request.arg(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise BadRequest(
                "INVALID_PARAMETER",
                f"{name} must be an integer",
                [{"name": name, "description": "must be an integer"}],
            ) from None

    def _get_record(self, request: Request, record_list: _RecordList) -> Response:
        stored = record_list.records.get(request.params["record_id"])
        if stored is None:
            return _error(404, "RECORD_NOT_FOUND", f"record {request.params['record_id']}")
        return Response(200, self._render(record_list, stored, self._base(request)))

    def _delete_one(self, request: Request, record_list: _RecordList) -> Response:
        record_id = request.params["record_id"]
        if record_id not in record_list.records:
            return _error(404, "RECORD_NOT_FOUND", f"record {record_id}")
        self._remove(record_list, record_id)
        return Response(204)

    # -- admin routes: no auth, no faults, not counted ---------------------------------------
    def _admin_create_list(self, request: Request) -> Response:
        try:
            body = _json_body(request) or {}
            list_id = self.create_list(
                str(body.get("name", "Sandbox list")),
                str(body.get("unique_identifier_type", "EXTERNAL")),
            )
        except (BadRequest, ValueError, AttributeError) as exc:
            return _error(400, "INVALID_BODY", str(exc))
        return Response(201, {"id": list_id})

    def _admin_records(self, request: Request) -> Response:
        try:
            return Response(200, {"records": self.records(request.params["list_id"])})
        except KeyError as exc:
            return _error(404, "RECORD_LIST_NOT_FOUND", str(exc))

    def _admin_add_record(self, request: Request) -> Response:
        try:
            body = _json_body(request)
            if not isinstance(body, dict):
                raise ValueError("body must be a record object")
            return Response(201, {"id": self.add_record(request.params["list_id"], body)})
        except KeyError as exc:
            return _error(404, "RECORD_LIST_NOT_FOUND", str(exc))
        except (BadRequest, ValueError) as exc:
            return _error(400, "INVALID_BODY", str(exc))

    def _admin_remove_record(self, request: Request) -> Response:
        try:
            self.remove_record(request.params["list_id"], request.params["record_id"])
        except KeyError as exc:
            return _error(404, "NOT_FOUND", str(exc))
        return Response(204)

    def _admin_faults(self, request: Request) -> Response:
        """Set fault fields; also ``max_requests_per_second`` and ``fail_next: {n, status}``."""
        try:
            body = dict(_json_body(request) or {})
            if "max_requests_per_second" in body:
                self.max_requests_per_second = body.pop("max_requests_per_second")
            fail_next = body.pop("fail_next", None)
            self.set_faults(**body)
            if fail_next is not None:
                self.fail_next(
                    int(fail_next["n"]), int(fail_next["status"]), fail_next.get("retry_after")
                )
        except (BadRequest, ValueError, TypeError, KeyError) as exc:
            return _error(400, "INVALID_BODY", str(exc))
        with self._lock:
            current = {f.name: getattr(self.faults, f.name) for f in fields(TalkdeskFaults)}
        return Response(200, current)

    def _admin_expire_tokens(self, request: Request) -> Response:
        self.expire_tokens()
        return Response(204)
