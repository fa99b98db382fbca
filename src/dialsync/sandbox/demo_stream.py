"""The demo's last act: the change feed. With the stream on, an opt-out and a new contact
reach every destination within seconds, with no sync run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from dialsync.sandbox.harness import Sandboxes
from dialsync.sandbox.pubsub import PubSubSandbox
from dialsync.settings import StreamSettings
from dialsync.stream.service import StreamMetrics, run_stream
from dialsync.wiring import build_engine, build_store

WAIT = 30.0  # seconds the demo waits for a change before calling the step failed
NEW_CONTACT = {
    "FirstName": "Streamed",
    "LastName": "In",
    "MobilePhone": "+1 415 555 0199",
    "MailingCountry": "United States",
}


def stream_step(
    box: Sandboxes,
    echo: Callable[[str], object],
    clock: Callable[[], datetime],
    present: Callable[[str], bool],
) -> bool:
    """Stream on; one contact opts out and one is added; True when both reach the lists.
    ``present(id)``: whether a contact is held in every destination."""
    sf = box.salesforce
    with PubSubSandbox(sf, keepalive_seconds=0.5) as pubsub:
        settings = box.settings(
            stream=StreamSettings(enabled=True, pubsub_endpoint=pubsub.endpoint)
        )
        store = build_store(settings)
        engine = build_engine(settings, store)
        engine.clock = store.clock = clock
        stop = threading.Event()
        observed = StreamMetrics()
        thread = threading.Thread(
            target=run_stream,
            args=(settings, engine, stop),
            kwargs={"database": store.engine, "push": True, "metrics": observed},
            daemon=True,
        )
        thread.start()
        try:
            if not observed.ready.wait(WAIT):  # subscribed, confirmed and caught up
                echo(f"stream on (Pub/Sub API at {pubsub.endpoint}): NOT subscribed in {WAIT:.0f}s")
                return False
            deadline = time.monotonic() + WAIT
            opted = next(c["Id"] for c in sf.live_contacts() if present(c["Id"]))
            started = time.monotonic()
            sf.update(opted, {"DoNotCall": True})
            new = sf.insert(NEW_CONTACT)
            while time.monotonic() < deadline and (present(opted) or not present(new)):
                time.sleep(0.02)
            ok = not present(opted) and present(new)
            echo(
                f"stream on (Pub/Sub API at {pubsub.endpoint}): an opt-out and a new contact "
                + (
                    f"reached the lists in {time.monotonic() - started:.1f}s, no sync run"
                    if ok
                    else f"did NOT reach the lists within {WAIT:.0f}s"
                )
            )
            return ok
        finally:
            stop.set()
            thread.join(timeout=15)
            engine.close()
