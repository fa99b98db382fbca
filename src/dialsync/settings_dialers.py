"""The settings section of each destination (DIALSYNC_TALKDESK__*, __EVERBRIDGE__*, __CONGA__*),
on one base that declares what every dialer has: the HTTP timeout and the retries of one call.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from dialsync.errors import ConfigError
from dialsync.settings_base import http_url, missing_settings, raise_all


class DialerSettings(BaseModel):
    """What every destination's section has: the HTTP timeout, the retries inside one call
    (after them the rows wait for a later cycle), and ``missing()`` / ``require()``."""

    timeout_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=10)
    max_backoff_seconds: float = Field(default=30.0, ge=0)

    def missing(self) -> list[ConfigError]:
        """One error per setting this destination needs and lacks."""
        raise NotImplementedError

    def require(self) -> None:
        raise_all(self.missing())


class TalkdeskSettings(DialerSettings):
    api_url: str = "https://api.talkdeskapp.com"
    token_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    record_list_id: str | None = None
    max_requests_per_second: float | None = Field(default=None, gt=0)
    # Talkdesk's limit of records in one record list (its UI warns from 80%); creates that
    # would pass it wait in the sync table until records are removed.
    list_capacity: int = Field(default=250_000, ge=1)

    @field_validator("api_url", "token_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    def missing(self) -> list[ConfigError]:
        names = ("token_url", "client_id", "client_secret", "record_list_id")
        return missing_settings("talkdesk", self, names, "to reach the Talkdesk record list")


DESTINATIONS = ("talkdesk", "everbridge", "conga")
# Everbridge delivery path per phone type: digits name a pathId, anything else a prompt. The
# prompts are those of a new organization; an org that renamed its paths sets its own map.
DEFAULT_EVERBRIDGE_PATHS = {
    "MOBILE": "Mobile Phone",
    "OFFICE": "Work Phone",
    "HOME": "Home Phone",
    "EXTRA_1": "Other Phone",
    "EXTRA_2": "Other Phone",
    "EXTRA_3": "Other Phone",
}
_PHONE_TYPES = frozenset(DEFAULT_EVERBRIDGE_PATHS)


def parse_destinations(value: str) -> tuple[str, ...]:
    """``"talkdesk, Everbridge"`` -> ``("talkdesk", "everbridge")``; ValueError names the bad."""
    names: list[str] = []
    for part in value.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in DESTINATIONS:
            raise ValueError(f"unknown destination {name!r}: choose from {', '.join(DESTINATIONS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError(f"name at least one destination: {', '.join(DESTINATIONS)}")
    return tuple(names)


class EverbridgeSettings(DialerSettings):
    """Everbridge Suite contacts (password grant; the id_token is the bearer)."""

    api_url: str = "https://api.everbridge.net/rest"  # EU: https://api.everbridge.eu/rest
    token_url: str = "https://api.everbridge.net/authorization/v1/tokens"
    organization_id: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    # The token request's required scope. The id_token, our bearer, is issued for an OpenID
    # scope only; the authentication spec's password-grant example asks for these three.
    scope: str = "openid user-profile role"
    # Every contact needs a record type; a new organization has "Employee". The id wins if set.
    record_type_name: str | None = "Employee"
    record_type_id: int | None = None
    paths: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_EVERBRIDGE_PATHS))
    email_path: str | None = None  # a pathId or prompt for the e-mail address; unset: not sent
    # Contact attributes we own: the record's extra_data key -> the attribute's name in the org.
    attributes: dict[str, str] = Field(default_factory=dict)
    # The issue asks for E.164 values; the seed's example sends the national digits instead.
    phone_format: Literal["e164", "national"] = "e164"
    # "POST/PUT/PATCH 300 per minute" (reference): the client keeps under it on its own.
    max_writes_per_minute: float | None = Field(default=300.0, gt=0)

    @field_validator("api_url", "token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        scopes = value.split()
        if "openid" not in scopes:
            raise ValueError("must include openid: Everbridge issues the id_token only for it")
        return " ".join(scopes)

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: dict[str, str]) -> dict[str, str]:
        out = {str(k).strip().upper(): str(v).strip() for k, v in value.items()}
        unknown = sorted(set(out) - _PHONE_TYPES)
        if unknown:
            raise ValueError(f"unknown phone types {unknown}: use {sorted(_PHONE_TYPES)}")
        return {k: v for k, v in out.items() if v}

    def missing(self) -> list[ConfigError]:
        names = ("organization_id", "client_id", "client_secret", "username", "password")
        found = missing_settings("everbridge", self, names, "to reach the Everbridge organization")
        if not self.record_type_name and self.record_type_id is None:
            found += missing_settings(
                "everbridge", self, ("record_type_name",), "for every Everbridge contact"
            )
        return found


class CongaSettings(DialerSettings):
    """Conga Platform Data API contacts (client credentials)."""

    api_url: str = "https://rls.congacloud.com"
    # EU: login.congacloud.eu, AU: login.congacloud.au
    token_url: str = "https://login-rls.congacloud.com/api/v1/auth/connect/token"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    user_id: str | None = None  # API-to-API connections send it as the user-id header
    # Contact fields not to send (comma-separated), for a schema that lacks some of them.
    skip_fields: str = ""
    max_requests_per_second: float | None = Field(default=None, gt=0)

    @field_validator("api_url", "token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @property
    def skipped_fields(self) -> frozenset[str]:
        return frozenset(f.strip() for f in self.skip_fields.split(",") if f.strip())

    def missing(self) -> list[ConfigError]:
        return missing_settings("conga", self, ("client_id", "client_secret"), "to reach Conga")
