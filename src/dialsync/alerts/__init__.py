"""Alerts: conditions read from the state database after each run, sent to a webhook once when
they start and once when they clear (see README, "Alerts").

``Alerts.check()`` is what the CLI, `dialsync run` and the Celery task call: it evaluates
(database reads, quick), records the state, logs pending opt-outs, and hands the messages owed
to a background thread. It never raises and never waits for the webhook; ``wait()`` lets a
short-lived process (cron `dialsync sync`) give that thread a bounded time before it exits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from dialsync.alerts import conditions, state
from dialsync.alerts.conditions import Finding
from dialsync.alerts.webhook import Webhook
from dialsync.destinations.base import TargetInfo
from dialsync.logs import register_secret
from dialsync.settings import Settings
from dialsync.store.database import Database

log = logging.getLogger(__name__)
EXIT_WAIT_SECONDS = 15.0  # the most a finished `dialsync sync` waits for its messages

__all__ = ["Alerts", "Finding"]


class Alerts:
    def __init__(
        self,
        settings: Settings,
        store: Database,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        webhook: Webhook | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.webhook = webhook
        url = settings.alerts.webhook_url
        if webhook is None and url:
            register_secret(url)  # a Slack webhook URL is a credential
            from dialsync.wiring import tls_from

            self.webhook = Webhook(
                url, timeout=settings.alerts.timeout_seconds, verify=tls_from(settings).httpx_verify
            )
        self._sender: threading.Thread | None = None

    def check(self, targets: Mapping[str, TargetInfo] | None = None) -> list[Finding]:
        """Evaluate, record, and start delivering; returns the findings (empty on a failure)."""
        try:
            now = self.clock()
            findings = conditions.evaluate(self.store, self.settings, now, targets)
            state.record(self.store, findings, now)
            self._log(findings)
            self._deliver()
            return findings
        except Exception as exc:  # alerting must never fail the sync
            log.error("alerts: evaluation failed: %s: %s", exc.__class__.__name__, exc)
            return []

    def _log(self, findings: list[Finding]) -> None:
        for f in findings:
            if f.firing and f.alert == "opt_out_pending":
                # an error line each cycle while an opt-out waits (ids only: no names, phones)
                log.error("%s; contact ids: %s", f.text, ", ".join(f.contact_ids[:20]))

    def _deliver(self) -> None:
        if self.webhook is None:
            return
        if self._sender is not None and self._sender.is_alive():
            return  # the running sender picks the rest up on the next check
        items = state.owed(self.store, self.clock(), self.settings.alerts.min_interval_seconds)
        if not items:
            return
        self._sender = threading.Thread(
            target=self._send_all, args=(items,), name="dialsync-alerts", daemon=True
        )
        self._sender.start()

    def _send_all(self, items: list[state.Owed]) -> None:
        assert self.webhook is not None
        reachable = True
        for item in items:
            try:
                if not state.claim(self.store, item, self.clock()):
                    continue
                # Once the webhook failed, the rest of this batch waits for a later check
                # rather than spend a timeout each.
                if reachable and self.webhook.send(item):
                    state.delivered(self.store, item, self.clock())
                else:
                    reachable = False
                    state.failed(self.store, item, self.clock())
            except Exception as exc:  # a database hiccup: the claim expires, a later check
                log.error("alerts: delivery of %s failed: %s", item.key, exc.__class__.__name__)

    def wait(self, timeout: float = EXIT_WAIT_SECONDS) -> None:
        """Give the messages in flight up to ``timeout`` seconds (a process about to exit)."""
        if self._sender is not None:
            self._sender.join(timeout)

    def close(self, timeout: float = EXIT_WAIT_SECONDS) -> None:
        self.wait(timeout)
        if self.webhook is not None and (self._sender is None or not self._sender.is_alive()):
            self.webhook.close()


def check_after_run(
    settings: Settings, store: Database, targets: Mapping[str, TargetInfo] | None = None
) -> None:
    """For a process that ran once and exits: evaluate, then give delivery a bounded wait."""
    alerts = Alerts(settings, store)
    alerts.check(targets)
    alerts.close()
