"""`dialsync doctor`'s stream checks: is Change Data Capture on for Contact, and does the
Pub/Sub API accept us on the topic? Reads only."""

from __future__ import annotations

from typing import Literal, Protocol

from dialsync.errors import DialsyncError
from dialsync.settings import Settings, env_name
from dialsync.stream.client import PubSubClient
from dialsync.stream.service import ca_path, credential_source

# The standard channel's selected entities (Tooling API); Contact's is ContactChangeEvent.
SELECTION = "SELECT SelectedEntity FROM PlatformEventChannelMember"
ENABLE_CDC = (
    "in Salesforce Setup > Integrations > Change Data Capture, move Contact to Selected "
    "Entities and save (an admin's task; it takes effect in a few minutes)"
)


class Out(Protocol):
    def add(
        self, name: str, status: Literal["ok", "warn", "fail"], detail: str, fix: str = ""
    ) -> None: ...


def check_stream(settings: Settings, out: Out) -> None:
    if not settings.stream.enabled:
        out.add("stream", "ok", f"off ({env_name('stream', 'enabled')}): changes arrive by polling")
        return
    from dialsync.sources.salesforce import SalesforceSource
    from dialsync.wiring import tls_from

    verify = tls_from(settings).requests_verify
    source = SalesforceSource(settings.salesforce, verify=verify)
    try:
        source.open()
        rows = source.tooling_query(SELECTION)
    except DialsyncError as exc:
        out.add("change data capture", "fail", f"cannot read the selection: {exc}", ENABLE_CDC)
    else:
        entity = settings.stream.topic.removeprefix("/data/")
        if any(r.get("SelectedEntity") == entity for r in rows):
            out.add("change data capture", "ok", f"{entity} is selected")
        else:
            out.add("change data capture", "fail", f"{entity} is not selected", ENABLE_CDC)
    finally:
        source.close()
    client = PubSubClient(settings.stream.pubsub_endpoint, ca_file=ca_path(settings))
    try:
        topic = client.get_topic(credential_source(settings, verify)(False), settings.stream.topic)
        if topic.can_subscribe:
            out.add("pub/sub api", "ok", f"{settings.stream.topic} on {client.endpoint}")
        else:
            out.add(
                "pub/sub api",
                "fail",
                f"not allowed to subscribe to {settings.stream.topic}",
                "give the integration user the View All Data or the change events' permissions",
            )
    except DialsyncError as exc:
        name = env_name("stream", "pubsub_endpoint")
        out.add("pub/sub api", "fail", str(exc), f"check {name} and the network path to it")
    finally:
        client.close()
