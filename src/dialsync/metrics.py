"""Prometheus metrics, served by each Celery worker on DIALSYNC_METRICS__PORT.

How the prefork pool is handled: the work happens in pool processes, the endpoint lives in
the worker's main process. Two kinds of numbers, two paths:

* What the pool processes see (records by result, HTTP requests by status, 429s, runs, the
  Salesforce API usage from ``Sforce-Limit-Info``) uses prometheus-client's multiprocess mode:
  each process writes its samples to files in one directory, which the main process sums on
  each scrape. The directory is set (and emptied) in the main process before the pool forks,
  so every pool process, including those forked later to replace one, writes there. Counters
  of a process that exited stay in the sum, so they never go backwards.
* State (rows by status, the backlog, the cursor's lag, the last successful run of each kind)
  is read from the state database on each scrape, by the main process, over a connection
  opened for the scrape only: no pooled connection is ever inherited by a forked process.

A scrape is therefore cheap in the pool and costs four small queries. Flower serves its own
``/metrics`` (task events: counts, runtimes, queue wait); this endpoint covers the sync itself.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from dialsync.calls import Call
from dialsync.destinations.base import Bounded, Destination, ItemResult
from dialsync.engine import Observer, RunReport
from dialsync.errors import ConfigError, DialsyncError
from dialsync.settings import Settings
from dialsync.sources.salesforce import CURSOR
from dialsync.store.store import SqlSyncStore

log = logging.getLogger(__name__)
_LIMIT_INFO = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")
_directory: Path | None = None  # set in the worker's main process, inherited by the pool


class _Metrics:
    """Created on first use in a process, after the multiprocess directory is set."""

    def __init__(self) -> None:
        self.records = Counter(
            "dialsync_records_total",
            "Records a destination answered (or a failed call covered), by operation and result",
            ["destination", "list", "op", "result"],
        )
        self.requests = Counter(
            "dialsync_http_requests_total",
            "HTTP answers from Salesforce and the dialers, by status code",
            ["system", "status"],
        )
        self.rate_limited = Counter(
            "dialsync_rate_limited_total", "429 Too Many Requests answers", ["system"]
        )
        self.runs = Counter(
            "dialsync_runs_total", "Engine runs finished, by kind and status", ["kind", "status"]
        )
        self.run_seconds = Histogram(
            "dialsync_run_duration_seconds",
            "Duration of engine runs",
            ["kind"],
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
        )
        self.api_used = Gauge(
            "dialsync_salesforce_api_requests_used",
            "Salesforce API requests used in the last 24 h (Sforce-Limit-Info)",
            multiprocess_mode="mostrecent",
        )
        self.api_limit = Gauge(
            "dialsync_salesforce_api_requests_limit",
            "The org's Salesforce API requests allowed per 24 h (Sforce-Limit-Info)",
            multiprocess_mode="mostrecent",
        )
        self.list_fill = Gauge(
            "dialsync_record_list_fill_ratio",
            "Records a record list holds / the most it may hold (Talkdesk: 250,000; it warns "
            "from 0.8; at 1 new contacts wait)",
            ["destination", "list"],
            multiprocess_mode="mostrecent",
        )
        self.opt_out_seconds = Histogram(
            "dialsync_opt_out_latency_seconds",
            "Opt-outs the dialer confirmed removed, from the contact's Salesforce SystemModstamp"
            " to the confirmation",
            ["destination", "list"],
            buckets=(10, 30, 60, 120, 300, 600, 900, 1800, 3600, 4 * 3600, 86400, 10 * 86400),
        )
        self.dialer_seconds = Histogram(
            "dialsync_dialer_request_duration_seconds",
            "Dialer calls answered, from request to answer",
            ["system"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
        )
        # The change stream (`dialsync stream`, or the stream thread of `dialsync run`).
        self.stream_events = Counter(
            "dialsync_stream_events_total",
            "Change events delivered by the Pub/Sub API (they count against the org's "
            "event delivery allocation)",
        )
        self.stream_fallbacks = Counter(
            "dialsync_stream_fallbacks_total",
            "Times the stream fell back to polling, by reason (allocation, replay_refused, "
            "unconfirmed)",
            ["reason"],
        )
        self.stream_keepalives = Counter(
            "dialsync_stream_keepalives_total",
            "Keepalives (responses without events) the Pub/Sub API sent: the stream is alive",
        )
        self.stream_live = Gauge(
            "dialsync_stream_live",
            "1 while the stream is subscribed, confirmed and caught up; 0 while it is not",
            multiprocess_mode="mostrecent",
        )


_metrics: _Metrics | None = None


def instruments() -> _Metrics:
    global _metrics
    if _metrics is None:
        _metrics = _Metrics()
    return _metrics


def collecting() -> bool:
    """Whether this process belongs to a worker serving metrics (so engines are counted)."""
    return _directory is not None


def start(settings: Settings, *, strict: bool = False) -> None:
    """In the worker's main process before the pool starts (and in `dialsync run`): set up and
    serve /metrics. Once per process. ``strict``: a port already taken (another worker on this
    host) is a ConfigError naming the setting, instead of a worker without an endpoint."""
    global _directory
    m = settings.metrics
    if m.port is None or _directory is not None:
        return
    registry = CollectorRegistry()
    if m.dir:
        # One subdirectory per port: two workers of one host never empty each other's samples.
        directory = Path(m.dir) / f"port-{m.port}"
    else:
        directory = Path(tempfile.mkdtemp(prefix="dialsync-metrics-"))
        atexit.register(_remove_if_owner, directory, os.getpid())
    directory.mkdir(parents=True, exist_ok=True)
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    registry.register(StateCollector(settings.database_url, settings))
    try:  # bound first: a worker that cannot serve must not touch the samples of one that does
        start_http_server(m.port, addr=m.address, registry=registry)
    except OSError as exc:
        message = (
            f"metrics: cannot listen on {m.address}:{m.port} ({exc.strerror or exc}); another "
            "worker or `dialsync run` on this host serves it: give each its own port "
            "(`dialsync worker --metrics-port N`, or DIALSYNC_METRICS__PORT; empty for none)"
        )
        if strict:
            raise ConfigError(message, setting="DIALSYNC_METRICS__PORT") from None
        log.error("%s; no /metrics here", message)
        return
    shutil.rmtree(directory, ignore_errors=True)  # samples of a previous run would be summed
    directory.mkdir(parents=True, exist_ok=True)
    # prometheus-client reads its directory from the environment, in this process and in the
    # forked pool; its value class is chosen again in case the library was imported earlier.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]
    _directory = directory
    log.info("metrics: serving http://%s:%s/metrics", m.address, m.port)


def _remove_if_owner(directory: Path, owner: int) -> None:
    # Pool processes inherit the exit hook; only the worker's main process cleans up.
    if os.getpid() == owner:
        shutil.rmtree(directory, ignore_errors=True)


def observer(destinations: Sequence[Destination] = ()) -> Observer:
    """What an engine reports, counted (its HTTP calls are counted by ``count_call``, a hook
    the composition root passes to each client); ``destinations`` for their lists' fill."""
    from dialsync.store import optouts

    optouts.listen(_opt_out_removed)  # the store times each confirmed removal
    return MetricsObserver(instruments(), destinations)


