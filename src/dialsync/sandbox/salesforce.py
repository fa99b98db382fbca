"""Loopback fake of the Salesforce REST API for Contacts: OAuth, SOQL, paging, deletes, faults.

It follows ``shared/reference/salesforce.md`` so the real simple-salesforce client is exercised
over real HTTPS. What makes incremental reads hard is reproduced on purpose: one-second
``SystemModstamp`` stamps shared by many rows, Ids that do not follow insertion order, query
snapshots behind locators, a recycle bin that forgets after 15 days, hard deletes that only
``deleted`` reports, late-committing rows, expiring sessions and a daily API limit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from dialsync.sandbox import soql
from dialsync.sandbox.server import Request, Response, SandboxServer
from dialsync.sandbox.tls import TLSFiles, make_tls_files, server_context

ORG_ID = "00D5e000000AbCdEAK"
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
MIN_BATCH, MAX_BATCH = 200, 2000  # Sforce-Query-Options batchSize bounds (REST API guide)
OPEN_CURSORS = 10  # Salesforce keeps 10 open query cursors per user, dropping the oldest
CURSOR_IDLE = timedelta(minutes=15)  # an unused query locator expires after 15 minutes
RECYCLE_BIN = timedelta(days=15)  # getDeleted answers for the last 15 days at most
REPLICATION_REACH = timedelta(days=30)  # getDeleted refuses a start older than 30 days
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# golden-ratio multiplier, coprime with 62**9: a bijection, so Ids stay unique, yet consecutive
# inserts land far apart and Id order is not insertion order (real Ids promise no order either)
_SCRAMBLE = 8366379594239805
_DATA = r"/services/data/v(?P<version>\d+\.\d)"

# name, describe type, label, nillable; order as in the real describe
_CONTACT_FIELDS: tuple[tuple[str, str, str, bool], ...] = (
    ("Id", "id", "Contact ID", False),
    ("IsDeleted", "boolean", "Deleted", False),
    ("MasterRecordId", "reference", "Master Record ID", True),
    ("AccountId", "reference", "Account ID", True),
    ("LastName", "string", "Last Name", False),
    ("FirstName", "string", "First Name", True),
    ("Salutation", "picklist", "Salutation", True),
    ("Name", "string", "Full Name", False),
    ("MailingStreet", "textarea", "Mailing Street", True),
    ("MailingCity", "string", "Mailing City", True),
    ("MailingState", "string", "Mailing State/Province", True),
    ("MailingPostalCode", "string", "Mailing Zip/Postal Code", True),
    ("MailingCountry", "string", "Mailing Country", True),
    ("MailingStateCode", "picklist", "Mailing State/Province Code", True),
    ("MailingCountryCode", "picklist", "Mailing Country Code", True),
    ("Phone", "phone", "Business Phone", True),
    ("Fax", "phone", "Business Fax", True),
    ("MobilePhone", "phone", "Mobile Phone", True),
    ("HomePhone", "phone", "Home Phone", True),
    ("OtherPhone", "phone", "Other Phone", True),
    ("AssistantPhone", "phone", "Asst. Phone", True),
    ("Email", "email", "Email", True),
    ("Title", "string", "Title", True),
    ("Department", "string", "Department", True),
    ("LeadSource", "picklist", "Lead Source", True),
    ("DoNotCall", "boolean", "Do Not Call", False),
    ("OwnerId", "reference", "Owner ID", False),
    ("CreatedDate", "datetime", "Created Date", False),
    ("LastModifiedDate", "datetime", "Last Modified Date", False),
    ("SystemModstamp", "datetime", "System Modstamp", False),
)
_PICKLIST_ONLY = ("MailingStateCode", "MailingCountryCode")
_SYSTEM = frozenset(
    {
        "Id",
        "IsDeleted",
        "MasterRecordId",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "Name",
    }
)
# reference field -> (relationship name, target object)
_REFERENCES = {
    "MasterRecordId": ("MasterRecord", "Contact"),
    "AccountId": ("Account", "Account"),
    "OwnerId": ("Owner", "User"),
}
_RELATED_FIELDS = {
    "Account.Id": "id",
    "Account.Name": "string",
    "Account.Type": "picklist",
    "Owner.Id": "id",
    "Owner.Name": "string",
}
# integration values: with state and country picklists on, Salesforce keeps name and code in step
_COUNTRIES = {
    "US": "United States",
    "CA": "Canada",
    "GB": "United Kingdom",
    "DE": "Germany",
    "FR": "France",
    "ES": "Spain",
    "IT": "Italy",
    "NL": "Netherlands",
    "IE": "Ireland",
    "PT": "Portugal",
    "AU": "Australia",
    "BR": "Brazil",
    "MX": "Mexico",
    "IN": "India",
    "JP": "Japan",
}


def make_id(prefix: str, number: int) -> str:
    """An 18-character Id: key prefix, pod, reserved char, 9 base-62 digits, case checksum."""
    n = (number * _SCRAMBLE) % 62**9
    digits = ""
    for _ in range(9):
        n, r = divmod(n, 62)
        digits = _B62[r] + digits
    return soql.id18(f"{prefix}5e0{digits}")


def _floor_minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def _utc(value: datetime) -> datetime:
    # a naive datetime from a test is taken as UTC, never as the machine's local time
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _stamp(value: datetime) -> datetime:
    return _utc(value).replace(microsecond=0)  # SystemModstamp has one-second precision


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, [{"message": message, "errorCode": code}])


def _jsonable(value: Any) -> Any:
    return soql.format_datetime(value) if isinstance(value, datetime) else value


@dataclass
class _Cursor:
    rows: list[dict[str, Any]]  # the snapshot: row dicts are never mutated, only replaced
    query: soql.Query
    batch: int
    used_at: datetime


@dataclass
class _Fault:
    remaining: int
    status: int
    error_code: str
    message: str
    path_contains: str
    drop: bool


class _SalesforceServer(SandboxServer):
    """Answers the base server's own 404/405 the Salesforce way and stamps API usage."""

    sandbox: SalesforceSandbox

    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        body = response.body
        if isinstance(body, dict) and body.get("code") == "NOT_FOUND":
            response = _error(404, "NOT_FOUND", "The requested resource does not exist")
        elif isinstance(body, dict) and body.get("code") == "METHOD_NOT_ALLOWED":
            message = f"HTTP Method '{request.method}' not allowed. Allowed are GET,HEAD"
            response = _error(405, "METHOD_NOT_ALLOWED", message)
        if request.path.startswith("/services/data/"):
            response.headers["Sforce-Limit-Info"] = self.sandbox.limit_info()
        return response


