"""Conga Platform Data API contacts (seed 003; reference/everbridge-and-conga.md).

Conga upserts a Contact by ``ExternalId`` (unique while the platform setting
IsExternalIdValidationEnabled is on, which the setup requires), so the record id the sync table
keeps is the external id itself. An update is partial: a field left out keeps its value, so
``render`` sends every field we own, with null for the ones the contact no longer has.

Writes go in bulk: ``PATCH .../Contact/bulk?UpdateByField=ExternalId`` (the bulk upsert;
its default, ``Id``, would create a second record, or refuse one, for every contact already
there). Its 200 documents no body beyond the envelope: ``Success`` decides. Whatever the bulk
call does not take (a 400 refusing the batch for one bad record) is sent again one by one: the
documented ``PUT .../Contact/by-externalId/{id}`` updates (the path carries the key; the body is
the Contact schema, without ``ExternalId``), and its 404 means a new record, created with
``POST .../Contact``. One bad record never sinks its batch. Deletes use the documented
``DELETE .../by-externalId/{id}`` (``Data: true``), one call each.

Answers are the envelope ``{Success, Data, Errors: [{Message}], StatusCode}``, ``StatusCode``
being a name ("OK", "BadRequest"). The listing ``GET /api/data/v1/Contact`` gives no total
(its ``RecordCount`` counts the page): ``open()`` asks ``POST .../Contact/query`` with
``IncludeTotalCount=true``. See tests/contract/specs/conga.json for the operations used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, Unpack
from urllib.parse import quote

import httpx

from dialsync.destinations.base import Capabilities, ItemResult, Outcome, TargetInfo, WriteItem
from dialsync.destinations.common import DestinationConfigError, is_contact_id
from dialsync.destinations.connection import Connection, Plumbing
from dialsync.destinations.http import (
    ErrorFields,
)
from dialsync.destinations.http import error_fields as common_error_fields
from dialsync.errors import AuthError, ConfigError
from dialsync.models import DialerRecord, PhoneType
from dialsync.settings import CongaSettings, env_name

SYSTEM = "conga"
OBJECT_PATH = "/api/data/v1/Contact"
BULK_LIMIT = 100  # none is published; the same 100 as the other destinations
PAGE_SIZE = 100
# Salesforce's Contact phone fields, which Conga's Contact mirrors; EXTRA_3 has no field.
PHONE_FIELDS: dict[PhoneType, str] = {
    PhoneType.MOBILE: "MobilePhone",
    PhoneType.OFFICE: "Phone",
    PhoneType.HOME: "HomePhone",
    PhoneType.EXTRA_1: "OtherPhone",
    PhoneType.EXTRA_2: "AssistantPhone",
}
# The fields we own: every write sets each of them (null when the contact has no value).
OWNED_FIELDS: tuple[str, ...] = (
    "Name",
    "FirstName",
    "LastName",
    "Email",
    *PHONE_FIELDS.values(),
    "Title",
    "MailingCity",
    "MailingState",
    "MailingPostalCode",
    "MailingCountry",
    "MailingCountryCode",
)
REQUIRED_FIELDS = frozenset({"LastName"})  # ExternalId is the key and is never skipped
_UNKNOWN_FIELDS = re.compile(r"unknown field\(s\)\s*:?\s*(?P<fields>.+)", re.IGNORECASE)
_SKIP_SETTING = env_name("conga", "skip_fields")


def render_contact(record: DialerRecord, skipped: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The Conga Contact for a mapped record. ``Id`` is never sent: Conga owns it."""
    extra = record.extra_data
    values: dict[str, Any] = {
        "Name": f"{record.first_name} {record.last_name}",
        "FirstName": record.first_name,
        "LastName": record.last_name,
        "Email": record.email,
        **dict.fromkeys(PHONE_FIELDS.values()),
        "Title": extra.get("title"),
        "MailingCity": extra.get("mailing_city"),
        "MailingState": extra.get("mailing_state"),
        "MailingPostalCode": extra.get("mailing_postal_code"),
        "MailingCountry": extra.get("mailing_country"),
        "MailingCountryCode": record.mailing_country_code,
    }
    for phone in record.phones:
        field = PHONE_FIELDS.get(phone.type)
        if field is not None and values[field] is None:
            values[field] = phone.number
    payload = {"ExternalId": record.external_id}
    payload.update({k: v for k, v in values.items() if k not in skipped})
    return payload