def _opt_out_removed(destination: str, list_id: str, seconds: float) -> None:
    instruments().opt_out_seconds.labels(destination, list_id).observe(seconds)


def count_call(call: Call) -> None:
    """A call hook: answers by status, 429s, and Salesforce's API usage."""
    metrics = instruments()
    metrics.requests.labels(call.system, str(call.status)).inc()
    if call.system != "salesforce":
        metrics.dialer_seconds.labels(call.system).observe(call.seconds)
    if call.status == 429:
        metrics.rate_limited.labels(call.system).inc()
    if call.system == "salesforce" and call.headers is not None:
        found = _LIMIT_INFO.search(call.headers.get("Sforce-Limit-Info", ""))
        if found:
            metrics.api_used.set(int(found.group(1)))
            metrics.api_limit.set(int(found.group(2)))


class MetricsObserver(Observer):
    def __init__(self, metrics: _Metrics, destinations: Sequence[Destination] = ()) -> None:
        self.metrics = metrics
        self.destinations = list(destinations)

    def batch_sent(self, dest: str, op: str, results: Sequence[ItemResult]) -> None:
        name, _, target = dest.partition(":")
        for result in results:
            self.metrics.records.labels(name, target, op, result.outcome.value).inc()

    def batch_failed(self, dest: str, op: str, count: int, error: DialsyncError) -> None:
        name, _, target = dest.partition(":")
        self.metrics.records.labels(name, target, op, "failed").inc(count)

    def run_finished(self, report: RunReport, seconds: float, status: str) -> None:
        self.metrics.runs.labels(report.kind, status).inc()
        self.metrics.run_seconds.labels(report.kind).observe(seconds)
        for dest in self.destinations:
            fill = dest.fill() if isinstance(dest, Bounded) else None
            if fill is not None:  # the list's count at open, plus this run's creates and deletes
                self.metrics.list_fill.labels(dest.name, dest.target).set(fill.share)


