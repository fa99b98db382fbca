"""One settings object, read once at start (env, then .env) and passed down.

Nothing else in dialsync reads ``os.environ`` (but settings_vars, which only looks for
misspelled DIALSYNC_* names). Every field maps to ``DIALSYNC_<FIELD>`` or
``DIALSYNC_<SECTION>__<FIELD>``; ``env_name()`` gives that name back so errors can cite it.
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

ENV_PREFIX = "DIALSYNC_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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
        return None if value is None else _http_url(value)

    def missing(self) -> list[ConfigError]:
        names = ("token_url", "client_id", "client_secret", "record_list_id")
        return _missing("talkdesk", self, names, "to reach the Talkdesk record list")


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


def _missing(section: str, model: BaseModel, names: tuple[str, ...], why: str) -> list[ConfigError]:
    """One error per unset (or blank) setting of ``names``."""
    found = []
    for name in names:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None or (isinstance(value, str) and not value.strip()):
            setting = env_name(section, name)
            found.append(ConfigError(f"{setting} is not set (needed {why})", setting=setting))
    return found


def combined(problems: list[ConfigError]) -> ConfigError:
    """One ConfigError for all of ``problems`` (every one listed, the first one's setting)."""
    if len(problems) == 1:
        return problems[0]
    lines = "\n  ".join(p.message for p in problems)
    return ConfigError(
        f"{len(problems)} settings must be fixed:\n  {lines}", setting=problems[0].setting
    )


def raise_all(problems: list[ConfigError]) -> None:
    if problems:
        raise combined(problems)


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

    def missing(self) -> list[ConfigError]:
        names = ("organization_id", "client_id", "client_secret", "username", "password")
        found = _missing("everbridge", self, names, "to reach the Everbridge organization")
        if not self.record_type_name and self.record_type_id is None:
            found += _missing(
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
        return _http_url(value)

    @property
    def skipped_fields(self) -> frozenset[str]:
        return frozenset(f.strip() for f in self.skip_fields.split(",") if f.strip())

    def missing(self) -> list[ConfigError]:
        return _missing("conga", self, ("client_id", "client_secret"), "to reach Conga")


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


# The placeholders of .env.example: a deployment that kept one is not protected at all.
PLACEHOLDER_PASSWORDS = frozenset({"change-me", "change-me-too", "changeme", "password"})


class FlowerSettings(BaseModel):
    user: str | None = None
    password: SecretStr | None = None
    port: int = Field(default=5555, ge=1, le=65535)
    address: str = "0.0.0.0"
    # Where operators open Flower (e.g. https://flower.example.com); printed by `resync`.
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None or not value.strip() else _http_url(value)

    def auth_problems(self) -> list[ConfigError]:
        """Flower is never served without real basic-auth credentials."""
        found: list[ConfigError] = []
        user_name, password_name = env_name("flower", "user"), env_name("flower", "password")
        if not self.user or not self.user.strip():
            found.append(
                ConfigError(f"{user_name} is not set (Flower needs basic auth)", setting=user_name)
            )
        elif ":" in self.user:
            found.append(ConfigError(f"{user_name} must not contain ':'", setting=user_name))
        password = self.password.get_secret_value() if self.password is not None else ""
        if not password.strip():
            found.append(
                ConfigError(
                    f"{password_name} is not set or blank: Flower is never served without "
                    "authentication",
                    setting=password_name,
                )
            )
        elif password.strip().lower() in PLACEHOLDER_PASSWORDS:
            found.append(
                ConfigError(
                    f"{password_name} is still the placeholder of .env.example: choose a "
                    "password of your own",
                    setting=password_name,
                )
            )
        return found

    @property
    def public_url(self) -> str:
        """Where Flower is reached: the url setting, else this host and port."""
        if self.url:
            return self.url
        host = "localhost" if self.address in ("0.0.0.0", "::", "") else self.address
        return f"http://{host}:{self.port}"


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


class AlertsSettings(BaseModel):
    """Alerts to a webhook (Slack-compatible JSON), each once when it starts and once when it
    clears; blank URL: alerts are still evaluated (logs, metrics) but not sent."""

    webhook_url: str | None = None
    # Per alert: no second message sooner than this, so a flapping condition does not flood.
    min_interval_seconds: float = Field(default=300.0, ge=0)
    failed_runs: int = Field(default=3, ge=1)  # consecutive failed runs that alert
    rejected_percent: float = Field(default=5.0, ge=0, le=100)
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _webhook(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        value = str(value).strip()  # kept as given: a webhook path may end with a slash
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be a URL starting with https://")
        return value


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
