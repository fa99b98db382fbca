"""Loopback fake of Everbridge Suite contacts, as Everbridge documents them.

Sources, in order of authority where they speak:

- the vendor's OpenAPI documents (``api-evangelist/everbridge``: ``openapi/everbridge-contacts-
  api-openapi.yml`` "Everbridge Contacts API" version 1.0, ``openapi/everbridge-authentication-
  openapi.json`` "EB SUITE OAUTH AUTHENTICATION" version 1.0, ``openapi/everbridge-record-types-
  api-openapi.yml`` version 1.0);
- seed 002 (the vendor's "Update Contacts (Batch)" page) and reference/everbridge-and-conga.md.

What the specs document, followed by default:

- tokens: the form needs ``grant_type, client_id, client_secret, scope``; a refused request is a
  401 (the gateway maps every 4xx of the token service to 401); the ``id_token`` (the API's
  bearer) is issued only for an OpenID scope (``openid`` among the scopes), as OpenID Connect
  issues it; it lasts 28800 s;
- ``POST``/``PUT``/``DELETE /contacts/{organizationId}/batch`` answer ``200 {"code": 100,
  "message": "OK"}`` (``ContactBatchResponse``): no per-contact results;
- an organization that is not ours: ``401 "Org {id} is invalid."``; a batch delete naming a
  contact the organization does not hold: ``401 "contactIds invalid to the organization
  {org}"`` (nothing is deleted);
- ``GET /contacts/{organizationId}`` pages (``pageSize`` default 1000, at most 3000) with
  ``externalIds=`` to select contacts; ``GET /recordTypes/{organizationId}`` and
  ``GET /contactPaths/{organizationId}`` list the ids contacts refer to;
- ``externalId`` is at most 50 characters (``contactRequest``; the reference's 80 is older).

Where the spec and the seed disagree:

- the batch schema requires ``recordTypeId`` and, per path, ``pathId`` (with ``waitTime``,
  ``countryCode``, ``skipValidation``, ``pathEnable``), while seed 002, the vendor's own page for
  this very call, shows ``recordTypeName`` and ``prompt`` "also work well", and the spec's
  ``contactRequest`` lists both name fields. The sandbox follows the seed and accepts either
  (and does not insist on the four path flags, which the seed's examples leave out): refusing
  what the vendor says works would only test our reading of one schema. What dialsync sends is
  checked against the stricter batch schema by the contract suite instead.
- the seed's ``401 "Missing Organization Id"`` is kept for an empty organization id, the spec's
  ``"Org {id} is invalid."`` for a wrong one; the seed's ``300 "The externalId recordType not
  found in org."`` for an unknown record type (the spec documents no answer for it).

What neither says, chosen here: a batch holding one contact the sandbox would refuse (a bad
path value, an unknown attribute) is refused whole with the spec's ``400 {"message",
"status"}``, nothing applied. ``skip_invalid=True`` (an undocumented convenience) instead applies
the valid contacts, drops the others, and still answers ``100 OK``: a client must then notice
through a read which contacts are not there.

Full replacement (seed 002): a field the payload omits is cleared, groups excepted.
"""

from __future__ import annotations

import copy
import math
import re
import secrets
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from dialsync.sandbox.dialer import DialerSandbox, int_arg, json_body
from dialsync.sandbox.server import Handler, Request, Response

