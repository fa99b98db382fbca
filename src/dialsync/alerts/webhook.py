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
from dialsync.retry import RetryPolicy, decide

log = logging.getLogger(__name__)
# Two attempts in-line, then a later evaluation retries, backing off (state.failed). A
# receiver asking for a pause longer than 5 s is left to that later evaluation: an alert
# never holds up the sync.
POLICY = RetryPolicy(max_attempts=2, base_seconds=0.5, max_backoff_seconds=5.0)
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
        """One delivery, under the project's one retry policy (retry.decide): a 429 or 5xx
        or a lost connection is tried again in-line once (after Retry-After when the receiver
        says, Slack does); anything else is left to a later evaluation (state.failed)."""
        payload = body(item)
        attempt = 0
        while True:
            attempt += 1
            outcome: httpx.Response | Exception
            try:
                outcome = self.client.post(self.url, json=payload)
            except httpx.TransportError as exc:
                outcome, problem = exc, exc.__class__.__name__
            except httpx.HTTPError as exc:  # no transport failure (redirects, decoding): final
                log.warning("alert %s %s: the webhook failed (%s)", item.key, item.status, exc)
                return False
            else:
                if outcome.is_success:
                    log.info("alert %s %s sent", item.key, item.status)
                    return True
                problem = f"HTTP {outcome.status_code}"
            action = decide(outcome, attempt, policy=POLICY)
            log.warning(
                "alert %s %s: the webhook failed (%s, attempt %d)",
                item.key,
                item.status,
                problem,
                attempt,
            )
            if not action.retry:
                return False
            assert action.wait is not None  # decide() gives every retry its wait
            self.sleep(action.wait)

    def close(self) -> None:
        self.client.close()
