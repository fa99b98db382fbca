"""The settings of the service's processes: the schedule and task limits (DIALSYNC_SYNC__*),
Flower (DIALSYNC_FLOWER__*), the /metrics endpoint (DIALSYNC_METRICS__*) and the alert webhook
(DIALSYNC_ALERTS__*)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator

from dialsync.errors import ConfigError
from dialsync.settings_base import env_name, http_url


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
        return None if value is None or not value.strip() else http_url(value)

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
