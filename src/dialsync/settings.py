"""One settings object, read once at start (env, then .env) and passed down.

Nothing else in dialsync reads ``os.environ``. Every field maps to ``DIALSYNC_<FIELD>`` or
``DIALSYNC_<SECTION>__<FIELD>``; ``env_name()`` gives that name back so errors can cite it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialsync.errors import ConfigError

ENV_PREFIX = "DIALSYNC_"


def env_name(*path: str | int) -> str:
    """``env_name("talkdesk", "record_list_id")`` -> ``DIALSYNC_TALKDESK__RECORD_LIST_ID``."""
    return ENV_PREFIX + "__".join(str(p).upper() for p in path)


def _http_url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be a URL starting with https://")
    return value


class SalesforceSettings(BaseModel):
    login_url: str = "https://login.salesforce.com"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    private_key_file: Path | None = None
    instance_url: str | None = None
    access_token: SecretStr | None = None
    api_version: str = "62.0"
    soql_where: str | None = None
    timeout_seconds: float = Field(default=60.0, gt=0)
    # Salesforce pages hold up to 2000 rows; 2000 means the fewest requests.
    page_size: int = Field(default=2000, ge=200, le=2000)
    # getDeleted refuses a window shorter than a minute (INVALID_REPLICATION_DATE); the
    # deletes window starts a lookback before the last one ended, so under 60 s every sync in
    # the same minute would fail.
    lookback_seconds: int = Field(default=600, ge=60)

    @field_validator("login_url", "instance_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        value = value.strip().lstrip("v")
        major, _, minor = value.partition(".")
        if not major.isdigit() or (minor and not minor.isdigit()):
            raise ValueError("must look like 62.0")
        return value if minor else f"{value}.0"

    def auth_mode(self) -> Literal["client_credentials", "jwt", "session"]:
        """Which OAuth flow the settings describe; raises ConfigError naming what is missing."""
        if self.client_id and self.client_secret:
            return "client_credentials"
        if self.client_id and self.username and self.private_key_file:
            return "jwt"
        if self.instance_url and self.access_token:
            return "session"
        if self.client_id and self.username:
            missing = env_name("salesforce", "private_key_file")
        elif self.client_id:
            missing = env_name("salesforce", "client_secret")
        elif self.instance_url or self.access_token:
            missing = env_name(
                "salesforce", "access_token" if self.instance_url else "instance_url"
            )
        else:
            missing = env_name("salesforce", "client_id")
        raise ConfigError(
            f"{missing} is not set: Salesforce needs CLIENT_ID and CLIENT_SECRET "
            "(client credentials), CLIENT_ID, USERNAME and PRIVATE_KEY_FILE (JWT bearer), "
            "or INSTANCE_URL and ACCESS_TOKEN (a fixed session)",
            setting=missing,
        )


class TalkdeskSettings(BaseModel):
    api_url: str = "https://api.talkdeskapp.com"
    token_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    record_list_id: str | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_requests_per_second: float | None = Field(default=None, gt=0)
    # Bounded retries inside one call; after that the rows wait for a later cycle.
    max_attempts: int = Field(default=4, ge=1, le=10)
    max_backoff_seconds: float = Field(default=30.0, ge=0)

    @field_validator("api_url", "token_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    def require(self) -> None:
        for name in ("token_url", "client_id", "client_secret", "record_list_id"):
            if not getattr(self, name):
                raise ConfigError(
                    f"{env_name('talkdesk', name)} is not set (needed to reach the Talkdesk "
                    "record list)",
                    setting=env_name("talkdesk", name),
                )


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


def _require(section: str, model: BaseModel, names: tuple[str, ...], why: str) -> None:
    for name in names:
        if not getattr(model, name):
            setting = env_name(section, name)
            raise ConfigError(f"{setting} is not set (needed {why})", setting=setting)


class EverbridgeSettings(BaseModel):
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
    timeout_seconds: float = Field(default=30.0, gt=0)
    # "POST/PUT/PATCH 300 per minute" (reference): the client keeps under it on its own.
    max_writes_per_minute: float | None = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=10)
    max_backoff_seconds: float = Field(default=30.0, ge=0)

    @field_validator("api_url", "token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

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

    def require(self) -> None:
        names = ("organization_id", "client_id", "client_secret", "username", "password")
        _require("everbridge", self, names, "to reach the Everbridge organization")
        if not self.record_type_name and self.record_type_id is None:
            _require("everbridge", self, ("record_type_name",), "for every Everbridge contact")


class CongaSettings(BaseModel):
    """Conga Platform Data API contacts (client credentials)."""

    api_url: str = "https://rls.congacloud.com"
    # EU: login.congacloud.eu, AU: login.congacloud.au
    token_url: str = "https://login-rls.congacloud.com/api/v1/auth/connect/token"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    user_id: str | None = None  # API-to-API connections send it as the user-id header
    # Contact fields not to send (comma-separated), for a schema that lacks some of them.
    skip_fields: str = ""
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_requests_per_second: float | None = Field(default=None, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=10)
    max_backoff_seconds: float = Field(default=30.0, ge=0)

    @field_validator("api_url", "token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @property
    def skipped_fields(self) -> frozenset[str]:
        return frozenset(f.strip() for f in self.skip_fields.split(",") if f.strip())

    def require(self) -> None:
        _require("conga", self, ("client_id", "client_secret"), "to reach Conga")


class SyncSettings(BaseModel):
    interval_seconds: int = Field(default=60, ge=1)
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    # Service mode (Celery): how often every Id is compared, how many push tasks a pull fans
    # out to, and the task time limits (a push batch must finish well inside its limit).
    reconcile_seconds: int = Field(default=6 * 3600, ge=60)
    push_parallelism: int = Field(default=4, ge=1, le=64)
    pull_time_limit_seconds: int = Field(default=3600, ge=30)
    push_time_limit_seconds: int = Field(default=300, ge=30)
    beat_schedule_file: Path = Path("celerybeat-schedule")
    # A progress line in the log this often during a run (service, `run`, a sync without a TTY).
    progress_seconds: float = Field(default=30.0, gt=0)


class FlowerSettings(BaseModel):
    user: str | None = None
    password: SecretStr | None = None
    port: int = Field(default=5555, ge=1, le=65535)
    address: str = "0.0.0.0"


class MetricsSettings(BaseModel):
    """The Prometheus endpoint a Celery worker serves (blank port: none)."""

    port: int | None = Field(default=9808, ge=1, le=65535)
    address: str = "0.0.0.0"
    # Where the worker's processes keep their counters (prometheus multiprocess mode); emptied
    # when the worker starts. Unset: a new temporary directory per worker.
    dir: Path | None = None

    @field_validator("port", mode="before")
    @classmethod
    def _blank_port(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip() == "" else value


class MappingSettings(BaseModel):
    default_region: str = "US"
    priority: int | None = Field(default=5, ge=1, le=10)
    file: Path | None = None

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        import phonenumbers

        value = value.strip().upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be a two-letter region code such as US or GB")
        return value

    @field_validator("priority", mode="before")
    @classmethod
    def _blank_priority(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip() == "" else value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    database_url: str = "sqlite:///dialsync.db"
    broker_url: str | None = None
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    # The standard variables are honoured as well, for TLS to a private CA.
    ca_bundle: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("DIALSYNC_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"),
    )
    salesforce: SalesforceSettings = SalesforceSettings()
    talkdesk: TalkdeskSettings = TalkdeskSettings()
    sync: SyncSettings = SyncSettings()
    mapping: MappingSettings = MappingSettings()
    flower: FlowerSettings = FlowerSettings()
    metrics: MetricsSettings = MetricsSettings()
    everbridge: EverbridgeSettings = EverbridgeSettings()
    conga: CongaSettings = CongaSettings()
    # Comma-separated (a str: pydantic-settings would read a list as JSON); see
    # destination_names for the parsed form.
    destinations: str = "talkdesk"

    @field_validator("destinations")
    @classmethod
    def _destinations(cls, value: str) -> str:
        return ",".join(parse_destinations(value))

    @property
    def destination_names(self) -> tuple[str, ...]:
        """The destinations fed from each pull, in the order they are pushed."""
        return parse_destinations(self.destinations)

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        value = value.strip()
        if "://" not in value:
            raise ValueError("must be an SQLAlchemy URL such as sqlite:///dialsync.db")
        if value.startswith("postgres://"):  # Heroku-style URLs
            value = "postgresql://" + value[len("postgres://") :]
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        return value


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment; a validation error becomes a ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        name = env_name(*loc) if loc else ENV_PREFIX
        raise ConfigError(f"{name} is invalid: {first['msg']}", setting=name) from None
