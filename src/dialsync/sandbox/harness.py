"""The sandboxes started together, and the Settings that point dialsync at them.

Salesforce and Talkdesk by default; Everbridge and Conga when ``destinations`` names them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from dialsync.sandbox.conga import CongaSandbox
from dialsync.sandbox.everbridge import EverbridgeSandbox
from dialsync.sandbox.salesforce import SalesforceSandbox
from dialsync.sandbox.talkdesk import TalkdeskSandbox
from dialsync.settings import (
    CongaSettings,
    EverbridgeSettings,
    MappingSettings,
    SalesforceSettings,
    Settings,
    SyncSettings,
    TalkdeskSettings,
    parse_destinations,
)


class Sandboxes:
    """Salesforce (TLS) and the destinations' sandboxes on loopback.

    Talkdesk gets one record list created. Every sandbox object exists whichever destinations
    are on, but only those named are started and put in the settings.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        unique_identifier_type: str = "EXTERNAL",
        salesforce: dict[str, Any] | None = None,
        talkdesk: dict[str, Any] | None = None,
        everbridge: dict[str, Any] | None = None,
        conga: dict[str, Any] | None = None,
        destinations: tuple[str, ...] = ("talkdesk",),
    ) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="dialsync-sandbox-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.salesforce = SalesforceSandbox(tls_dir=self.workdir / "tls", **(salesforce or {}))
        self.talkdesk = TalkdeskSandbox(**(talkdesk or {}))
        self.everbridge = EverbridgeSandbox(**(everbridge or {}))
        self.conga = CongaSandbox(**(conga or {}))
        self.destinations = parse_destinations(",".join(destinations))
        self.unique_identifier_type = unique_identifier_type
        self.list_id = ""

    def start(self) -> Sandboxes:
        self.salesforce.start()
        if "talkdesk" in self.destinations:
            self.talkdesk.start()
            self.list_id = self.talkdesk.create_list("Outbound", self.unique_identifier_type)
        if "everbridge" in self.destinations:
            self.everbridge.start()
        if "conga" in self.destinations:
            self.conga.start()
        return self

    def sandbox(self, name: str) -> TalkdeskSandbox | EverbridgeSandbox | CongaSandbox:
        """The sandbox of one destination, by its DIALSYNC_DESTINATIONS name."""
        if name == "everbridge":
            return self.everbridge
        if name == "conga":
            return self.conga
        return self.talkdesk

    def stop(self) -> None:
        for name in self.destinations:
            self.sandbox(name).stop()
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
            "destinations": ",".join(self.destinations),
        }
        if "everbridge" in self.destinations:
            eb = self.everbridge
            values["everbridge"] = EverbridgeSettings(
                api_url=eb.api_url,
                token_url=eb.token_url,
                organization_id=eb.organization_id,
                client_id=eb.client_id,
                client_secret=SecretStr(eb.client_secret),
                username=eb.username,
                password=SecretStr(eb.password),
                timeout_seconds=5,
                max_backoff_seconds=2,
            )
        if "conga" in self.destinations:
            cg = self.conga
            values["conga"] = CongaSettings(
                api_url=cg.url,
                token_url=cg.token_url,
                client_id=cg.client_id,
                client_secret=SecretStr(cg.client_secret),
                user_id=cg.require_user_id,
                timeout_seconds=5,
                max_backoff_seconds=2,
            )
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def env(self, database_url: str | None = None) -> dict[str, str]:
        """The same settings as environment variables, for subprocesses."""
        sf, td = self.salesforce, self.talkdesk
        env = {
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
            "DIALSYNC_DESTINATIONS": ",".join(self.destinations),
        }
        if "everbridge" in self.destinations:
            eb = self.everbridge
            env.update(
                {
                    "DIALSYNC_EVERBRIDGE__API_URL": eb.api_url,
                    "DIALSYNC_EVERBRIDGE__TOKEN_URL": eb.token_url,
                    "DIALSYNC_EVERBRIDGE__ORGANIZATION_ID": eb.organization_id,
                    "DIALSYNC_EVERBRIDGE__CLIENT_ID": eb.client_id,
                    "DIALSYNC_EVERBRIDGE__CLIENT_SECRET": eb.client_secret,
                    "DIALSYNC_EVERBRIDGE__USERNAME": eb.username,
                    "DIALSYNC_EVERBRIDGE__PASSWORD": eb.password,
                    "DIALSYNC_EVERBRIDGE__TIMEOUT_SECONDS": "5",
                    "DIALSYNC_EVERBRIDGE__MAX_BACKOFF_SECONDS": "2",
                }
            )
        if "conga" in self.destinations:
            cg = self.conga
            env.update(
                {
                    "DIALSYNC_CONGA__API_URL": cg.url,
                    "DIALSYNC_CONGA__TOKEN_URL": cg.token_url,
                    "DIALSYNC_CONGA__CLIENT_ID": cg.client_id,
                    "DIALSYNC_CONGA__CLIENT_SECRET": cg.client_secret,
                    "DIALSYNC_CONGA__TIMEOUT_SECONDS": "5",
                    "DIALSYNC_CONGA__MAX_BACKOFF_SECONDS": "2",
                }
            )
            if cg.require_user_id:
                env["DIALSYNC_CONGA__USER_ID"] = cg.require_user_id
        return env
