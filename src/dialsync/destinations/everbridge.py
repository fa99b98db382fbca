"""Everbridge Suite contacts (seed 002; reference/everbridge-and-conga.md).

Everbridge upserts on ``externalId`` (unique per organization, enforced by Everbridge), so the
record id the sync table keeps is the external id itself: no id map, nothing to adopt but the
contacts a scan finds.

Its batch write is a FULL REPLACEMENT: a field the payload omits is cleared on the contact. So
``render`` always builds the whole contact we own (names, record type, every path, our
attributes) and no caller ever sends a partial one; what we do not own is cleared by each write,
which docs/destinations.md tells whoever sets the integration up.

Undocumented shapes, chosen here and followed by the sandbox: a batch answer is
``{"data": [{"externalId", "id", "status", "code", "message"}]}``; the batch delete takes a JSON
array of external ids with ``idType=externalId``; pages are ``{"page": {"data", "totalCount",
"totalPageCount"}}``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import phonenumbers

from dialsync.destinations.base import ItemResult, Outcome, TargetInfo, WriteItem
from dialsync.destinations.common import DestinationConfigError, is_contact_id
from dialsync.destinations.http import (
    ApiClient,
    LocalRateLimiter,
    NotFound,
    OAuthToken,
    RateLimiter,
    RequestRefused,
    RetryPolicy,
    fetch_token,
    http_client,
)
from dialsync.errors import AuthError
from dialsync.models import DialerRecord, Phone
from dialsync.settings import EverbridgeSettings, env_name

SYSTEM = "everbridge"
BATCH_LIMIT = 100  # no batch size is published; the reference says keep to 100 or fewer
PAGE_SIZE = 100
RECORD_TYPE_NOT_FOUND = 300  # seed 002: "The externalId recordType not found in org."
CONTACT_MISSING = 404  # seed 002: "Missing Contact Id": for a delete, what we wanted


def path_ref(path: str) -> dict[str, Any]:
    """A configured path: digits name a pathId, anything else a prompt."""
    return {"pathId": int(path)} if path.isdigit() else {"prompt": path}


def record_type(settings: EverbridgeSettings) -> dict[str, Any]:
    """The record type every contact gets: the id when set, else the name."""
    if settings.record_type_id is not None:
        return {"recordTypeId": settings.record_type_id}
    return {"recordTypeName": settings.record_type_name}


def render_contact(record: DialerRecord, settings: EverbridgeSettings) -> dict[str, Any]:
    """The whole Everbridge contact for a mapped record: every field we own, every time."""
    contact: dict[str, Any] = {
        "externalId": record.external_id,
        "firstName": record.first_name,
        "lastName": record.last_name,
        **record_type(settings),
    }
    paths: list[dict[str, Any]] = []
    used: set[str] = set()
    for phone in record.phones:  # already in preference order
        path = settings.paths.get(phone.type.value)
        country = phone.region or record.mailing_country_code
        # One value per path (the first, preferred, phone wins); a number of no country (a
        # non-geographic +800) cannot carry the ISO code Everbridge requires.
        if not path or path in used or not country:
            continue
        used.add(path)
        value = _national(phone) if settings.phone_format == "national" else phone.number
        paths.append({**path_ref(path), "countryCode": country, "value": value})
    if settings.email_path and record.email:
        paths.append({**path_ref(settings.email_path), "value": record.email})
    contact["paths"] = paths
    contact["contactAttributes"] = [
        {"name": name, "values": [record.extra_data[key]]}
        for key, name in sorted(settings.attributes.items())
        if record.extra_data.get(key)
    ]
    return contact


def _national(phone: Phone) -> str:
    return str(phonenumbers.parse(phone.number).national_number)


class EverbridgeDestination:
    name = SYSTEM
    max_batch = BATCH_LIMIT
    native_upsert = True
    full_replacement = True

    def __init__(
        self,
        settings: EverbridgeSettings,
        *,
        verify: ssl.SSLContext | bool = True,
        transport: httpx.BaseTransport | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        settings.require()
        assert settings.organization_id and settings.client_id and settings.username
        assert settings.client_secret is not None and settings.password is not None
        self.settings = settings
        self.target = settings.organization_id
        self._http = http_client(settings.timeout_seconds, verify=verify, transport=transport)
        form = {
            "grant_type": "password",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
            "username": settings.username,
            "password": settings.password.get_secret_value(),
        }
        token_url = settings.token_url
        # The bearer is the id_token, not the access token; it lasts 8 hours (expires_in).
        token = OAuthToken(
            lambda: fetch_token(self._http, SYSTEM, token_url, data=form, token_key="id_token")
        )
        per_minute = settings.max_writes_per_minute
        writes_limiter = limiter or LocalRateLimiter(per_minute / 60.0 if per_minute else None)
        extra: dict[str, Any] = {"sleep": sleep} if sleep else {}
        policy = RetryPolicy(
            max_attempts=settings.max_attempts, max_backoff_seconds=settings.max_backoff_seconds
        )

        def client(limit: RateLimiter | None) -> ApiClient:
            return ApiClient(
                system=SYSTEM,
                base_url=settings.api_url,
                client=self._http,
                token=token,
                policy=policy,
                limiter=limit,
                **extra,
            )

        # The 300-a-minute throttle covers writes; reads (open, scan) go unthrottled.
        self.api = client(writes_limiter)
        self.reader = client(None)
        self._path = f"/contacts/{quote(self.target, safe='')}"

    def render(self, record: DialerRecord) -> dict[str, Any]:
        return render_contact(record, self.settings)

    def open(self) -> TargetInfo:
        try:
            body = self._call(
                self.reader, "GET", self._path, params={"pageNumber": 1, "pageSize": 1}
            )
        except NotFound:
            raise self._unknown_org() from None
        page = body.get("page") if isinstance(body, dict) else None
        count = page.get("totalCount") if isinstance(page, dict) else None
        return TargetInfo(
            name=f"organization {self.target}",
            # Every contact of the organization, ours or not: a lower bound the engine can
            # still compare with what we put there.
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
        # POST upserts on externalId, so a contact deleted in Everbridge by hand comes back
        # (PUT would refuse it), and a repeat after a lost answer is harmless: idempotent.
        body = self._call(
            self.api,
            "POST",
            f"{self._path}/batch",
            json=[self._sendable(item) for item in items],
            ok=(200, 201),
        )
        entries = _entries(body)
        results: list[ItemResult] = []
        for item in items:
            entry = entries.get(item.external_id)
            status = _status(entry)
            if entry is None or status is None:
                results.append(_no_answer(item.external_id))
            elif 200 <= status < 300:
                results.append(ItemResult(item.external_id, Outcome.OK, item.external_id))
            elif status == RECORD_TYPE_NOT_FOUND:
                raise self._unknown_record_type()
            else:
                results.append(
                    ItemResult(
                        item.external_id,
                        Outcome.REJECTED,
                        code=str(entry.get("code") or f"HTTP_{status}"),
                        message=str(entry.get("message") or ""),
                    )
                )
        return results

    def _sendable(self, item: WriteItem) -> dict[str, Any]:
        # The record type is a setting, not contact data: rows queued before it was fixed
        # (after a 300) are sent with the current one, without resending every contact.
        payload = {
            k: v
            for k, v in (item.payload or {}).items()
            if k not in ("recordTypeId", "recordTypeName")
        }
        return {**payload, **record_type(self.settings)}

    def delete(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        return self._delete([item.record_id or item.external_id for item in items])

    def delete_records(self, record_ids: Sequence[str]) -> list[ItemResult]:
        return self._delete(list(record_ids))

    def _delete(self, external_ids: list[str]) -> list[ItemResult]:
        body = self._call(
            self.api,
            "DELETE",
            f"{self._path}/batch",
            params={"idType": "externalId"},
            json=external_ids,
            ok=(200,),
        )
        entries = _entries(body)
        results: list[ItemResult] = []
        for external_id in external_ids:
            entry = entries.get(external_id)
            status = _status(entry)
            if entry is None or status is None:
                results.append(_no_answer(external_id))
            elif 200 <= status < 300 or status == CONTACT_MISSING:  # gone either way
                results.append(ItemResult(external_id, Outcome.OK, external_id))
            else:
                results.append(
                    ItemResult(
                        external_id,
                        Outcome.REJECTED,
                        external_id,
                        code=str(entry.get("code") or "DELETE_FAILED"),
                        message=str(entry.get("message") or ""),
                    )
                )
        return results

    # -- reads -----------------------------------------------------------------------------
    def scan(self) -> Iterator[tuple[str, str]]:
        """Every contact of the organization, page by page; only ours are yielded."""
        number = 1
        while True:
            body = self._call(
                self.reader,
                "GET",
                self._path,
                params={"pageNumber": number, "pageSize": PAGE_SIZE},
                ok=(200,),
            )
            page = body.get("page") if isinstance(body, dict) else None
            page = page if isinstance(page, dict) else {}
            data = page.get("data")
            data = data if isinstance(data, list) else []
            for contact in data:
                external_id = contact.get("externalId") if isinstance(contact, dict) else None
                if is_contact_id(external_id):
                    yield external_id, external_id
            pages = page.get("totalPageCount")
            if not data or (isinstance(pages, int) and number >= pages):
                return
            number += 1

    def close(self) -> None:
        self._http.close()

    # -- errors ----------------------------------------------------------------------------
    def _call(
        self,
        client: ApiClient,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> Any:
        """One call (all idempotent: upserts and deletes by external id); the seed's org and
        record-type errors become configuration errors naming the setting to fix."""
        try:
            response = client.call(method, path, json=json, params=params, idempotent=True, ok=ok)
        except AuthError as exc:
            if exc.status == 401 and "organization" in exc.message.lower():
                raise self._unknown_org() from None
            raise
        except RequestRefused as exc:
            if exc.status == RECORD_TYPE_NOT_FOUND:
                raise self._unknown_record_type() from None
            raise
        try:
            return response.json()
        except ValueError:
            return None  # no entries: every item is answered TRANSIENT and sent again

    def _unknown_org(self) -> DestinationConfigError:
        setting = env_name("everbridge", "organization_id")
        return DestinationConfigError(
            f"Everbridge knows no organization {self.target!r} (Missing Organization Id): "
            f"check {setting}",
            setting=setting,
            system=SYSTEM,
        )

    def _unknown_record_type(self) -> DestinationConfigError:
        field = "record_type_id" if self.settings.record_type_id is not None else "record_type_name"
        setting = env_name("everbridge", field)
        value = getattr(self.settings, field)
        return DestinationConfigError(
            f"the record type {value!r} is not found in Everbridge organization {self.target}: "
            f"check {setting}",
            setting=setting,
            system=SYSTEM,
        )


def _entries(body: Any) -> dict[str, dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for entry in data:
        if isinstance(entry, dict) and entry.get("externalId") is not None:
            out.setdefault(str(entry["externalId"]), entry)
    return out


def _status(entry: dict[str, Any] | None) -> int | None:
    status = entry.get("status") if entry else None
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def _no_answer(external_id: str) -> ItemResult:
    # Both writes are idempotent by external id, so an unanswered one is simply sent again.
    return ItemResult(
        external_id, Outcome.TRANSIENT, code="NO_ANSWER", message="no entry in the answer"
    )
