"""Both sandboxes started together, and the Settings that point dialsync at them."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from dialsync.sandbox.salesforce import SalesforceSandbox
from dialsync.sandbox.talkdesk import TalkdeskSandbox
from dialsync.settings import (
    MappingSettings,
    SalesforceSettings,
    Settings,
    SyncSettings,
    TalkdeskSettings,
)


class Sandboxes:
    """Salesforce (TLS) and Talkdesk on loopback, with one record list created."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        unique_identifier_type: str = "EXTERNAL",
        salesforce: dict[str, Any] | None = None,
        talkdesk: dict[str, Any] | None = None,
    ) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="dialsync-sandbox-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.salesforce = SalesforceSandbox(tls_dir=self.workdir / "tls", **(salesforce or {}))
        self.talkdesk = TalkdeskSandbox(**(talkdesk or {}))
        self.unique_identifier_type = unique_identifier_type
        self.list_id = ""

    def start(self) -> Sandboxes:
        self.salesforce.start()
        self.talkdesk.start()
        self.list_id = self.talkdesk.create_list("Outbound", self.unique_identifier_type)
        return self

    def stop(self) -> None:
        self.talkdesk.stop()
        self.salesforce.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Sandboxes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def settings(self, database_url: str | None = None, **overrides: Any) -> Settings:
        sf, td = self.salesforce, self.talkdesk
        values: dict[str, Any] = {
            "database_url": database_url or f"sqlite:///{self.workdir / 'dialsync.db'}",
            "ca_bundle": sf.ca_file,
            "salesforce": SalesforceSettings(
                login_url=sf.url,
                client_id=sf.client_id,
                client_secret=SecretStr(sf.client_secret),
                timeout_seconds=10,
            ),
            "talkdesk": TalkdeskSettings(
                api_url=td.url,
                token_url=td.token_url,
                client_id=td.client_id,
                client_secret=SecretStr(td.client_secret),
                record_list_id=self.list_id,
                timeout_seconds=5,
                max_backoff_seconds=2,
            ),
            "sync": SyncSettings(retry_base_seconds=1, retry_max_seconds=5),
            "mapping": MappingSettings(),
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def env(self, database_url: str | None = None) -> dict[str, str]:
        """The same settings as environment variables, for subprocesses."""
        sf, td = self.salesforce, self.talkdesk
        return {
            "DIALSYNC_DATABASE_URL": database_url or f"sqlite:///{self.workdir / 'dialsync.db'}",
            "DIALSYNC_CA_BUNDLE": str(sf.ca_file),
            "DIALSYNC_SALESFORCE__LOGIN_URL": sf.url,
            "DIALSYNC_SALESFORCE__CLIENT_ID": sf.client_id,
            "DIALSYNC_SALESFORCE__CLIENT_SECRET": sf.client_secret,
            "DIALSYNC_SALESFORCE__TIMEOUT_SECONDS": "10",
            "DIALSYNC_TALKDESK__API_URL": td.url,
            "DIALSYNC_TALKDESK__TOKEN_URL": td.token_url,
            "DIALSYNC_TALKDESK__CLIENT_ID": td.client_id,
            "DIALSYNC_TALKDESK__CLIENT_SECRET": td.client_secret,
            "DIALSYNC_TALKDESK__RECORD_LIST_ID": self.list_id,
            "DIALSYNC_TALKDESK__TIMEOUT_SECONDS": "5",
            "DIALSYNC_TALKDESK__MAX_BACKOFF_SECONDS": "2",
            "DIALSYNC_SYNC__RETRY_BASE_SECONDS": "1",
            "DIALSYNC_SYNC__RETRY_MAX_SECONDS": "5",
        }