class SalesforceSandbox:
    def __init__(
        self,
        *,
        tls_dir: Path,
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        jwt_public_key_pem: bytes | None = None,
        jwt_username: str | None = None,
        api_version: str = "62.0",
        picklists_enabled: bool = False,
        session_ttl: float = 7200,
        api_limit: int = 1_000_000,
        latency: float = 0.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.jwt_public_key_pem = jwt_public_key_pem
        self.jwt_username = jwt_username
        self.api_version = api_version
        self.picklists_enabled = picklists_enabled
        self.session_ttl = timedelta(seconds=session_ttl)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tls = make_tls_files(tls_dir)
        self._lock = threading.RLock()
        self._fields = [
            f for f in _CONTACT_FIELDS if picklists_enabled or f[0] not in _PICKLIST_ONLY
        ]
        self._types = {f[0]: f[1] for f in self._fields}
        self._query_types = {**self._types, **_RELATED_FIELDS}
        self._by_lower = {name.lower(): name for name in self._types}
        self._template: dict[str, Any] = dict.fromkeys(self._types)
        self._rows: dict[str, dict[str, Any]] = {}  # Id -> row; a change replaces the dict
        self._delete_log: dict[str, datetime] = {}  # Id -> deletedDate, soft and hard
        self._horizon: datetime | None = None  # purge_deleted_before moved it here
        self._accounts: dict[str, dict[str, Any]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._counters: dict[str, int] = {}
        self._tokens: dict[str, datetime] = {}
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._faults: list[_Fault] = []
        self._api_usage = 0
        self._api_limit = api_limit
        # Called (under the lock, in commit order) for every Contact change: the Pub/Sub
        # sandbox turns each into a ContactChangeEvent. Arguments: change type, the Ids, the
        # names of the fields the change set, and the commit time.
        # Entities selected for Change Data Capture (Setup > Change Data Capture)
        self.cdc_entities: set[str] = {"Contact"}
        self.change_listeners: list[Callable[[str, list[str], list[str], datetime], None]] = []
        self.default_owner_id = self.insert_user("Sandbox Admin")
        self._server = _SalesforceServer(tls=server_context(self._tls), latency=latency)
        self._server.sandbox = self
        self._server.before_request = self._before_request
        self._routes()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SalesforceSandbox:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> SalesforceSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def ca_file(self) -> Path:
        return self._tls.ca_file

    @property
    def tls_files(self) -> TLSFiles:
        return self._tls

    def describe_types(self) -> dict[str, str]:
        """Contact field name -> describe type, in describe order."""
        return dict(self._types)

    @property
    def server(self) -> SandboxServer:
        return self._server

    @property
    def api_usage(self) -> int:
        with self._lock:
            return self._api_usage

    def now(self) -> datetime:
        return _utc(self._clock())

    def limit_info(self) -> str:
        with self._lock:
            return f"api-usage={self._api_usage}/{self._api_limit}"

    # -- data ------------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        self._counters[prefix] = self._counters.get(prefix, 0) + 1
        return make_id(prefix, self._counters[prefix])

    def insert_user(self, name: str) -> str:
        with self._lock:
            user_id = self._new_id("005")
            self._users[user_id] = {"Id": user_id, "Name": name}
            return user_id

    def insert_account(self, name: str, type: str | None = None) -> str:
        with self._lock:
            account_id = self._new_id("001")
            self._accounts[account_id] = {"Id": account_id, "Name": name, "Type": type}
            return account_id

    def update_account(self, account_id: str, **fields: Any) -> None:
        """Edit an Account. As in Salesforce, its Contacts keep their SystemModstamp."""
        with self._lock:
            self._accounts[account_id].update(fields)

    def insert(self, fields: Mapping[str, Any], stamp: datetime | None = None) -> str:
        return self.insert_many([fields], stamp)[0]

    def insert_late(self, fields: Mapping[str, Any], stamp: datetime) -> str:
        """A row stamped in the past that only becomes visible now (a long transaction)."""
        return self.insert(fields, stamp)

    def insert_many(
        self, rows: Iterable[Mapping[str, Any]], stamp: datetime | None = None
    ) -> list[str]:
        with self._lock:
            at = _stamp(stamp or self.now())
            counter = self._counters.get("003", 0)
            built: dict[str, dict[str, Any]] = {}
            base = {**self._template, "IsDeleted": False, "DoNotCall": False,
                    "OwnerId": self.default_owner_id, "CreatedDate": at,
                    "LastModifiedDate": at, "SystemModstamp": at}  # fmt: skip
            try:
                for fields in rows:
                    values = self._normalise(fields)
                    row = {**base, **values}
                    if not row["LastName"]:
                        raise ValueError("Required fields are missing: [LastName]")
                    row["Id"] = new_id = row["Id"] or self._new_id("003")
                    if new_id in built or new_id in self._rows or new_id in self._delete_log:
                        raise ValueError(f"duplicate value found: Id {new_id}")
                    self._finish(row, values)
                    built[new_id] = row
            except Exception:
                self._counters["003"] = counter  # all or nothing, like a DML batch
                raise
            self._rows.update(built)
            for new_id, row in built.items():
                self._changed("CREATE", [new_id], [k for k, v in row.items() if v is not None], at)
            return list(built)

    def update(self, id: str, fields: Mapping[str, Any], stamp: datetime | None = None) -> None:
        with self._lock:
            old = self._live(id)
            values = self._normalise(fields)
            at = _stamp(stamp or self.now())
            row = {**old, "LastModifiedDate": at, "SystemModstamp": at, **values}
            self._finish(row, values)
            self._rows[id] = row
            self._changed("UPDATE", [id], [k for k in row if row[k] != old.get(k)], at)

    def soft_delete(self, id: str, stamp: datetime | None = None) -> None:
        with self._lock:
            at = _stamp(stamp or self.now())
            self._rows[id] = {
                **self._live(id),
                "IsDeleted": True,
                "LastModifiedDate": at,
                "SystemModstamp": at,
            }
            self._delete_log[id] = at
            self._changed("DELETE", [id], [], at)

    def hard_delete(self, id: str, stamp: datetime | None = None) -> None:
        """Gone from query and queryAll; ``deleted`` still lists it until purged."""
        with self._lock:
            if id not in self._rows:
                raise KeyError(id)
            live = not self._rows.pop(id)["IsDeleted"]
            if live:  # emptying the recycle bin publishes nothing; a hard delete does
                self._changed("DELETE", [id], [], _stamp(stamp or self.now()))
            # emptying the recycle bin keeps the original deletion date in the log
            self._delete_log.setdefault(id, _stamp(stamp or self.now()))

    def merge(self, winner_id: str, loser_id: str, stamp: datetime | None = None) -> None:
        with self._lock:
            at = _stamp(stamp or self.now())
            winner, loser = self._live(winner_id), self._live(loser_id)
            if winner_id == loser_id:
                raise ValueError("cannot merge a record with itself")
            self._rows[winner_id] = {**winner, "LastModifiedDate": at, "SystemModstamp": at}
            self._rows[loser_id] = {
                **loser,
                "IsDeleted": True,
                "MasterRecordId": winner_id,
                "LastModifiedDate": at,
                "SystemModstamp": at,
            }
            self._delete_log[loser_id] = at
            self._changed("UPDATE", [winner_id], ["LastModifiedDate", "SystemModstamp"], at)
            self._changed("DELETE", [loser_id], [], at)

    def undelete(self, id: str, stamp: datetime | None = None) -> None:
        with self._lock:
            row = self._rows.get(id)
            if row is None or not row["IsDeleted"]:
                raise KeyError(f"{id} is not in the recycle bin")
            at = _stamp(stamp or self.now())
            self._rows[id] = {
                **row,
                "IsDeleted": False,
                "MasterRecordId": None,
                "LastModifiedDate": at,
                "SystemModstamp": at,
            }
            self._delete_log.pop(id, None)
            self._changed("UNDELETE", [id], [], at)

    def purge_deleted_before(self, dt: datetime) -> None:
        """Empty the recycle bin up to ``dt``: those deletes are forgotten by every API."""
        with self._lock:
            dt = _utc(dt)
            self._horizon = max(self._horizon or dt, dt)
            for id, at in list(self._delete_log.items()):
                if at < dt:
                    del self._delete_log[id]
                    self._rows.pop(id, None)

    def _changed(self, kind: str, ids: list[str], fields: list[str], at: datetime) -> None:
        for listener in self.change_listeners:
            listener(kind, ids, [f for f in fields if f != "Id"], at)

    def token_valid(self, token: str) -> bool:
        """An access token this org issued and that has not expired (the Pub/Sub sandbox)."""
        with self._lock:
            issued = self._tokens.get(token)
            return issued is not None and self.now() - issued <= self.session_ttl

    def contact(self, id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._rows.get(id)
            return dict(row) if row is not None else None

    def live_contacts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._rows.values() if not r["IsDeleted"]]

    def _live(self, id: str) -> dict[str, Any]:
        row = self._rows.get(id)
        if row is None or row["IsDeleted"]:
            raise KeyError(f"entity is deleted or unknown: {id}")
        return row

    def _normalise(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in fields.items():
            name = self._by_lower.get(key.lower())
            if name is None:
                raise ValueError(f"No such column '{key}' on entity 'Contact'")
            kind = self._types[name]
            if kind == "datetime":
                if not isinstance(value, str | datetime):
                    raise ValueError(f"{name} must be a datetime")
                value = _stamp(soql.parse_datetime(value) if isinstance(value, str) else value)
            elif kind == "boolean":
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be a boolean")
            elif value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
            # Salesforce stores an empty text as null
            out[name] = value if kind == "boolean" else value or None
        return out

    def _finish(self, row: dict[str, Any], values: Mapping[str, Any]) -> None:
        if "Name" not in values:
            row["Name"] = " ".join(p for p in (row["FirstName"], row["LastName"]) if p) or None
        if row["AccountId"] is not None and row["AccountId"] not in self._accounts:
            raise ValueError(f"invalid cross reference id: AccountId {row['AccountId']}")
        if row["OwnerId"] not in self._users:
            raise ValueError(f"invalid cross reference id: OwnerId {row['OwnerId']}")
        if self.picklists_enabled:
            code, country = row["MailingCountryCode"], row["MailingCountry"]
            if code and not country:
                row["MailingCountry"] = _COUNTRIES.get(code)
            elif country and not code:
                by_name = {v.lower(): k for k, v in _COUNTRIES.items()}
                row["MailingCountryCode"] = by_name.get(country.lower())

    def _value(self, row: Mapping[str, Any], name: str) -> Any:
        if "." not in name:
            return row[name]
        relation, column = name.split(".", 1)
        target = self._related(row, relation)
        return None if target is None else target[column]

    def _related(self, row: Mapping[str, Any], relation: str) -> dict[str, Any] | None:
        if relation == "Account":
            return self._accounts.get(row["AccountId"]) if row["AccountId"] else None
        return self._users.get(row["OwnerId"])

    # -- faults and limits -----------------------------------------------------------------
    def expire_sessions(self) -> None:
        with self._lock:
            self._tokens.clear()

    def fail_next(
        self,
        n: int,
        status: int,
        error_code: str,
        message: str,
        path_contains: str = "",
        *,
        drop: bool = False,
    ) -> None:
        """The next ``n`` data calls matching ``path_contains`` fail (or, with drop, hang up)."""
        with self._lock:
            self._faults.append(_Fault(n, status, error_code, message, path_contains, drop))

    def set_api_limit(self, n: int) -> None:
        with self._lock:
            self._api_limit = n

    def _before_request(self, request: Request) -> Response | None:
        match = re.match(_DATA + "/", request.path)
        if match is None:
            return None
        with self._lock:
            version = match.group("version")
            if not 20.0 <= float(version) <= float(self.api_version):
                return _error(404, "NOT_FOUND", "The requested resource does not exist")
            self._faults = [f for f in self._faults if f.remaining > 0]
            for fault in self._faults:
                if fault.path_contains in request.path:
                    fault.remaining -= 1
                    self._api_usage += 1
                    if fault.drop:
                        return Response(drop=True)
                    if fault.status == 503:
                        # an outage page is not JSON: clients must cope with a plain body
                        body = f"Service Unavailable: {fault.message}".encode()
                        return Response(503, body, {"Content-Type": "text/plain"})
                    return _error(fault.status, fault.error_code, fault.message)
            if not self._authorised(request):
                return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
            self._api_usage += 1
            if self._api_usage > self._api_limit:
                return _error(
                    403,
                    "REQUEST_LIMIT_EXCEEDED",
                    f"TotalRequests Limit exceeded. Limit: {self._api_limit}",
                )
        return None

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        issued = self._tokens.get(token.strip()) if scheme in ("Bearer", "OAuth") else None
        if issued is None:
            return False
        if self.now() - issued > self.session_ttl:
            del self._tokens[token.strip()]
            return False
        return True

    # -- HTTP ------------------------------------------------------------------------------
    def _routes(self) -> None:
        add = self._server.add_route
        add("POST", "/services/oauth2/token", self._token)
        add("GET", _DATA + "/sobjects/Contact/describe/?", self._describe)
        add("GET", _DATA + "/sobjects/Contact/deleted/?", self._deleted)
        add("GET", _DATA + "/query/?", lambda r: self._query(r, include_deleted=False))
        add("GET", _DATA + "/queryAll/?", lambda r: self._query(r, include_deleted=True))
        add("GET", _DATA + "/tooling/query/?", self._tooling_query)
        add("GET", _DATA + r"/(?:query|queryAll)/(?P<locator>[^/]+)-(?P<offset>\d+)", self._more)
        add("POST", "/_sandbox/contacts", self._admin_insert)
        add("GET", "/_sandbox/contacts", lambda r: Response(200, self._admin_rows()))
        add("PATCH", "/_sandbox/contacts/(?P<id>[^/]+)", self._admin_update)
        add("DELETE", "/_sandbox/contacts/(?P<id>[^/]+)", self._admin_delete)
        add("POST", "/_sandbox/expire-sessions", self._admin_expire)
        add("POST", "/_sandbox/fail-next", self._admin_fail_next)
        add("GET", "/_sandbox/stats", self._admin_stats)

    def _token(self, request: Request) -> Response:
        form = request.form()
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            client_id, secret = form.get("client_id"), form.get("client_secret")
            basic = request.headers.get("authorization", "")
            if basic.startswith("Basic "):
                try:
                    pair = base64.b64decode(basic[6:], validate=True).decode()
                except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
                    pair = ""
                client_id, _, secret = pair.partition(":")
            if client_id != self.client_id or secret != self.client_secret:
                return Response(
                    400,
                    {"error": "invalid_client", "error_description": "invalid client credentials"},
                )
            return self._issue()
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            problem = self._check_assertion(form.get("assertion", ""))
            if problem:
                return Response(400, {"error": "invalid_grant", "error_description": problem})
            return self._issue()
        return Response(
            400,
            {"error": "unsupported_grant_type", "error_description": "grant type not supported"},
        )

    def _check_assertion(self, assertion: str) -> str | None:
        if self.jwt_public_key_pem is None:
            return "invalid assertion"
        try:
            claims = jwt.decode(
                assertion,
                self.jwt_public_key_pem,
                algorithms=["RS256"],
                audience=[self.url, *LOGIN_AUDIENCES],
                issuer=self.client_id,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.InvalidAudienceError:
            return "audience is invalid"
        except jwt.ExpiredSignatureError:
            return "expired authorization code"
        except jwt.InvalidIssuerError:
            return "client identifier invalid"
        except jwt.PyJWTError:
            return "invalid assertion"
        if claims.get("sub") != self.jwt_username:
            return "user hasn't approved this consumer"
        return None

    def _issue(self) -> Response:
        with self._lock:
            issued = self.now()
            token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(72)}"
            self._tokens[token] = issued
        identity = f"{self.url}/id/{ORG_ID}/{self.default_owner_id}"
        issued_at = str(int(issued.timestamp() * 1000))
        mac = hmac.new(self.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256)
        return Response(
            200,
            {
                "access_token": token,
                "instance_url": self.url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
                "scope": "api",
                "signature": base64.b64encode(mac.digest()).decode(),
            },
        )

    def _tooling_query(self, request: Request) -> Response:
        """Only what doctor asks: the Change Data Capture selection (PlatformEventChannelMember)."""
        if "PlatformEventChannelMember" not in (request.arg("q") or ""):
            return _error(400, "INVALID_TYPE", "sObject type is not supported by the sandbox")
        with self._lock:
            rows = [
                {
                    "attributes": {"type": "PlatformEventChannelMember"},
                    "EventChannel": "ChangeEvents",
                    "SelectedEntity": f"{entity}ChangeEvent",
                }
                for entity in sorted(self.cdc_entities)
            ]
        return Response(200, {"totalSize": len(rows), "done": True, "records": rows})

    def _describe(self, request: Request) -> Response:
        fields = []
        for name, kind, label, nillable in self._fields:
            relationship, target = _REFERENCES.get(name, (None, None))
            fields.append(
                {
                    "name": name,
                    "type": kind,
                    "label": label,
                    "nillable": nillable,
                    "relationshipName": relationship,
                    "referenceTo": [target] if target else [],
                    "custom": False,
                    "calculated": False,
                    "filterable": True,
                    "createable": name not in _SYSTEM,
                    "updateable": name not in _SYSTEM,
                    "picklistValues": [
                        {"value": c, "label": n, "active": True} for c, n in _COUNTRIES.items()
                    ]
                    if name == "MailingCountryCode"
                    else [],
                }
            )
        return Response(
            200,
            {
                "name": "Contact",
                "label": "Contact",
                "labelPlural": "Contacts",
                "keyPrefix": "003",
                "queryable": True,
                "fields": fields,
            },
        )

    def _query(self, request: Request, include_deleted: bool) -> Response:
        text = request.arg("q") or ""
        if not text.strip():
            return _error(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            parsed = soql.parse(text)
            if parsed.object_name.lower() != "contact":
                return _error(
                    400,
                    "INVALID_TYPE",
                    (
                        f"sObject type '{parsed.object_name}' is not supported. If you are "
                        "attempting to use a custom object, be sure to append the '__c' after the "
                        "entity name. Please reference your WSDL or the describe call for the "
                        "appropriate names."
                    ),
                )
            query = parsed.bind(self._query_types)
        except soql.SoqlError as exc:
            code = {
                soql.SoqlFieldError: "INVALID_FIELD",
                soql.SoqlTypeError: "INVALID_QUERY_FILTER_OPERATOR",
            }.get(type(exc), "MALFORMED_QUERY")
            return _error(400, code, soql.salesforce_message(text, exc))
        with self._lock:
            now = self.now()
            horizon = self._recycle_horizon(now)
            visible = (
                [r for r in self._rows.values() if not r["IsDeleted"]]
                if not include_deleted
                else [
                    r
                    for r in self._rows.values()
                    if not r["IsDeleted"] or self._delete_log.get(r["Id"], now) >= horizon
                ]
            )
            rows = query.apply(visible, self._value)
            if query.count_only:
                return Response(200, {"totalSize": len(rows), "done": True, "records": []})
            cursor = _Cursor(rows, query, _batch_size(request), now)
            return Response(200, self._page(cursor, 0, request.params["version"]))

    def _more(self, request: Request) -> Response:
        with self._lock:
            now = self.now()
            for key, stale in list(self._cursors.items()):
                if now - stale.used_at > CURSOR_IDLE:
                    del self._cursors[key]
            cursor = self._cursors.get(request.params["locator"])
            offset = int(request.params["offset"])
            if cursor is None or offset > len(cursor.rows):
                return _error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            cursor.used_at = now
            return Response(200, self._page(cursor, offset, request.params["version"]))

    def _page(self, cursor: _Cursor, offset: int, version: str) -> dict[str, Any]:
        end = offset + cursor.batch
        page: dict[str, Any] = {"totalSize": len(cursor.rows), "done": end >= len(cursor.rows)}
        if not page["done"]:
            locator = next((k for k, c in self._cursors.items() if c is cursor), None)
            if locator is None:
                locator = self._new_id("01g")
                self._cursors[locator] = cursor
                while len(self._cursors) > OPEN_CURSORS:
                    self._cursors.popitem(last=False)
            page["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        page["records"] = [
            self._record(r, cursor.query.fields, version) for r in cursor.rows[offset:end]
        ]
        return page

    def _record(self, row: Mapping[str, Any], fields: Iterable[str], version: str) -> Any:
        base = f"/services/data/v{version}/sobjects"
        record: dict[str, Any] = {
            "attributes": {"type": "Contact", "url": f"{base}/Contact/{row['Id']}"}
        }
        for name in fields:
            if "." not in name:
                record[name] = _jsonable(row[name])
                continue
            relation, column = name.split(".", 1)
            if relation not in record:
                target = self._related(row, relation)
                kind = "Account" if relation == "Account" else "User"
                record[relation] = (
                    None
                    if target is None
                    else {"attributes": {"type": kind, "url": f"{base}/{kind}/{target['Id']}"}}
                )
            if record[relation] is not None:
                record[relation][column] = _jsonable(self._value(row, name))
        return record

    def _recycle_horizon(self, now: datetime) -> datetime:
        return _floor_minute(max(self._horizon or now - RECYCLE_BIN, now - RECYCLE_BIN))

    def _deleted(self, request: Request) -> Response:
        try:
            start = soql.parse_datetime(request.arg("start") or "")
            end = soql.parse_datetime(request.arg("end") or "")
        except ValueError as exc:
            return _error(
                400,
                "INVALID_REPLICATION_DATE",
                f"start and end must be ISO-8601 datetimes with a zone: {exc}",
            )
        with self._lock:
            now = self.now()
            # Salesforce ignores the seconds of both bounds
            first, last = _floor_minute(start), _floor_minute(end)
            if first < now - REPLICATION_REACH:
                return _error(
                    400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago"
                )
            if first >= last:
                return _error(
                    400,
                    "INVALID_REPLICATION_DATE",
                    "startDate must chronologically precede endDate by more than one minute",
                )
            earliest = self._recycle_horizon(now)
            covered = _floor_minute(min(end, now))
            found = sorted(
                (at, id)
                for id, at in self._delete_log.items()
                if first <= at < covered and at >= earliest
            )
            return Response(
                200,
                {
                    "deletedRecords": [
                        {"id": id, "deletedDate": soql.format_datetime(at)} for at, id in found
                    ],
                    "earliestDateAvailable": soql.format_datetime(earliest),
                    "latestDateCovered": soql.format_datetime(covered),
                },
            )

    # -- admin routes for other processes --------------------------------------------------
    def _admin_rows(self) -> list[dict[str, Any]]:
        return [{k: _jsonable(v) for k, v in row.items()} for row in self.live_contacts()]

    def _admin_insert(self, request: Request) -> Response:
        body = request.json() or {}
        rows = body.get("contacts", [body])
        try:
            return Response(200, {"ids": self.insert_many(rows)})
        except ValueError as exc:
            return _error(400, "INVALID_FIELD", str(exc))

    def _admin_update(self, request: Request) -> Response:
        try:
            self.update(request.params["id"], request.json() or {})
        except KeyError as exc:
            return _error(404, "NOT_FOUND", str(exc))
        except ValueError as exc:
            return _error(400, "INVALID_FIELD", str(exc))
        return Response(204)

    def _admin_delete(self, request: Request) -> Response:
        try:
            if request.arg("hard", "false") == "true":
                self.hard_delete(request.params["id"])
            else:
                self.soft_delete(request.params["id"])
        except KeyError as exc:
            return _error(404, "NOT_FOUND", str(exc))
        return Response(204)

    def _admin_expire(self, request: Request) -> Response:
        self.expire_sessions()
        return Response(204)

    def _admin_fail_next(self, request: Request) -> Response:
        body = request.json() or {}
        self.fail_next(
            int(body.get("n", 1)),
            int(body.get("status", 500)),
            str(body.get("error_code", "UNKNOWN_EXCEPTION")),
            str(body.get("message", "sandbox fault")),
            str(body.get("path_contains", "")),
            drop=bool(body.get("drop", False)),
        )
        return Response(204)

    def _admin_stats(self, request: Request) -> Response:
        calls = len(self._server.requests(path_contains="/services/"))
        return Response(200, {"api_usage": self.api_usage, "requests": calls})


def _batch_size(request: Request) -> int:
    options = request.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options)
    size = int(match.group(1)) if match else MAX_BATCH
    return min(max(size, MIN_BATCH), MAX_BATCH)
