"""Loopback fake of the Conga Platform Data API's Contact object, as Conga documents it.

Sources: the vendor's OpenAPI document "Data" version v1 (``Himanshi0827/philips``,
``.api/apis/conga-platform/openapi.json``), seed 003 and reference/everbridge-and-conga.md
(tokens, the user-id header and IsExternalIdValidationEnabled are known from those alone).

What the spec documents, followed by default:

- every answer is the envelope ``{Success, RecordCount, Data, Errors: [{Message}], StatusCode,
  ...}`` with no other field, ``StatusCode`` being a name ("OK", "Created", "BadRequest",
  "NotFound", ...);
- ``GET /api/data/v1/Contact?pageSize=&pageNumber=`` lists a page: ``RecordCount`` counts that
  page, and no total is given (an ``includeTotalCount`` parameter is not documented and is
  ignored); the total comes from ``POST /api/data/v1/Contact/query?IncludeTotalCount=true``;
- ``PATCH /api/data/v1/Contact/bulk`` upserts by ``UpdateByField``, ``Id`` by default: records
  without an ``Id`` are then created, and one whose ``ExternalId`` is taken is refused
  ("already exists"); with ``UpdateByField=ExternalId`` a record carrying a known ``ExternalId``
  is updated and an unknown one created. Its 200 carries no documented body: the sandbox answers
  ``{Success: true, StatusCode: "OK"}``;
- ``PUT .../Contact/by-externalId/{externalId}`` updates (200/400/403/404): an unknown external
  id is a 404, never a create. Its body is the Contact schema, which has no ``ExternalId`` and
  forbids other fields: the path carries the key;
- ``POST /api/data/v1/Contact`` creates one record (201, ``Data`` its id); the body may carry
  ``ExternalId`` (the operation's table of ``ID``/``ExternalId`` in the payload says so);
- ``DELETE .../by-externalId/{externalId}`` answers ``Data: true``.

Where the spec's generated schemas and its own prose disagree: the bulk bodies and the create
body carry ``ExternalId`` (and may carry ``Id``) although the generated Contact schema lists
neither, because the operations' tables require them for upserts by external id; the sandbox
follows the tables. ``Id`` in a body must equal the record's (seed 003 and the tables).

Undocumented, chosen here: the bulk upsert is all or nothing (one invalid record refuses the
call with a 400 listing each problem in ``Errors``); error answers use the same envelope.
An upsert is a partial update: fields left out keep their values, a null clears one.
"""

from __future__ import annotations

import copy
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from dialsync.sandbox.dialer import DialerSandbox, int_arg, json_body
from dialsync.sandbox.server import Handler, Request, Response

