"""Salesforce Contacts through simple-salesforce, read the way reference/salesforce.md says.

This client owns the token: it fetches it itself (``salesforce_auth``), builds
``Salesforce(session_id=..., instance_url=...)`` with a session whose every request has a
timeout, and on ``INVALID_SESSION_ID`` fetches a new token and repeats the same request (a page
of a query included) once. simple-salesforce's own refresh is never used: it recurses without
bound and drops headers. Every library exception is translated here.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import requests
from simple_salesforce.api import Salesforce, SFType
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from dialsync.errors import AuthError, ConfigError, RateLimited, TerminalError, TransientError
from dialsync.models import SourceContact
from dialsync.retry import Action, Answer, RetryPolicy, Verdict, decide
from dialsync.salesforce_ids import is_valid_id
from dialsync.settings import SalesforceSettings, env_name
from dialsync.sources.base import DeletedWindow
from dialsync.sources.salesforce_auth import SYSTEM, fetch_token
from dialsync.sources.salesforce_records import (
    error_code,
    error_message,
    parse_sf_datetime,
    soql_datetime,
    to_contact,
)
from dialsync.tls_errors import tls_failure

log = logging.getLogger(__name__)
T = TypeVar("T")
# Always read: the cursor, the deletes, and the key.
BASE_FIELDS = ("Id", "IsDeleted", "MasterRecordId", "SystemModstamp")
IDS_PER_QUERY = 200  # keeps `Id IN (...)` queries far below the URL and SOQL length limits
DELETED_REACH = timedelta(days=15)  # getDeleted answers for the last 15 days only
CURSOR = "salesforce:Contact"  # the cursor's name in the store
# Four attempts, waits of about 1, 2 and 4 s between them (each at most
# DIALSYNC_SALESFORCE__MAX_BACKOFF_SECONDS, 8 by default): a blip of the instance passes, an
# outage fails the cycle quickly and the next one resumes from the cursor.
MAX_ATTEMPTS = 4
BASE_SECONDS = 1.0


class TimeoutSession(requests.Session):
    """simple-salesforce passes no timeout; without one a call can hang forever."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(
        self,
        method: str | bytes,
        url: str | bytes,
        *args: Any,
        **kwargs: Any,
    ) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        # requests lets REQUESTS_CA_BUNDLE override session.verify (psf/requests#3829); a bundle
        # chosen in settings must win, and with none chosen the environment still applies.
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