class CongaDestination:
    name = SYSTEM
    capabilities = Capabilities(max_batch=BULK_LIMIT, native_upsert=True, full_replacement=False)

    def __init__(
        self,
        settings: CongaSettings,
        **plumbing: Unpack[Plumbing],
    ) -> None:
        settings.require()
        assert settings.client_id and settings.client_secret is not None
        bad = sorted(settings.skipped_fields - (set(OWNED_FIELDS) - REQUIRED_FIELDS))
        if bad:
            raise ConfigError(
                f"{_SKIP_SETTING} names {', '.join(bad)}: only these may be left out: "
                f"{', '.join(f for f in OWNED_FIELDS if f not in REQUIRED_FIELDS)}",
                setting=_SKIP_SETTING,
            )
        self.settings = settings
        self.skipped = settings.skipped_fields
        # Rows are keyed by the connection's client id: one client per tenant, so another
        # tenant behind the same host never shares rows with this one.
        self.target = settings.client_id
        form = {
            "grant_type": "client_credentials",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
        }
        self._connection = Connection(
            settings,
            SYSTEM,
            settings.token_url,
            form,
            **plumbing,
        )
        headers = {"user-id": settings.user_id} if settings.user_id else {}
        self.api = self._connection.api(
            plumbing.get("limiter"), extra_headers=headers, read_error=error_fields
        )

    def render(self, record: DialerRecord) -> dict[str, Any]:
        return render_contact(record, self.skipped)

    def open(self) -> TargetInfo:
        try:
            response = self.api.call(
                "POST",
                f"{OBJECT_PATH}/query",
                params={"IncludeTotalCount": "true"},
                json={"Select": ["Id"], "Limit": 1},
                idempotent=True,
                ok=(200,),
            )
        except AuthError as exc:
            if exc.status == 403 and not self.settings.user_id:
                setting = env_name("conga", "user_id")
                raise AuthError(
                    f"{exc.message} (an API-to-API connection also needs {setting})",
                    system=SYSTEM,
                    status=403,
                    code=exc.code,
                ) from None
            raise
        count = _body(response).get("RecordCount")  # the total: IncludeTotalCount=true
        return TargetInfo(
            name="Contact",
            records_count=count if isinstance(count, int) else None,
            unique_by_external_id=True,
            unique_identifier_type="EXTERNAL",
        )

    # -- writes ----------------------------------------------------------------------------
    def create(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        return self._upsert(items)

    def update(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        return self._upsert(items)

    def _upsert(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        # An upsert by external id may be repeated after a lost answer: idempotent.
        response = self.api.call(
            "PATCH",
            f"{OBJECT_PATH}/bulk",
            params={"UpdateByField": "ExternalId"},
            json=[self._sendable(item) for item in items],
            idempotent=True,
            ok=(200, 400),
        )
        body = _body(response)
        if response.status_code == 400:
            self._raise_unknown_fields(body)  # every record would fail: stop here
        elif body.get("Success") is not False:
            return [ItemResult(i.external_id, Outcome.OK, i.external_id) for i in items]
        return [self._upsert_one(item) for item in items]

    def _upsert_one(self, item: WriteItem) -> ItemResult:
        record = {k: v for k, v in self._sendable(item).items() if k not in ("ExternalId", "Id")}
        response = self.api.call(
            "PUT",
            _record_path(item.external_id),
            json=record,
            idempotent=True,
            ok=(200, 400, 404),
        )
        if response.status_code == 404:  # documented as an update: a new record is created
            return self._create_one(item)
        return self._outcome(item.external_id, response)

    def _create_one(self, item: WriteItem) -> ItemResult:
        # Not idempotent by itself, but a repeat is refused ("already exists"), never doubled:
        # ExternalId is unique (IsExternalIdValidationEnabled).
        response = self.api.call(
            "POST", OBJECT_PATH, json=self._sendable(item), idempotent=True, ok=(201, 400)
        )
        result = self._outcome(item.external_id, response)
        if result.outcome is Outcome.REJECTED and "already exists" in result.message:
            # created meanwhile (a parallel write, a lost answer): the next try updates it
            return ItemResult(item.external_id, Outcome.TRANSIENT, code="CREATED_MEANWHILE")
        return result

    def _outcome(self, external_id: str, response: httpx.Response) -> ItemResult:
        body = _body(response)
        if response.status_code == 400:
            self._raise_unknown_fields(body)
        if response.status_code == 400 or body.get("Success") is False:
            return ItemResult(
                external_id,
                Outcome.REJECTED,
                code="INVALID_RECORD" if response.status_code == 400 else "NOT_APPLIED",
                message="; ".join(_errors(body))[:500],
            )
        return ItemResult(external_id, Outcome.OK, external_id)

    def _sendable(self, item: WriteItem) -> dict[str, Any]:
        # Rows queued before SKIP_FIELDS was fixed still hold the refused field: it is left
        # out here too, so the fix works without resending every contact.
        return {k: v for k, v in (item.payload or {}).items() if k not in self.skipped}

    def delete(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        return [self._delete_one(item.record_id or item.external_id) for item in items]

    def delete_records(self, record_ids: Sequence[str]) -> list[ItemResult]:
        return [self._delete_one(record_id) for record_id in record_ids]

    def _delete_one(self, external_id: str) -> ItemResult:
        response = self.api.call(
            "DELETE",
            _record_path(external_id),
            idempotent=True,
            ok=(200, 400, 404),  # 404: already gone, which is what we wanted
        )
        body = _body(response)
        if response.status_code == 404:
            return ItemResult(external_id, Outcome.OK, external_id)
        # Documented: Data true. Success false (or Data false) says it was not deleted.
        if response.status_code == 400 or False in (body.get("Success"), body.get("Data")):
            return ItemResult(
                external_id,
                Outcome.REJECTED,
                external_id,
                code="DELETE_FAILED",
                message="; ".join(_errors(body))[:500],
            )
        return ItemResult(external_id, Outcome.OK, external_id)

    # -- reads -----------------------------------------------------------------------------
    def scan(self) -> Iterator[tuple[str, str]]:
        """Every Contact, page by page; only those keyed by a Salesforce Contact Id are ours."""
        number = 1
        while True:
            body = _body(
                self.api.call(
                    "GET",
                    OBJECT_PATH,
                    params={"pageSize": PAGE_SIZE, "pageNumber": number},
                    idempotent=True,
                    ok=(200,),
                )
            )
            records = _records(body)
            for record in records:
                external_id = record.get("ExternalId")
                if is_contact_id(external_id):
                    yield external_id, external_id
            more = body.get("HasMoreRecords")
            if not records or more is False or (more is None and len(records) < PAGE_SIZE):
                return
            number += 1

    def close(self) -> None:
        self._connection.close()

    def _raise_unknown_fields(self, body: dict[str, Any]) -> None:
        """``400 "Found unknown field(s): X"``: the schema lacks a field we send, so every
        record would fail the same way; a configuration error naming the field."""
        for message in _errors(body):
            match = _UNKNOWN_FIELDS.search(message)
            if match:
                fields = match.group("fields").strip().rstrip(".")
                raise DestinationConfigError(
                    f"Conga's Contact schema has no field {fields}: add it to the schema, or "
                    f"leave it out with {_SKIP_SETTING}",
                    setting=_SKIP_SETTING,
                    system=SYSTEM,
                )


def _record_path(external_id: str) -> str:
    return f"{OBJECT_PATH}/by-externalId/{quote(external_id, safe='')}"


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _records(body: dict[str, Any]) -> list[dict[str, Any]]:
    data = body.get("Data")
    if isinstance(data, dict):
        data = [data]
    return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []


def error_fields(response: httpx.Response) -> ErrorFields:
    """(code, message, fields) of a refusal: the common reading, then Conga's envelope
    ``{StatusCode, Message, Errors: [{Message}]}`` for what it left out."""
    code, message, fields = common_error_fields(response)
    body = _body(response)
    status_code = body.get("StatusCode")
    if not code and status_code:
        code = str(status_code)
    if not message:
        message = str(body.get("Message") or "; ".join(_errors(body)))[:500]
    return code, message, fields


def _errors(body: dict[str, Any]) -> list[str]:
    errors = body.get("Errors")
    if not isinstance(errors, list):
        return []
    return [str(e.get("Message")) for e in errors if isinstance(e, dict) and e.get("Message")]