Record = dict[str, Any]
_OBJECT = "/api/data/v1/Contact"
_BY_EXTERNAL_ID = _OBJECT + "/by-externalId/(?P<external_id>[^/]+)"
MAX_PAGE_SIZE = 100
TEXT_MAX = 255
LONG_TEXT = frozenset({"Description"})  # long text: no 255-character limit here
OBJECT_FIELDS = frozenset({"Account", "Owner"})  # {Id, Name} references
BOOLEAN_FIELDS = frozenset({"IsEmailBounced"})
# The Contact schema of seed 003 (plus the key fields); a test may remove some.
CONTACT_SCHEMA = frozenset(
    {
        "Id",
        "ExternalId",
        "Name",
        "FirstName",
        "LastName",
        "Salutation",
        "Title",
        "Department",
        "Description",
        "LeadSource",
        "Birthdate",
        "AssistantName",
        "AssistantPhone",
        "Email",
        "IsEmailBounced",
        "EmailBouncedDate",
        "EmailBouncedReason",
        "Fax",
        "Phone",
        "MobilePhone",
        "HomePhone",
        "OtherPhone",
        "PhotoUrl",
        *(
            f"{kind}{part}"
            for kind in ("Mailing", "Other")
            for part in ("Address", "Street", "City", "State", "PostalCode", "Country")
        ),
        "MailingCountryCode",
        "OtherCountryCode",
        "Account",
        "Owner",
    }
)
# The query body's fields ("Schema Model for Query"; additionalProperties false).
QUERY_FIELDS = frozenset(
    {"ObjectName", "Criteria", "Select", "Distinct", "Limit", "Skip", "Sort", "GroupBy"}
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class _Invalid(Exception):
    """A record refused; the message names the field."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


STATUS_NAMES = {  # the spec's StatusCode enum, for the statuses the sandbox answers
    200: "OK",
    201: "Created",
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


def envelope(
    status: int, data: Any = None, errors: list[str] | None = None, **extra: Any
) -> Response:
    """The spec's answer envelope; ``Data`` left out when None, as the spec's examples do."""
    body: dict[str, Any] = {"Success": 200 <= status < 300}
    if data is not None:
        body["Data"] = data
    if errors:
        body["Errors"] = [{"Message": m} for m in errors]
    body.update(extra)
    body["StatusCode"] = STATUS_NAMES.get(status, "BadRequest")
    return Response(status, body)


class CongaSandbox(DialerSandbox):
    def __init__(
        self,
        *,
        client_id: str = "sandbox-conga",
        client_secret: str = "sandbox-conga-secret",
        require_user_id: str | None = None,
        schema: frozenset[str] = CONTACT_SCHEMA,
        token_ttl: float = 3600,
        writes_per_minute: int | None = None,  # Conga publishes no limit
        max_batch: int = 100,
        **options: Any,
    ) -> None:
        super().__init__(token_ttl=token_ttl, writes_per_minute=writes_per_minute, **options)
        self.client_id, self.client_secret = client_id, client_secret
        self.require_user_id = require_user_id
        self.schema = set(schema)
        self.max_batch = max_batch
        self._records: dict[str, Record] = {}  # ExternalId -> stored record
        self._routes()

    def start(self) -> CongaSandbox:
        super().start()
        return self

    def __enter__(self) -> CongaSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def token_url(self) -> str:
        return self.url + "/api/v1/auth/connect/token"

    def error(self, status: int, code: str, message: str) -> Response:
        return envelope(status, errors=[message])

    def check_caller(self, request: Request) -> Response | None:
        wanted = self.require_user_id
        if wanted is not None and request.headers.get("user-id") != wanted:
            return self.error(403, "FORBIDDEN", "an API-to-API connection needs its user-id header")
        return None

    # -- Python helpers for tests ------------------------------------------------------------
    def contacts(self) -> list[Record]:
        with self._lock:
            return copy.deepcopy(list(self._records.values()))

    def contact(self, external_id: str) -> Record | None:
        with self._lock:
            return copy.deepcopy(self._records.get(external_id))

    def edit(self, external_id: str, **fields: Any) -> None:
        """Change fields as a user would in Conga; None clears a field."""
        with self._lock:
            self._merge(self._records[external_id], fields)

    def add_contact(self, record: Record) -> None:
        """Insert as another integration would, without validation."""
        with self._lock:
            stored = {"Id": str(uuid.uuid4()), **copy.deepcopy(record)}
            self._records[str(stored["ExternalId"])] = stored

    def remove(self, external_id: str) -> None:
        with self._lock:
            del self._records[external_id]

    # -- routes ------------------------------------------------------------------------------
    def _routes(self) -> None:
        add = self.server.add_route
        add("POST", "/api/v1/auth/connect/token", self._token)
        add("GET", _OBJECT, self.api(self._refusing(self._list)))
        add("POST", _OBJECT, self.api(self._refusing(self._create_one), "creates_single"))
        add("POST", _OBJECT + "/query", self.api(self._refusing(self._query), "queries", read=True))
        add("PATCH", _OBJECT + "/bulk", self.api(self._refusing(self._bulk_upsert), "upserts_bulk"))
        add("GET", _BY_EXTERNAL_ID, self.api(self._refusing(self._get_one)))
        add("PUT", _BY_EXTERNAL_ID, self.api(self._refusing(self._upsert_one), "upserts_single"))
        add("DELETE", _BY_EXTERNAL_ID, self.api(self._refusing(self._delete_one), "deletes"))

    def _refusing(self, handler: Handler) -> Handler:
        def refusing(request: Request) -> Response:
            try:
                return handler(request)
            except (_Invalid, ValueError) as exc:
                return self.error(400, "BAD_REQUEST", str(exc))

        return refusing

    def _token(self, request: Request) -> Response:
        with self._lock:
            self.count("token_requests")
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type"})
        if not (
            secrets.compare_digest(form.get("client_id", "").encode(), self.client_id.encode())
            and secrets.compare_digest(
                form.get("client_secret", "").encode(), self.client_secret.encode()
            )
        ):
            return Response(400, {"error": "invalid_client"})
        ttl = self.token_ttl
        return Response(
            200,
            {
                "access_token": self.issue_token(),
                "token_type": "Bearer",
                "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
            },
        )

    # -- handlers (lock held) ----------------------------------------------------------------
    def _list(self, request: Request) -> Response:
        size = int_arg(request, "pageSize", 50, 1, MAX_PAGE_SIZE)
        number = int_arg(request, "pageNumber", 1, 1, 10**6)
        found = list(self._records.values())
        chunk = found[(number - 1) * size : number * size]
        # RecordCount is the page's count: the listing documents no total.
        return envelope(
            200,
            copy.deepcopy(chunk),
            RecordCount=len(chunk),
            HasMoreRecords=number * size < len(found),
        )

    def _query(self, request: Request) -> Response:
        query = json_body(request)
        if not isinstance(query, dict):
            raise ValueError("the body must be a query object")
        unknown = sorted(set(query) - QUERY_FIELDS)
        if unknown:
            raise _Invalid(f"Found unknown field(s): {', '.join(unknown)}")
        if query.get("Criteria"):
            raise _Invalid("the sandbox answers queries without Criteria only")
        found = list(self._records.values())
        skip = int(query.get("Skip") or 0)
        limit = query.get("Limit")
        chunk = found[skip : skip + int(limit)] if limit is not None else found[skip:]
        select = query.get("Select")
        if select:
            chunk = [{k: r[k] for k in select if k in r} for r in chunk]
        total = request.arg("IncludeTotalCount") == "true"
        return envelope(
            200,
            copy.deepcopy(chunk),
            RecordCount=len(found) if total else len(chunk),
            HasMoreRecords=skip + len(chunk) < len(found),
        )

    def _bulk_upsert(self, request: Request) -> Response:
        body = json_body(request)
        if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
            raise ValueError("the body must be a JSON array of records")
        if len(body) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} records per call")
        by = request.arg("UpdateByField") or "Id"  # "Default value set to Id"
        if by not in ("Id", "ExternalId"):
            raise _Invalid("UpdateByField must be Id or ExternalId")
        self._known_fields(body)
        problems = []
        for record in body:
            try:
                self._check_bulk(record, by)
            except _Invalid as exc:
                problems.append(f"{record.get('ExternalId')}: {exc}")
        if problems:  # all or nothing
            return envelope(400, errors=problems)
        for record in body:
            self._upsert(record)
        return envelope(200)

    def _check_bulk(self, record: Record, by: str) -> None:
        external_id = record.get("ExternalId")
        if by == "ExternalId":
            if not isinstance(external_id, str) or not external_id:
                raise _Invalid("ExternalId is required to upsert by ExternalId")
            self._check(record, external_id)
            return
        # By Id: a record without Id is a new one, its ExternalId must be unique.
        if "Id" not in record:
            if isinstance(external_id, str) and external_id in self._records:
                raise _Invalid(f"a record with ExternalId {external_id} already exists")
            self._check(record, external_id, new=True)
            return
        current = next((r for r in self._records.values() if r["Id"] == record["Id"]), None)
        self._check(record, current["ExternalId"] if current else external_id)

    def _create_one(self, request: Request) -> Response:
        record = json_body(request)
        if not isinstance(record, dict):
            raise ValueError("the body must be a record")
        self._known_fields([record])
        external_id = record.get("ExternalId")
        if isinstance(external_id, str) and external_id in self._records:
            raise _Invalid(f"a record with ExternalId {external_id} already exists")
        self._check(record, external_id, new=True)
        stored, _ = self._upsert(record)
        return envelope(201, stored["Id"])

    def _upsert_one(self, request: Request) -> Response:
        record = json_body(request)
        if not isinstance(record, dict):
            raise ValueError("the body must be a record")
        external_id = request.params["external_id"]
        # The documented body is the Contact schema: no ExternalId, no other field.
        self._known_fields([record], schema=self.schema - {"ExternalId"})
        if external_id not in self._records:
            return self.error(404, "NOT_FOUND", "Record not found")
        self._check(record, external_id)
        stored, _ = self._upsert({**record, "ExternalId": external_id})
        data = stored if request.arg("IncludeRecordPayloadInResponse") == "true" else None
        return envelope(200, copy.deepcopy(data))

    def _get_one(self, request: Request) -> Response:
        stored = self._records.get(request.params["external_id"])
        if stored is None:
            return self.error(404, "NOT_FOUND", "Record not found")
        return envelope(200, copy.deepcopy(stored))

    def _delete_one(self, request: Request) -> Response:
        if self._records.pop(request.params["external_id"], None) is None:
            return self.error(404, "NOT_FOUND", "Record not found")
        self.count("records_deleted")
        return envelope(200, True)

    # -- record rules ------------------------------------------------------------------------
    def _known_fields(self, records: list[Record], schema: set[str] | None = None) -> None:
        allowed = self.schema if schema is None else schema
        unknown = sorted({f for r in records for f in r} - allowed)
        if unknown:
            raise _Invalid(f"Found unknown field(s): {', '.join(unknown)}")

    def _check(self, record: Record, external_id: Any, *, new: bool = False) -> None:
        if not isinstance(external_id, str) or not external_id:
            raise _Invalid("ExternalId is required")
        current = None if new else self._records.get(external_id)
        if "Id" in record and not new and (current is None or record["Id"] != current["Id"]):
            raise _Invalid("Id does not match the record's Id; an Id never changes")
        last = record.get("LastName", current.get("LastName") if current else None)
        if not isinstance(last, str) or not last.strip():
            raise _Invalid("LastName is required")
        for name, value in record.items():
            if name in OBJECT_FIELDS:
                if value is not None and not isinstance(value, dict):
                    raise _Invalid(f"{name} must be an object {{Id, Name}}")
            elif name in BOOLEAN_FIELDS:
                if not isinstance(value, bool):
                    raise _Invalid(f"{name} must be true or false")
            elif value is not None and not isinstance(value, str):
                raise _Invalid(f"{name} must be text")
            elif value is not None and name not in LONG_TEXT and len(value) > TEXT_MAX:
                raise _Invalid(f"{name} is longer than {TEXT_MAX} characters")
        email = record.get("Email")
        if email is not None and not _EMAIL.fullmatch(email):
            raise _Invalid("Email is not a valid e-mail address")

    def _upsert(self, record: Record) -> tuple[Record, bool]:
        external_id = record["ExternalId"]
        current = self._records.get(external_id)
        created = current is None
        if current is None:
            current = {"Id": str(uuid.uuid4()), "ExternalId": external_id, "CreatedDate": _now()}
            self._records[external_id] = current
        self._merge(current, {k: v for k, v in record.items() if k != "Id"})
        current["ModifiedDate"] = _now()
        self.count("records_upserted")
        return current, created

    @staticmethod
    def _merge(stored: Record, fields: Record) -> None:
        for name, value in fields.items():
            if value is None:
                stored.pop(name, None)
            else:
                stored[name] = copy.deepcopy(value)