class SalesforceSource:
    cursor_name = CURSOR
    deleted_reach = DELETED_REACH

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        verify: str | bool = True,
        session: requests.Session | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.mode = settings.auth_mode()
        self.session = session or TimeoutSession(settings.timeout_seconds)
        if verify is not True:
            self.session.verify = verify
        self.clock = clock
        self.sleep = sleep
        self.instance_url: str | None = None
        self.api_usage: tuple[int, int] | None = None
        self._sf: Salesforce | None = None
        self._describe: set[str] | None = None
        self.retry = retry or RetryPolicy(
            max_attempts=MAX_ATTEMPTS,
            base_seconds=BASE_SECONDS,
            max_backoff_seconds=settings.max_backoff_seconds,
        )
        self.rng = rng
        # The last answer this thread received, for its Retry-After header.
        self._seen = threading.local()
        self.session.hooks["response"].append(self._remember)

    # -- auth --------------------------------------------------------------------------------
    def open(self) -> None:
        self._connect()

    def _connect(self) -> Salesforce:
        token, instance_url = fetch_token(self.settings, self.session, self.clock)
        self.instance_url = instance_url.rstrip("/")
        self._sf = Salesforce(
            session_id=token,
            instance_url=self.instance_url,
            version=self.settings.api_version,
            session=self.session,
        )
        return self._sf

    @property
    def sf(self) -> Salesforce:
        return self._sf or self._connect()

    def _call(self, fn: Callable[[Salesforce], T]) -> T:
        """Run one API call: renew the token once on 401; 429, 5xx and network errors as
        ``dialsync.retry.decide`` says."""
        renewed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                result = fn(self.sf)
                usage = getattr(self.sf, "api_usage", {}).get("api-usage")
                if usage is not None:
                    self.api_usage = (int(usage.used), int(usage.total))
                return result
            except SalesforceExpiredSession:
                if renewed or self.mode == "session":
                    hint = (
                        " (a fixed session cannot be renewed: use client credentials or JWT)"
                        if self.mode == "session"
                        else ""
                    )
                    raise AuthError(
                        f"Salesforce session invalid{hint}",
                        system=SYSTEM,
                        status=401,
                        code="INVALID_SESSION_ID",
                    ) from None
                renewed = True
                log.info("salesforce: session expired, fetching a new token")
                self._connect()
            except SalesforceRefusedRequest as exc:
                code = error_code(exc)
                if code == "REQUEST_LIMIT_EXCEEDED":
                    raise RateLimited(
                        "Salesforce API request limit exceeded; the cycle stops "
                        "and a later one resumes",
                        system=SYSTEM,
                        status=403,
                        code=code,
                    ) from None
                raise AuthError(
                    f"Salesforce refused the request: {error_message(exc)}",
                    system=SYSTEM,
                    status=403,
                    code=code,
                ) from None
            except SalesforceMalformedRequest as exc:
                code = error_code(exc)
                message = error_message(exc)
                if self.settings.soql_where and code in ("MALFORMED_QUERY", "INVALID_FIELD"):
                    name = env_name("salesforce", "soql_where")
                    raise ConfigError(
                        f"Salesforce refused the query ({code}: {message}); check {name}",
                        setting=name,
                    ) from None
                raise TerminalError(message, system=SYSTEM, status=400, code=code) from None
            except SalesforceError as exc:
                status = int(getattr(exc, "status", 0) or 0)
                action = self._decide(self._answer(status), attempt)
                if action.retry:
                    self.sleep(action.wait or 0.0)
                    continue
                if action.verdict is Verdict.TERMINAL:
                    raise TerminalError(
                        error_message(exc), system=SYSTEM, status=status, code=error_code(exc)
                    ) from None
                cls = RateLimited if status == 429 else TransientError
                raise cls(
                    "Salesforce rate limit" if status == 429 else "Salesforce server error",
                    system=SYSTEM,
                    status=status,
                    code=error_code(exc),
                    retry_after=action.wait if status == 429 else None,
                ) from None
            except requests.RequestException as exc:
                if (tls := tls_failure(exc, self.instance_url or "", system=SYSTEM)) is not None:
                    raise tls from None
                action = self._decide(exc, attempt)
                if action.retry:
                    self.sleep(action.wait or 0.0)
                    continue
                raise TransientError(
                    f"cannot reach Salesforce: {exc.__class__.__name__}", system=SYSTEM
                ) from None

    def _decide(self, outcome: Answer | Exception, attempt: int) -> Action:
        # Every call here is a read (query, describe, getDeleted): always safe to repeat.
        return decide(
            outcome, attempt, policy=self.retry, idempotent=True, rng=self.rng, now=self.clock
        )

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._seen.response = response

    def _answer(self, status: int) -> Answer:
        """The failed answer with its headers (simple-salesforce's errors keep only the status)."""
        seen: requests.Response | None = getattr(self._seen, "response", None)
        if seen is not None and seen.status_code == status:
            return seen
        return _Status(status)

    # -- reads -------------------------------------------------------------------------------
    def describe_fields(self) -> set[str]:
        """Field names of Contact, with ``Rel.`` prefixes for relationships (Account.)."""
        if self._describe is None:
            body = self._call(lambda sf: _contact(sf).describe())
            names: set[str] = set()
            for field in body.get("fields", []):
                names.add(str(field["name"]))
                if field.get("relationshipName"):
                    names.add(f"{field['relationshipName']}.")
            self._describe = names
        return self._describe

    def available(self, wanted: Iterable[str]) -> list[str]:
        """The wanted fields this org has (picklist code fields exist only in some orgs)."""
        names = self.describe_fields()
        out = list(BASE_FIELDS)
        for field in wanted:
            rel, dot, _ = field.partition(".")
            ok = f"{rel}." in names if dot else field in names
            if ok and field not in out:
                out.append(field)
        return out

    def _query(self, soql: str, include_deleted: bool) -> Iterator[dict[str, Any]]:
        """Page a query ourselves, so a page whose session expired is asked again."""
        headers = {"Sforce-Query-Options": f"batchSize={self.settings.page_size}"}
        page = self._call(
            lambda sf: sf.query(soql, include_deleted=include_deleted, headers=headers)
        )
        while True:
            yield from page.get("records", [])
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                return
            next_url = str(page["nextRecordsUrl"])
            page = self._query_more(next_url, headers)

    def _query_more(self, url: str, headers: dict[str, str]) -> dict[str, Any]:
        page: dict[str, Any] = self._call(
            lambda sf: sf.query_more(url, identifier_is_url=True, headers=headers)
        )
        return page

    def window(
        self, fields: list[str], start: datetime | None, end: datetime
    ) -> Iterator[SourceContact]:
        """Contacts (deleted ones included) with start <= SystemModstamp <= end, in order."""
        where = [f"SystemModstamp <= {soql_datetime(end)}"]
        if start is not None:
            where.insert(0, f"SystemModstamp >= {soql_datetime(start)}")
        soql = (
            f"SELECT {', '.join(fields)} FROM Contact WHERE {' AND '.join(where)} "
            "ORDER BY SystemModstamp, Id"
        )
        for record in self._query(soql, include_deleted=True):
            yield to_contact(record)

    def count(self, end: datetime) -> int:
        """How many contacts (deleted ones included) a full read up to ``end`` returns: one
        ``SELECT COUNT()``, so a progress bar knows the whole of an initial load."""
        soql = f"SELECT COUNT() FROM Contact WHERE SystemModstamp <= {soql_datetime(end)}"
        body = self._call(lambda sf: sf.query(soql, include_deleted=True))
        return int(body.get("totalSize") or 0)

    def by_ids(self, fields: list[str], ids: list[str]) -> Iterator[SourceContact]:
        """Contacts by Id (validated 18-char Ids only), deleted ones included."""
        for record in self._by_ids(", ".join(fields), ids, "", include_deleted=True):
            yield to_contact(record)

    def _by_ids(
        self, select: str, ids: Sequence[str], where: str, *, include_deleted: bool
    ) -> Iterator[dict[str, Any]]:
        """``SELECT select FROM Contact WHERE Id IN (...) where``, IDS_PER_QUERY Ids a query."""
        for i in range(0, len(ids), IDS_PER_QUERY):
            quoted = ", ".join(f"'{cid}'" for cid in ids[i : i + IDS_PER_QUERY])
            soql = f"SELECT {select} FROM Contact WHERE Id IN ({quoted}){where}"
            yield from self._query(soql, include_deleted=include_deleted)

    def ids(self, start: datetime | None = None, scoped: bool = True) -> Iterator[str]:
        """Ids of live contacts (within SOQL_WHERE when scoped), optionally since ``start``."""
        where = []
        if start is not None:
            where.append(f"SystemModstamp >= {soql_datetime(start)}")
        if scoped and self.settings.soql_where:
            where.append(f"({self.settings.soql_where})")
        soql = "SELECT Id FROM Contact" + (f" WHERE {' AND '.join(where)}" if where else "")
        for record in self._query(soql, include_deleted=False):
            yield str(record["Id"])

    def in_scope(self, ids: Iterable[str]) -> set[str]:
        valid = [i for i in dict.fromkeys(ids) if is_valid_id(i)]
        where = f" AND ({self.settings.soql_where})" if self.settings.soql_where else ""
        return {str(r["Id"]) for r in self._by_ids("Id", valid, where, include_deleted=False)}

    def deleted(self, start: datetime, end: datetime) -> DeletedWindow:
        body = self._call(lambda sf: _contact(sf).deleted(start, end))
        # {"deletedRecords": [{"id": ..., "deletedDate": "2013-05-07T22:07:19.000+0000"}],
        #  "earliestDateAvailable": ..., "latestDateCovered": ...}
        records = [r for r in body.get("deletedRecords", []) if r.get("id")]
        ids = [str(r["id"]) for r in records]
        when = {
            str(r["id"]): parse_sf_datetime(r["deletedDate"])
            for r in records
            if r.get("deletedDate")
        }
        earliest = body.get("earliestDateAvailable")
        latest = body.get("latestDateCovered")
        return DeletedWindow(
            ids,
            parse_sf_datetime(earliest) if earliest else None,
            parse_sf_datetime(latest) if latest else None,
            when,
        )

    def tooling_query(self, soql: str) -> list[dict[str, Any]]:
        """Rows of a Tooling API query (one page: doctor's small questions)."""
        from urllib.parse import quote

        body = self._call(lambda sf: sf.toolingexecute(f"query/?q={quote(soql)}"))
        return list(body.get("records", [])) if isinstance(body, dict) else []

    def is_valid_id(self, contact_id: str) -> bool:
        return is_valid_id(contact_id)

    def close(self) -> None:
        self.session.close()


class _Status:
    """An answer known only by its status."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: Mapping[str, str] = {}


def _contact(sf: Salesforce) -> SFType:
    contact = sf.Contact
    assert isinstance(contact, SFType)
    return contact
