"""One settings object, read once at start (env, then .env) and passed down.

Nothing else in dialsync reads ``os.environ`` (but settings_vars, which only looks for
misspelled DIALSYNC_* names). Every field maps to ``DIALSYNC_<FIELD>`` or
``DIALSYNC_<SECTION>__<FIELD>``; ``env_name()`` gives that name back so errors can cite it.

Where each section lives: the destinations' (Talkdesk, Everbridge, Conga, on one
``DialerSettings`` base) in ``settings_dialers``; the service processes' (sync schedule, Flower,
metrics, alerts) in ``settings_service``; the names and error helpers every section uses in
``settings_base``; Salesforce, mapping, compliance and the root ``Settings`` here. A
new section goes beside its kind and gets one field on ``Settings``. Everything is importable
from ``dialsync.settings``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialsync.errors import ConfigError

# Re-exported: ``from dialsync.settings import ...`` reaches every section and helper.
from dialsync.settings_base import ENV_PREFIX as ENV_PREFIX
from dialsync.settings_base import combined as combined
from dialsync.settings_base import env_name as env_name
from dialsync.settings_base import http_url, raise_all
from dialsync.settings_dialers import DESTINATIONS as DESTINATIONS
from dialsync.settings_dialers import CongaSettings as CongaSettings
from dialsync.settings_dialers import DialerSettings as DialerSettings
from dialsync.settings_dialers import EverbridgeSettings as EverbridgeSettings
from dialsync.settings_dialers import TalkdeskSettings as TalkdeskSettings
from dialsync.settings_dialers import parse_destinations as parse_destinations
from dialsync.settings_service import AlertsSettings as AlertsSettings
from dialsync.settings_service import FlowerSettings as FlowerSettings
from dialsync.settings_service import MetricsSettings as MetricsSettings
from dialsync.settings_service import SyncSettings as SyncSettings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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
    # The longest wait between two attempts of a call (429, 5xx, no answer; see
    # sources/salesforce.py), and the longest Retry-After honoured inside a cycle.
    max_backoff_seconds: float = Field(default=8.0, ge=0)
    # Salesforce pages hold up to 2000 rows; 2000 means the fewest requests.
    page_size: int = Field(default=2000, ge=200, le=2000)
    # getDeleted refuses a window shorter than a minute (INVALID_REPLICATION_DATE); the
    # deletes window starts a lookback before the last one ended, so under 60 s every sync in
    # the same minute would fail.
    lookback_seconds: int = Field(default=600, ge=60)

    @field_validator("login_url", "instance_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

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


class ComplianceSettings(BaseModel):
    # An opt-out still possibly in a dialer this long after its Salesforce stamp is an error
    # line each cycle, a metric and an alert (15 minutes: most centers aim for minutes).
    opt_out_seconds: int = Field(default=900, ge=0)
    # History (store/history.py) older than this is pruned, at most once a day.
    retention_days: int = Field(default=400, ge=1)


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


# -- streaming (Salesforce Change Data Capture over the Pub/Sub API) ---------------------------
# Kept as one block: the stream's settings and nothing else (cli stream, worker.embedded read it).
class StreamSettings(BaseModel):
    enabled: bool = False
    # host:port of the Pub/Sub API (gRPC over TLS, verified with DIALSYNC_CA_BUNDLE when set)
    pubsub_endpoint: str = "api.pubsub.salesforce.com:7443"
    topic: str = "/data/ContactChangeEvent"
    # With the stream on, the poll is the safety net and runs this often instead of
    # DIALSYNC_SYNC__INTERVAL_SECONDS (which applies again when the stream falls back).
    poll_interval_seconds: int = Field(default=600, ge=1)
    # The TTL of the subscriber's Redis lock (renewed every third of it): a dead subscriber's
    # lock is free this long after its last renewal; a standby tries the lock every 5 s.
    takeover_seconds: float = Field(default=30.0, ge=3)

    @field_validator("pubsub_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        value = value.strip()
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or "/" in value:
            raise ValueError("must be host:port, e.g. api.pubsub.salesforce.com:7443")
        return value

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith("/data/"):
            raise ValueError("must be a change event channel such as /data/ContactChangeEvent")
        return value


# -- end of streaming ------------------------------------------------------------------------


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
    # TLS to a private CA. DIALSYNC_CA_BUNDLE wins wherever it is set (environment or .env);
    # the standard variables apply only when it is not (see ca_file).
    ca_bundle: Path | None = None
    requests_ca_bundle: Path | None = Field(default=None, validation_alias="REQUESTS_CA_BUNDLE")
    ssl_cert_file: Path | None = Field(default=None, validation_alias="SSL_CERT_FILE")
    salesforce: SalesforceSettings = SalesforceSettings()
    talkdesk: TalkdeskSettings = TalkdeskSettings()
    sync: SyncSettings = SyncSettings()
    mapping: MappingSettings = MappingSettings()
    flower: FlowerSettings = FlowerSettings()
    metrics: MetricsSettings = MetricsSettings()
    everbridge: EverbridgeSettings = EverbridgeSettings()
    conga: CongaSettings = CongaSettings()
    alerts: AlertsSettings = AlertsSettings()
    compliance: ComplianceSettings = ComplianceSettings()
    stream: StreamSettings = StreamSettings()
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

    @property
    def dialers(self) -> dict[str, DialerSettings]:
        """The settings section of each configured destination, in push order."""
        sections: dict[str, DialerSettings] = {
            "talkdesk": self.talkdesk,
            "everbridge": self.everbridge,
            "conga": self.conga,
        }
        return {name: sections[name] for name in self.destination_names}

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.strip().upper()
        if value not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value

    @property
    def ca_file(self) -> tuple[Path, str] | None:
        """The CA bundle every client uses and the variable that chose it, or None (system)."""
        for path, name in (
            (self.ca_bundle, env_name("ca_bundle")),
            (self.requests_ca_bundle, "REQUESTS_CA_BUNDLE"),
            (self.ssl_cert_file, "SSL_CERT_FILE"),
        ):
            if path is not None and str(path).strip():
                return path, name
        return None

    def problems(self) -> list[ConfigError]:
        """Every setting the configured source and destinations need that is missing or points
        at nothing: all of them, so an operator fixes them in one round."""
        found: list[ConfigError] = []
        try:
            self.salesforce.auth_mode()
        except ConfigError as exc:
            found.append(exc)
        for section in self.dialers.values():
            found += section.missing()
        if self.mapping.file is not None and not self.mapping.file.is_file():
            name = env_name("mapping", "file")
            found.append(ConfigError(f"{name}: no such file {self.mapping.file}", setting=name))
        chosen = self.ca_file
        if chosen is not None and not chosen[0].is_file():
            path, name = chosen
            found.append(ConfigError(f"{name}: the CA bundle {path} does not exist", setting=name))
        return found

    def check(self) -> None:
        """Raise one ConfigError naming every problem of ``problems()``."""
        raise_all(self.problems())

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
    """Build settings from the environment; validation errors become one ConfigError that
    names every invalid variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems: list[ConfigError] = []
        seen: set[str] = set()
        for error in exc.errors():
            loc = [str(p) for p in error["loc"]]
            name = _variable(loc)
            if name in seen:
                continue
            seen.add(name)
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(ConfigError(f"{name} is invalid: {message}", setting=name))
        raise combined(problems) from None


def _variable(loc: list[str]) -> str:
    if not loc:
        return ENV_PREFIX
    if loc[0] in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        return loc[0]
    return env_name(*loc)