class StateCollector(Collector):
    """Gauges read from the state database at scrape time, in the main process."""

    def __init__(self, database_url: str, settings: Settings | None = None) -> None:
        self.store = SqlSyncStore(create_engine(database_url, poolclass=NullPool))
        self.settings = settings

    def describe(self) -> Iterable[Metric]:
        return []  # nothing to check at registration: the database is read per scrape

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("dialsync_state_db_up", "1 when the state database answered")
        try:
            counts = self.store.status_counts()
            stuck_by_list = self.store.stuck_counts()
            cursor = self.store.get_cursor(CURSOR)
            finished = self.store.last_success()
        except Exception as exc:  # a scrape must answer, saying the database did not
            log.warning("metrics: state database unreadable: %s", exc.__class__.__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        rows = GaugeMetricFamily(
            "dialsync_sync_records",
            "Rows of the sync table by state",
            labels=["destination", "list", "status"],
        )
        backlog = GaugeMetricFamily(
            "dialsync_backlog_rows",
            "Rows waiting to be sent to the dialer (pending or retrying)",
            labels=["destination", "list"],
        )
        waiting: dict[tuple[str, str], int] = {}
        for (dest, list_id, status), n in sorted(counts.items()):
            rows.add_metric([dest, list_id, status], n)
            if status in ("pending", "retrying"):
                waiting[(dest, list_id)] = waiting.get((dest, list_id), 0) + n
            else:
                waiting.setdefault((dest, list_id), 0)
        for (dest, list_id), n in waiting.items():
            backlog.add_metric([dest, list_id], n)
        failing = GaugeMetricFamily(
            "dialsync_failing_removals",
            "Records that must leave the list (do not call, deleted, out of scope) whose"
            " removal the dialer refused; retried with backoff until it is done",
            labels=["destination", "list"],
        )
        stuck_rows = GaugeMetricFamily(
            "dialsync_stuck_rows",
            "Rows still wrong in the dialer after several tries, each after its backoff",
            labels=["destination", "list"],
        )
        for dest, list_id in sorted(waiting):
            removals, stuck = stuck_by_list.get((dest, list_id), (0, 0))
            failing.add_metric([dest, list_id], removals)
            stuck_rows.add_metric([dest, list_id], stuck)
        out: list[Metric] = [up, rows, backlog, failing, stuck_rows]
        if cursor.modstamp is not None:
            out.append(
                GaugeMetricFamily(
                    "dialsync_sync_lag_seconds",
                    "Seconds since the SystemModstamp of the newest contact synced (the cursor);"
                    " grows in a quiet org too",
                    value=(datetime.now(UTC) - cursor.modstamp).total_seconds(),
                )
            )
            out.append(
                GaugeMetricFamily(
                    "dialsync_cursor_timestamp_seconds",
                    "The cursor: SystemModstamp of the newest contact synced, as a Unix time",
                    value=cursor.modstamp.timestamp(),
                )
            )
        last = GaugeMetricFamily(
            "dialsync_last_success_timestamp_seconds",
            "When a run of each kind last finished ok, as a Unix time",
            labels=["kind"],
        )
        for kind, at in sorted(finished.items()):
            last.add_metric([kind], at.timestamp())
        out.append(last)
        try:
            out.extend(self._alerts())
        except Exception as exc:  # an old schema without alert_state: the rest still answers
            log.warning("metrics: alert state unreadable: %s", exc.__class__.__name__)
        return out

    def _alerts(self) -> list[Metric]:
        from dialsync.alerts.conditions import pending_opt_outs
        from dialsync.alerts.state import firing_states

        now = datetime.now(UTC)
        count = GaugeMetricFamily(
            "dialsync_opt_outs_pending",
            "Contacts that must not be called and may still be in the dialer",
            labels=["destination", "list"],
        )
        oldest = GaugeMetricFamily(
            "dialsync_opt_out_pending_oldest_seconds",
            "Age of the oldest pending opt-out, from the Salesforce SystemModstamp of the change"
            " that opted it out",
            labels=["destination", "list"],
        )
        for (dest, list_id), (n, since) in sorted(pending_opt_outs(self.store).items()):
            count.add_metric([dest, list_id], n)
            oldest.add_metric([dest, list_id], max(0.0, (now - since).total_seconds()))
        firing = GaugeMetricFamily(
            "dialsync_alert_firing",
            "1 while a dialsync alert fires (as sent to the webhook), 0 once it cleared",
            labels=["alert", "key"],
        )
        for (alert, key), on in sorted(firing_states(self.store).items()):
            firing.add_metric([alert, key], int(on))
        out: list[Metric] = [count, oldest, firing]
        if self.settings is not None:  # the thresholds, so Prometheus rules use the same
            out.append(
                GaugeMetricFamily(
                    "dialsync_opt_out_threshold_seconds",
                    "DIALSYNC_COMPLIANCE__OPT_OUT_SECONDS",
                    value=self.settings.compliance.opt_out_seconds,
                )
            )
            out.append(
                GaugeMetricFamily(
                    "dialsync_sync_interval_seconds",
                    "DIALSYNC_SYNC__INTERVAL_SECONDS",
                    value=self.settings.sync.interval_seconds,
                )
            )
        return out
