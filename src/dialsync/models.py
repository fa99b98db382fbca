"""Frozen models that cross boundaries: what a source yields, what the mapper produces."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PhoneType(StrEnum):
    """Talkdesk's phone types; the other destinations translate from these."""

    MOBILE = "MOBILE"
    OFFICE = "OFFICE"
    HOME = "HOME"
    EXTRA_1 = "EXTRA_1"
    EXTRA_2 = "EXTRA_2"
    EXTRA_3 = "EXTRA_3"


# The code of a create a destination held because its target is full (a TRANSIENT answer):
# the row waits for room, so it is due again as soon as a record of that target goes, not
# only when its backoff ends.
WAITS_FOR_ROOM = "LIST_FULL"


class SkipReason(StrEnum):
    """Why a contact must not be in the dialer list. Stored as the row's reason code."""

    DELETED = "deleted"
    MERGED = "merged"
    DO_NOT_CALL = "do_not_call"
    NO_VALID_PHONE = "no_valid_phone"
    OUT_OF_SCOPE = "out_of_scope"
    NOT_IN_SALESFORCE = "not_in_salesforce"
    ROUTED_ELSEWHERE = "routed_elsewhere"


class SourceContact(BaseModel):
    """One Contact row as read from Salesforce.

    ``fields`` holds the queried fields flattened: relationship fields use dotted names
    (``Account.Name``), ``attributes`` keys are dropped. Values are whatever the API returned
    (usually str, bool or None); the mapper must cope with anything.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    system_modstamp: datetime
    is_deleted: bool = False
    master_record_id: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)

    def text(self, name: str) -> str | None:
        """The field as stripped text, or None when absent, blank or not text-like."""
        value = self.fields.get(name)
        if value is None or isinstance(value, bool | dict | list):
            return None
        text = str(value).strip()
        return text or None


class Phone(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: str  # E.164
    type: PhoneType
    region: str | None = None  # ISO 3166-1 alpha-2 of the number, e.g. "GB"
    extension: str | None = None


class DialerRecord(BaseModel):
    """The neutral mapped form of a contact; each destination renders it into its payload."""

    model_config = ConfigDict(frozen=True)

    external_provider: str
    external_id: str
    external_url: str
    sync_external_id: bool = True
    first_name: str
    last_name: str
    phones: tuple[Phone, ...]
    timezone: str | None = None
    priority: int | None = None
    extra_data: dict[str, str] = Field(default_factory=dict)
    email: str | None = None
    mailing_country_code: str | None = None


class Skip(BaseModel):
    """The contact must not be in the list; ``reason`` is the stored code."""

    model_config = ConfigDict(frozen=True)

    reason: SkipReason
    message: str = ""
