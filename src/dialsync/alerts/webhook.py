"""The webhook body and its delivery: one POST with bounded timeouts, a short retry, and a
True/False answer. Never raises: a failing webhook is the alert system's problem, not the
sync's. The URL is never logged (a Slack webhook URL is a credential)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from dialsync.alerts.state import Owed

log = logging.getLogger(__name__)
IN_PROCESS_ATTEMPTS = 2  # then a later evaluation retries, backing off (state.failed)
IN_PROCESS_BACKOFF_SECONDS = 0.5
CONTACT_ALERTS = frozenset({"opt_out_pending", "rejected_records"})


def body(item: Owed) -> dict[str, Any]:
    """Slack shows ``text``; the other fields are for generic receivers."""
    text = str(item.detail.get("text") or item.alert)
    out: dict[str, Any] = {
        "text": f"[{item.status.upper()}] {text}",
        "alert": item.alert,
        "status": item.status,
        "destination": item.destination,
        "key": item.key,
        "since": item.since.isoformat(),
        "values": item.detail.get("values") or {},
    }
    if item.alert in CONTACT_ALERTS:
        out["contact_ids"] = list(item.detail.get("contact_ids") or [])
    return out


class Webhook:
    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        verify: Any = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.sleep = sleep
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            verify=verify,
            transport=transport,
            follow_redirects=False,
        )

    def send(self, item: Owed) -> bool:
        payload = body(item)
        for attempt in range(1, IN_PROCESS_ATTEMPTS + 1):
            try:
                response = self.client.post(self.url, json=payload)
            except httpx.HTTPError as exc:
                problem = exc.__class__.__name__
            else:
                if response.is_success:
                    log.info("alert %s %s sent", item.key, item.status)
                    return True
                problem = f"HTTP {response.status_code}"
            log.warning(
                "alert %s %s: the webhook failed (%s, attempt %d)",
                item.key,
                item.status,
                problem,
                attempt,
            )
            if attempt < IN_PROCESS_ATTEMPTS:
                self.sleep(IN_PROCESS_BACKOFF_SECONDS * attempt)
        return False

    def close(self) -> None:
        self.client.close()
