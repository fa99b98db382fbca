"""Everbridge Suite contacts (seed 002; reference/everbridge-and-conga.md).

Everbridge upserts on ``externalId`` (unique per organization, enforced by Everbridge), so the
record id the sync table keeps is the external id itself: no id map, nothing to adopt but the
contacts a scan finds.

Its batch write is a FULL REPLACEMENT: a field the payload omits is cleared on the contact. So
``render`` always builds the whole contact we own (names, record type, every path, our
attributes) and no caller ever sends a partial one; what we do not own is cleared by each write,
which docs/destinations.md tells whoever sets the integration up.

What Everbridge documents (its contacts and authentication OpenAPI documents; see
tests/contract/specs/everbridge.json) and this adapter follows: the token request names a scope,
and the id_token comes with ``openid``; a batch write or delete answers ``{"code": 100,
"message": "OK"}`` and nothing per contact, so a write is confirmed by one batched read
(``GET /contacts/{org}?externalIds=a,b,...``) and a batch refused with a 400 for one bad contact
is halved until that contact stands alone; ``401 "Org {id} is invalid."`` is a wrong
organization, ``401 "contactIds invalid to the organization {org}"`` on a delete means some of
the contacts are gone already (the rest are deleted again). The batch schema wants numeric
``recordTypeId`` and ``pathId``: ``open()`` resolves the configured names to them
(everbridge_ids.py) and every write uses the ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, Unpack
from urllib.parse import quote

from dialsync.destinations.base import Capabilities, ItemResult, Outcome, TargetInfo, WriteItem
from dialsync.destinations.common import DestinationConfigError, is_contact_id
from dialsync.destinations.connection import Connection, Plumbing
from dialsync.destinations.everbridge_contact import render_contact
from dialsync.destinations.everbridge_ids import EverbridgeIds
from dialsync.destinations.http import (
    ApiClient,
    LocalRateLimiter,
    NotFound,
    RequestRefused,
)
from dialsync.models import DialerRecord
from dialsync.settings import EverbridgeSettings, env_name

SYSTEM = "everbridge"
BATCH_LIMIT = 100  # no batch size is published; the reference says keep to 100 or fewer
PAGE_SIZE = 1000  # List Contacts: "pageSize" default 1000, at most 3000
EXTERNAL_ID_MAX = 50  # contactRequest.externalId maxLength (ours are 18)
RECORD_TYPE_NOT_FOUND = 300  # seed 002: "The externalId recordType not found in org."
# The 401s the spec documents that are about the request, not the token.
_WRONG_ORG = re.compile(r"^Org \S* is invalid|Missing Organization Id", re.IGNORECASE)
_UNKNOWN_CONTACTS = "contactIds invalid to the organization"


def _about_the_request(message: str) -> bool:
    return bool(_WRONG_ORG.search(message)) or _UNKNOWN_CONTACTS in message


class _ContactsNotInOrg(Exception):
    """A batch delete named contacts the organization does not hold (401, documented)."""


class EverbridgeDestination:
    name = SYSTEM
    capabilities = Capabilities(max_batch=BATCH_LIMIT, native_upsert=True, full_replacement=True)

    def __init__(
        self,
        settings: EverbridgeSettings,
        **plumbing: Unpack[Plumbing],
    ) -> None:
        settings.require()
        assert settings.organization_id and settings.client_id and settings.username
        assert settings.client_secret is not None and settings.password is not None
        self.settings = settings
        self.target = settings.organization_id
        form = {
            "grant_type": "password",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
            "username": settings.username,
            "password": settings.password.get_secret_value(),
            "scope": settings.scope,  # required; the id_token comes with the openid scope only
        }
        # The bearer is the id_token, not the access token; it lasts 8 hours (expires_in).
        self._connection = Connection(
            settings,
            SYSTEM,
            settings.token_url,
            form,
            token_key="id_token",
            **plumbing,
        )
        per_minute = settings.max_writes_per_minute
        writes_limiter = plumbing.get("limiter") or LocalRateLimiter(
            per_minute / 60.0 if per_minute else None
        )
        # The 300-a-minute throttle covers writes; reads (open, scan, checks) go unthrottled.
        self.api = self._connection.api(writes_limiter, request_401=_about_the_request)
        self.reader = self._connection.api(request_401=_about_the_request)
        self._org = quote(self.target, safe="")
        self._path = f"/contacts/{self._org}"
        # Resolved by open(): the record type's id and each configured path's pathId.
        self.ids = EverbridgeIds(settings, self.target)

    def render(self, record: DialerRecord) -> dict[str, Any]:
        return render_contact(record, self.settings)

    def open(self) -> TargetInfo:
        try:
            body = self._call(
                self.reader, "GET", self._path, params={"pageNumber": 1, "pageSize": 1}
            )
        except NotFound:
            raise self._unknown_org("no such organization") from None
        self.ids.resolve(self._listing)
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

    def resolved_ids(self) -> dict[str, dict[str, int]]:
        """The numeric ids open() found for the configured record type and paths (doctor)."""
        return self.ids.found()

    def _listing(self, resource: str) -> list[dict[str, Any]]:
        return [item for data in self._pages(f"/{resource}/{self._org}") for item in data]

    def _pages(self, path: str, size: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """The items of each page of a listing, until the last page it names (or, where it names
        none, an empty one)."""
        number = 1
        while True:
            params = {"pageNumber": number} | ({"pageSize": size} if size else {})
            data, pages = _page(self._call(self.reader, "GET", path, params=params))
            yield data
            if not data or (pages is not None and number >= pages):
                return
            number += 1

    # -- writes ----------------------------------------------------------------------------
    def create(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        return self._upsert(items)

    def update(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        return self._upsert(items)

    def _upsert(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        # POST upserts on externalId, so a contact deleted in Everbridge by hand comes back
        # (PUT would refuse it), and a repeat after a lost answer is harmless: idempotent.
        if not self.ids.resolved:  # a caller that writes without open() still sends the ids
            self.ids.resolve(self._listing)
        results: dict[str, ItemResult] = {}
        sendable = []
        for item in items:
            if len(item.external_id) > EXTERNAL_ID_MAX:
                results[item.external_id] = ItemResult(
                    item.external_id,
                    Outcome.REJECTED,
                    code="EXTERNAL_ID_TOO_LONG",
                    message=f"Everbridge takes {EXTERNAL_ID_MAX} characters of external id at most",
                )
            else:
                sendable.append(item)
        self._write(sendable, results)
        return [results[item.external_id] for item in items]

    def _write(self, items: list[WriteItem], results: dict[str, ItemResult]) -> None:
        """One batch; the documented answer says nothing per contact, so a refused batch is
        halved until the contact refusing it stands alone, and an accepted one is confirmed
        by reading its contacts back."""
        if not items:
            return
        try:
            self._call(
                self.api, "POST", f"{self._path}/batch", json=[self.ids.sendable(i) for i in items]
            )
        except RequestRefused as exc:
            if exc.status != 400:
                raise
            if len(items) == 1:
                results[items[0].external_id] = ItemResult(
                    items[0].external_id,
                    Outcome.REJECTED,
                    code=str(exc.code or "HTTP_400"),
                    message=exc.message[:500],
                )
                return
            half = len(items) // 2
            self._write(items[:half], results)
            self._write(items[half:], results)
            return
        present = self._present([item.external_id for item in items])
        for item in items:
            results[item.external_id] = (
                ItemResult(item.external_id, Outcome.OK, item.external_id)
                if item.external_id in present
                else ItemResult(
                    item.external_id,
                    Outcome.REJECTED,
                    code="NOT_APPLIED",
                    message="Everbridge answered the batch OK but does not hold this contact",
                )
            )

    def _present(self, external_ids: list[str]) -> set[str]:
        """Which of these contacts the organization holds: one read per 100 ids."""
        found: set[str] = set()
        for start in range(0, len(external_ids), BATCH_LIMIT):
            chunk = external_ids[start : start + BATCH_LIMIT]
            params = {"externalIds": ",".join(chunk), "pageNumber": 1, "pageSize": len(chunk)}
            data, _ = _page(self._call(self.reader, "GET", self._path, params=params))
            found.update(str(c["externalId"]) for c in data if c.get("externalId") in chunk)
        return found

    def delete(self, items: Sequence[WriteItem]) -> list[ItemResult]:
        return self._delete([item.record_id or item.external_id for item in items])

    def delete_records(self, record_ids: Sequence[str]) -> list[ItemResult]:
        return self._delete(list(record_ids))

    def _delete(self, external_ids: list[str]) -> list[ItemResult]:
        if not external_ids:
            return []
        try:
            self._call(
                self.api,
                "DELETE",
                f"{self._path}/batch",
                params={"idType": "externalId"},
                json=external_ids,
            )
        except _ContactsNotInOrg as exc:
            # Some are gone already (removed by hand): that is what we wanted. The others go
            # again; none gone yet the call refused: each is reported, nothing is assumed.
            present = self._present(external_ids)
            remaining = [i for i in external_ids if i in present]
            if len(remaining) == len(external_ids):
                return [
                    ItemResult(i, Outcome.REJECTED, i, code="DELETE_REFUSED", message=str(exc))
                    for i in external_ids
                ]
            again = {r.external_id: r for r in self._delete(remaining)}
            return [again.get(i) or ItemResult(i, Outcome.OK, i) for i in external_ids]
        return [ItemResult(i, Outcome.OK, i) for i in external_ids]

    # -- reads -----------------------------------------------------------------------------
    def scan(self) -> Iterator[tuple[str, str]]:
        """Every contact of the organization, page by page; only ours are yielded."""
        for data in self._pages(self._path, PAGE_SIZE):
            for contact in data:
                external_id = contact.get("externalId")
                if is_contact_id(external_id):
                    yield external_id, external_id

    def close(self) -> None:
        self._connection.close()

    # -- errors ----------------------------------------------------------------------------
    def _call(
        self,
        client: ApiClient,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """One call (all idempotent: upserts and deletes by external id); the documented org
        and record-type errors become configuration errors naming the setting to fix."""
        try:
            response = client.call(
                method, path, json=json, params=params, idempotent=True, ok=(200,)
            )
        except RequestRefused as exc:
            if exc.status == 401 and _UNKNOWN_CONTACTS in exc.message:
                raise _ContactsNotInOrg(exc.message) from None
            if exc.status == 401:
                raise self._unknown_org(exc.message) from None
            if exc.status == RECORD_TYPE_NOT_FOUND:
                raise self.ids.unknown_record_type() from None
            raise
        try:
            return response.json()
        except ValueError:
            return None

    def _unknown_org(self, said: str) -> DestinationConfigError:
        setting = env_name("everbridge", "organization_id")
        said = said.split(" refused: ", 1)[-1]
        return DestinationConfigError(
            f"Everbridge refused organization {self.target!r} ({said}): check {setting}",
            setting=setting,
            system=SYSTEM,
        )


def _page(body: Any) -> tuple[list[dict[str, Any]], int | None]:
    """A listing's answer ``{"page": {"data": [...], "totalPageCount": n}}``: its items and
    its number of pages (None when it does not say)."""
    page = body.get("page") if isinstance(body, dict) else None
    page = page if isinstance(page, dict) else {}
    data = page.get("data")
    pages = page.get("totalPageCount")
    items = [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
    return items, pages if isinstance(pages, int) else None