Contact = dict[str, Any]
_ORG = r"/rest/contacts/(?P<org>[^/]*)"
DEFAULT_PAGE_SIZE = 1000  # "pageSize ... default: 1000"
MAX_PAGE_SIZE = 3000  # "Maximum is 3000"
EXTERNAL_ID_MAX = 50  # contactRequest.externalId maxLength
TOKEN_TTL = 28800  # the spec's example: "expires_in": 28800 (8 hours)
# What a contact may carry; anything else is refused for that contact.
CONTACT_FIELDS = frozenset(
    {
        "id",
        "externalId",
        "firstName",
        "lastName",
        "middleInitial",
        "suffix",
        "recordTypeId",
        "recordTypeName",
        "groups",
        "groupsName",
        "paths",
        "contactAttributes",
        "timezoneId",
        "address",
        "topics",
        "country",
        "businessName",
        "preferredLanguage",
        "vip",
        "expatriate",
    }
)
PATH_FIELDS = frozenset(
    {"pathId", "prompt", "countryCode", "value", "waitTime", "skipValidation", "pathEnable"}
    | {"quietTimeFrames", "phoneExt", "status"}
)
DEFAULT_PATHS: dict[int, tuple[str, str]] = {  # pathId -> (prompt, kind)
    241901148045319: ("Mobile Phone", "phone"),
    241901148045320: ("Work Phone", "phone"),
    241901148045321: ("Home Phone", "phone"),
    241901148045322: ("Other Phone", "phone"),
    241901148045323: ("Email Address", "email"),
}
DEFAULT_RECORD_TYPES = {"Employee": 1533823015714817}
DEFAULT_ATTRIBUTES = {
    "Job Title": 1509768514502692,
    "Company": 1509768514502693,
    "Shift": 1509768514502694,
}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class _Refused(Exception):
    """One contact refused; its reason refuses the whole batch (or drops it: skip_invalid)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class EverbridgeSandbox(DialerSandbox):
    def __init__(
        self,
        *,
        organization_id: str = "453003085612771",
        client_id: str = "sandbox-everbridge",
        client_secret: str = "sandbox-everbridge-secret",
        username: str = "dialsync@example.com",
        password: str = "sandbox-everbridge-password",
        record_types: dict[str, int] | None = None,
        paths: dict[int, tuple[str, str]] | None = None,
        attributes: dict[str, int] | None = None,
        token_ttl: float = TOKEN_TTL,
        writes_per_minute: int | None = 300,  # "POST/PUT/PATCH 300 per minute"
        max_batch: int = 100,  # none is published; the sandbox holds clients to the advice
        skip_invalid: bool = False,  # undocumented: apply a batch's valid contacts only
        **options: Any,
    ) -> None:
        super().__init__(token_ttl=token_ttl, writes_per_minute=writes_per_minute, **options)
        self.organization_id = organization_id
        self.client_id, self.client_secret = client_id, client_secret
        self.username, self.password = username, password
        self.record_types = dict(record_types or DEFAULT_RECORD_TYPES)
        self.paths = dict(paths or DEFAULT_PATHS)
        self.attributes = dict(attributes or DEFAULT_ATTRIBUTES)
        self.max_batch = max_batch
        self.skip_invalid = skip_invalid
        self._contacts: dict[str, Contact] = {}  # externalId -> stored contact
        self._next_id = 1_000_000
        self._routes()

    def start(self) -> EverbridgeSandbox:
        super().start()
        return self

    def __enter__(self) -> EverbridgeSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        return self.url + "/rest"

    @property
    def token_url(self) -> str:
        return self.url + "/authorization/v1/tokens"

    def error(self, status: int, code: str, message: str) -> Response:
        # The spec's ``error`` schema: {message, status}, both required; no code.
        return Response(status, {"message": message, "status": status})

    # -- Python helpers for tests ------------------------------------------------------------
    def contacts(self) -> list[Contact]:
        with self._lock:
            return copy.deepcopy(list(self._contacts.values()))

    def contact(self, external_id: str) -> Contact | None:
        with self._lock:
            return copy.deepcopy(self._contacts.get(external_id))

    def edit(self, external_id: str, **fields: Any) -> None:
        """Change fields as a user would in Everbridge's UI; None removes a field."""
        with self._lock:
            stored = self._contacts[external_id]
            for name, value in fields.items():
                if value is None:
                    stored.pop(name, None)
                else:
                    stored[name] = copy.deepcopy(value)

    def add_contact(self, contact: Contact) -> None:
        """Insert as an import or another integration would, without validation."""
        with self._lock:
            self._store(dict(contact))

    def remove(self, external_id: str) -> None:
        with self._lock:
            del self._contacts[external_id]

    # -- routes ------------------------------------------------------------------------------
    def _routes(self) -> None:
        add = self.server.add_route
        add("POST", "/authorization/v1/tokens", self._token)
        add("GET", "/rest/recordTypes/(?P<org>[^/]*)", self.api(self._org(self._record_types)))
        add("GET", "/rest/contactPaths/(?P<org>[^/]*)", self.api(self._org(self._paths_list)))
        add("GET", _ORG, self.api(self._org(self._list)))
        add("POST", _ORG + "/batch", self.api(self._org(self._upsert_batch), "upserts_batch"))
        add("PUT", _ORG + "/batch", self.api(self._org(self._update_batch), "updates_batch"))
        add("DELETE", _ORG + "/batch", self.api(self._org(self._delete_batch), "deletes_batch"))
        add("GET", _ORG + "/(?P<id>[^/]+)", self.api(self._org(self._get_one)))
        add("DELETE", _ORG + "/(?P<id>[^/]+)", self.api(self._org(self._delete_one), "deletes"))

    def _org(self, handler: Handler) -> Handler:
        def checked(request: Request) -> Response:
            org = request.params.get("org")
            if not org:
                return self.error(401, "MISSING_ORGANIZATION", "Missing Organization Id")
            if org != self.organization_id:
                return self.error(401, "INVALID_ORGANIZATION", f"Org {org} is invalid.")
            try:
                result: Response = handler(request)
            except ValueError as exc:
                return self.error(400, "INVALID_REQUEST", str(exc))
            return result

        return checked

    def _token(self, request: Request) -> Response:
        with self._lock:
            self.count("token_requests")
        form = request.form()
        refused = Response(
            401,
            {
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "status": "401",
                "error": "Unauthorized",
                "message": "",
                "path": "/cas/oidc/token",
            },
        )
        # Required by the spec: grant_type, client_id, client_secret, scope.
        if form.get("grant_type") not in ("password", "client_credentials") or not form.get(
            "scope"
        ):
            return refused
        if not (
            secrets.compare_digest(form.get("client_id", "").encode(), self.client_id.encode())
            and secrets.compare_digest(
                form.get("client_secret", "").encode(), self.client_secret.encode()
            )
        ):
            return refused
        if form["grant_type"] == "password" and not (
            secrets.compare_digest(form.get("username", "").encode(), self.username.encode())
            and secrets.compare_digest(form.get("password", "").encode(), self.password.encode())
        ):
            return refused
        scopes = form["scope"].split()
        ttl = self.token_ttl
        answer: dict[str, Any] = {
            # The access token is not accepted by the API: the id_token is the bearer.
            "access_token": "AT-" + secrets.token_urlsafe(24),
            "refresh_token": "RT-" + secrets.token_urlsafe(24),
            "token_type": "bearer",
            "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
            "scope": " ".join(scopes),
        }
        if "openid" in scopes:  # OpenID Connect issues an id_token for the openid scope only
            answer["id_token"] = self.issue_token()
        return Response(200, answer)

    # -- handlers (lock held) ----------------------------------------------------------------
    def _batch(self, request: Request) -> list[Any]:
        body = json_body(request)
        if not isinstance(body, list):
            raise ValueError("type mismatch exception")
        if len(body) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} contacts per call")
        return body

    def _upsert_batch(self, request: Request) -> Response:
        return self._write(request, create=True)

    def _update_batch(self, request: Request) -> Response:
        return self._write(request, create=False)

    def _write(self, request: Request, *, create: bool) -> Response:
        items = self._batch(request)
        # The record type is the org's: one unknown refuses the whole call, as seed 002 lists.
        for item in items:
            if isinstance(item, dict) and self._record_type(item) is None:
                return self.error(
                    300, "RECORD_TYPE_NOT_FOUND", "The externalId recordType not found in org."
                )
        valid: list[tuple[Contact, Contact | None]] = []
        for item in items:
            try:
                contact = self._valid(item)
                current = self._contacts.get(contact["externalId"])
                if current is None and not create:
                    raise _Refused("MISSING_CONTACT", f"Contact {contact['externalId']} not found.")
                valid.append((contact, current))
            except _Refused as exc:
                if self.skip_invalid:
                    continue
                external_id = item.get("externalId") if isinstance(item, dict) else None
                return self.error(400, exc.code, f"{external_id}: {exc.message}")
        for contact, current in valid:
            self._store(contact, current)
            self.count("records_upserted")
        return Response(200, {"code": 100, "message": "OK"})

    def _delete_batch(self, request: Request) -> Response:
        raw = self._batch(request)
        id_type = request.arg("idType")
        found = [self._find(str(key), id_type) for key in raw]
        if any(contact is None for contact in found):
            # Spec example: 401 "contactIds invalid to the organization 1536984111644674".
            return self.error(
                401,
                "INVALID_CONTACTS",
                f"contactIds invalid to the organization {self.organization_id}",
            )
        for contact in found:
            if contact is not None and contact["externalId"] in self._contacts:
                del self._contacts[contact["externalId"]]
                self.count("records_deleted")
        return Response(200, {"code": 100, "message": "OK"})

    def _get_one(self, request: Request) -> Response:
        contact = self._find(request.params["id"], request.arg("idType"))
        if contact is None:
            return self.error(
                404, "MISSING_CONTACT", f"Unable to find contact {request.params['id']}"
            )
        return Response(200, copy.deepcopy(contact))

    def _delete_one(self, request: Request) -> Response:
        contact = self._find(request.params["id"], request.arg("idType"))
        if contact is None:
            return self.error(404, "MISSING_CONTACT", f"Contact {request.params['id']} not found.")
        del self._contacts[contact["externalId"]]
        self.count("records_deleted")
        base = f"{self.api_url}/contacts/{self.organization_id}/"
        return Response(
            200,
            {
                "baseUri": base,
                "id": contact["id"],
                "instanceUri": f"{base}{contact['id']}",
                "message": "OK",
            },
        )

    def _page(self, request: Request, found: list[Any], path: str) -> Response:
        number = int_arg(request, "pageNumber", 1, 1, 10**6)
        size = int_arg(request, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        start = (number - 1) * size
        pages = math.ceil(len(found) / size)
        uri = f"{self.api_url}/{path}/{self.organization_id}/?pageNumber="
        page = {
            "currentPageNo": number,
            "data": copy.deepcopy(found[start : start + size]),
            "pageSize": size,
            "start": start,
            "totalCount": len(found),
            "totalPageCount": pages,
        }
        return Response(
            200,
            {
                "firstPageUri": f"{uri}1",
                "lastPageUri": f"{uri}{max(pages, 1)}",
                "message": "OK",
                "page": page,
            },
        )

    def _list(self, request: Request) -> Response:
        wanted = request.arg("externalIds")
        found = list(self._contacts.values())
        if wanted:
            keys = set(wanted.split(","))
            found = [c for c in found if c["externalId"] in keys]
        return self._page(request, found, "contacts")

    def _record_types(self, request: Request) -> Response:
        org = int(self.organization_id)
        types = [
            {"id": i, "name": n, "organizationId": org, "recordType": "CUSTOMIZE", "status": "A"}
            for n, i in self.record_types.items()
        ]
        return self._page(request, types, "recordTypes")

    def _paths_list(self, request: Request) -> Response:
        org = int(self.organization_id)
        paths = [
            {
                "pathId": path_id,
                "prompt": prompt,
                "sysPrompt": prompt,
                "pathType": "EMAIL" if kind == "email" else "PHONE",
                "type": "EMAIL" if kind == "email" else "PHONE",
                "organizationId": org,
                "status": "A",
            }
            for path_id, (prompt, kind) in self.paths.items()
        ]
        return self._page(request, paths, "contactPaths")

    # -- contact rules -------------------------------------------------------------------------
    def _find(self, key: str, id_type: str | None) -> Contact | None:
        if id_type == "externalId":
            return self._contacts.get(key)
        return next((c for c in self._contacts.values() if str(c["id"]) == key), None)

    def _record_type(self, item: Contact) -> int | None:
        if item.get("recordTypeId") is not None:
            wanted = item["recordTypeId"]
            return next((i for i in self.record_types.values() if str(i) == str(wanted)), None)
        return self.record_types.get(str(item.get("recordTypeName")))

    def _store(self, contact: Contact, current: Contact | None = None) -> Contact:
        """Full replacement: the stored contact is the payload, nothing of the old one is kept
        but its id and its groups (which this call cannot remove)."""
        if current is not None:
            contact["id"] = current["id"]
            groups = sorted({*current.get("groups", []), *contact.get("groups", [])})
            if groups:
                contact["groups"] = groups
        else:
            self._next_id += 1
            contact["id"] = self._next_id
        self._contacts[contact["externalId"]] = contact
        return contact

    def _valid(self, item: Any) -> Contact:
        if not isinstance(item, dict):
            raise _Refused("INVALID_CONTACT", "a contact must be an object")
        unknown = sorted(set(item) - CONTACT_FIELDS)
        if unknown:
            raise _Refused("UNKNOWN_FIELD", f"unrecognized field(s): {', '.join(unknown)}")
        external_id = item.get("externalId")
        if not isinstance(external_id, str) or not 0 < len(external_id) <= EXTERNAL_ID_MAX:
            raise _Refused(
                "INVALID_EXTERNAL_ID", f"externalId must be 1..{EXTERNAL_ID_MAX} characters"
            )
        for name in ("firstName", "lastName"):
            if not isinstance(item.get(name), str) or not item[name].strip():
                raise _Refused("MISSING_NAME", f"{name} is required")
        contact = {
            k: copy.deepcopy(v) for k, v in item.items() if k not in ("id", "recordTypeName")
        }
        record_type = self._record_type(item)
        contact["recordTypeId"] = record_type
        contact["paths"] = [self._path(p) for p in item.get("paths") or []]
        ids = [p["pathId"] for p in contact["paths"]]
        if len(ids) != len(set(ids)):
            raise _Refused("DUPLICATE_PATH", "a path appears twice")
        if any(p.get("quietTimeFrames") for p in contact["paths"]) and not item.get("timezoneId"):
            raise _Refused("MISSING_TIMEZONE", "timezoneId is required with quietTimeFrames")
        contact["contactAttributes"] = [
            self._attribute(a) for a in item.get("contactAttributes") or []
        ]
        for name in ("paths", "contactAttributes"):
            if name not in item:
                del contact[name]  # omitted: cleared, as the full replacement says
        return contact

    def _path(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise _Refused("INVALID_PATH", "a path must be an object")
        unknown = sorted(set(raw) - PATH_FIELDS)
        if unknown:
            raise _Refused("INVALID_PATH", f"unrecognized path field(s): {', '.join(unknown)}")
        if raw.get("pathId") is not None:
            path_id = next((i for i in self.paths if str(i) == str(raw["pathId"])), None)
        else:
            path_id = next((i for i, (p, _) in self.paths.items() if p == raw.get("prompt")), None)
        if path_id is None:
            raise _Refused("UNKNOWN_PATH", "no such contact path in the organization")
        prompt, kind = self.paths[path_id]
        value = raw.get("value")
        if not isinstance(value, str) or not value:
            raise _Refused("INVALID_PATH_VALUE", f"{prompt}: a value is required")
        path: dict[str, Any] = {
            "pathId": path_id,
            "value": value,
            "waitTime": raw.get("waitTime", 0),
            "skipValidation": raw.get("skipValidation", False),
            "pathEnable": raw.get("pathEnable", True),
        }
        if raw.get("countryCode") is not None:
            path["countryCode"] = raw["countryCode"]
        if kind == "email":
            if not _EMAIL.fullmatch(value):
                raise _Refused("INVALID_PATH_VALUE", f"{prompt}: not an e-mail address")
        else:
            country = raw.get("countryCode")
            if country not in phonenumbers.SUPPORTED_REGIONS:
                raise _Refused("INVALID_COUNTRY_CODE", f"{prompt}: countryCode must be ISO-2")
            try:
                number = phonenumbers.parse(value, country)
            except phonenumbers.NumberParseException:
                number = None
            if (
                number is None
                or not phonenumbers.is_valid_number(number)
                or phonenumbers.region_code_for_number(number) != country
            ):
                raise _Refused("INVALID_PATH_VALUE", f"{prompt}: not a valid {country} number")
        if raw.get("quietTimeFrames"):
            path["quietTimeFrames"] = copy.deepcopy(raw["quietTimeFrames"])
        return path

    def _attribute(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise _Refused("INVALID_ATTRIBUTE", "an attribute must be an object")
        if raw.get("orgAttrId") is not None:
            name = next(
                (n for n, i in self.attributes.items() if str(i) == str(raw["orgAttrId"])), None
            )
        else:
            name = raw.get("name") if raw.get("name") in self.attributes else None
        values = raw.get("values")
        if name is None:
            raise _Refused("UNKNOWN_ATTRIBUTE", "no such contact attribute in the organization")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _Refused("INVALID_ATTRIBUTE", f"{name}: values must be a list of strings")
        return {"orgAttrId": self.attributes[name], "name": name, "values": list(values)}
