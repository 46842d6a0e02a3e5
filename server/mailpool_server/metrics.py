"""Prometheus metrics: the collectors, and their own HTTP port (off unless set).

Everything is registered on a registry of its own (not prometheus_client's global one),
so that several servers in one process (tests, the bench) never collide, and the
process collector (CPU, RSS, open files) is added to it explicitly.

The use cases report through service.observe.Observer (this class implements it); the
interceptor, the shim's middleware and the SQLite writer call the methods below. The
queue and mailbox gauges are read from the database by a task every REFRESH_S, never
on the scrape itself: a scrape runs on the exposition's own thread and cannot use the
event loop's connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mailpool_server.service.models import SendResult
from mailpool_server.service.policy import Tier
from mailpool_server.startup import check_free, listen_error

log = logging.getLogger("mailpool.metrics")

# How often the queue and mailbox gauges are read from the database.
REFRESH_S = 5.0
# Latency buckets (seconds): sub-millisecond RPCs up to long-polls and slow SMTP servers.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
# The gRPC codes that the shim answers with 409.
CONFLICT_CODES = ("ABORTED", "ALREADY_EXISTS")


@dataclass
class QueueSnapshot:
    """What the database said at the last refresh."""

    rows_by_state: dict[str, int]
    oldest_due_age_s: float
    mailboxes: int
    mailboxes_unhealthy: int


class _Snapshots(Collector):
    """The last QueueSnapshot and the connection pool, as gauges, on each scrape."""

    def __init__(self) -> None:
        self.snapshot: QueueSnapshot | None = None
        self.pool: Callable[[], tuple[int, int]] | None = None  # (checked out, size)

    def collect(self) -> Iterable[Metric]:
        snapshot = self.snapshot
        if snapshot is not None:
            rows = GaugeMetricFamily(
                "mailpool_queue_rows", "Queued sends by state.", labels=["state"]
            )
            for state, count in sorted(snapshot.rows_by_state.items()):
                rows.add_metric([state], count)
            yield rows
            yield GaugeMetricFamily(
                "mailpool_queue_oldest_due_age_seconds",
                "How long the oldest due queued send has been due (0: none is due).",
                value=snapshot.oldest_due_age_s,
            )
            yield GaugeMetricFamily(
                "mailpool_mailboxes", "Mailboxes of every identity.", value=snapshot.mailboxes
            )
            yield GaugeMetricFamily(
                "mailpool_mailboxes_unhealthy",
                "Mailboxes whose health is below 20: never picked for sending.",
                value=snapshot.mailboxes_unhealthy,
            )
        if self.pool is not None:
            checked_out, size = self.pool()
            yield GaugeMetricFamily(
                "mailpool_db_pool_checked_out",
                "PostgreSQL connections in use.",
                value=checked_out,
            )
            yield GaugeMetricFamily(
                "mailpool_db_pool_size", "PostgreSQL connections kept open.", value=size
            )


class Metrics:
    """Every mailpool collector, on its own registry."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        self.rpc_seconds = Histogram(
            "mailpool_rpc_duration_seconds",
            "gRPC calls by method and status code (a stream: until it ends).",
            ["method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.http_seconds = Histogram(
            "mailpool_http_request_duration_seconds",
            "HTTP shim requests by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.accepted = Counter(
            "mailpool_send_recipients_accepted",
            "Recipients queued by Send, by the identity's tier.",
            ["tier"],
            registry=registry,
        )
        self.rejected = Counter(
            "mailpool_send_recipients_rejected",
            "Recipients rejected by Send, by tier and reason.",
            ["tier", "reason"],
            registry=registry,
        )
        self.replays = Counter(
            "mailpool_idempotent_replays",
            "Sends answered from their idempotency record.",
            registry=registry,
        )
        self.conflicts = Counter(
            "mailpool_conflicts",
            "Calls refused with a conflict (HTTP 409), by error reason.",
            ["reason"],
            registry=registry,
        )
        self.deliveries = Counter(
            "mailpool_deliveries",
            "Delivery attempts by transport and outcome (sent, retry, failed).",
            ["transport", "outcome"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "mailpool_delivery_duration_seconds",
            "Time the transport took to hand one message over (SMTP: the whole session).",
            ["transport"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.inbound_messages = Counter(
            "mailpool_inbound_messages",
            "Inbound messages stored, by kind (reply, new, bounce_hard, bounce_soft).",
            ["kind"],
            registry=registry,
        )
        self.streams = Gauge(
            "mailpool_streams_open",
            "Server streams open, by method.",
            ["method"],
            registry=registry,
        )
        self.long_polls = Gauge(
            "mailpool_long_polls_in_progress",
            "ListEvents calls waiting for events (timeout_ms > 0).",
            registry=registry,
        )
        self.stalled = Counter(
            "mailpool_stalled_subscribers_ended",
            "Streams ended because the subscriber stopped reading.",
            registry=registry,
        )
        self.commit_units = Histogram(
            "mailpool_sqlite_group_commit_units",
            "Units of work made durable by one SQLite COMMIT.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.lock_wait_seconds = Histogram(
            "mailpool_sqlite_write_lock_wait_seconds",
            "Time a SQLite writer waited for its turn on the writer connection.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.snapshots = _Snapshots()
        registry.register(self.snapshots)

    # service.observe.Observer
    def send_decided(self, tier: Tier, result: SendResult) -> None:
        if result.accepted:
            self.accepted.labels(tier.value).inc(result.accepted)
        for outcome in result.results:
            if outcome.reason is not None:
                self.rejected.labels(tier.value, outcome.reason.value).inc()

    def send_replayed(self) -> None:
        self.replays.inc()

    def delivery(self, transport: str, outcome: str, seconds: float) -> None:
        self.deliveries.labels(transport, outcome).inc()
        self.delivery_seconds.labels(transport).observe(seconds)

    def inbound(self, kind: str) -> None:
        self.inbound_messages.labels(kind).inc()

    # The interceptor's
    def rpc_done(self, method: str, code: str, seconds: float) -> None:
        self.rpc_seconds.labels(method, code).observe(seconds)

    def rpc_refused(self, code: str, reason: str) -> None:
        if code in CONFLICT_CODES:
            self.conflicts.labels(reason).inc()

    @contextlib.contextmanager
    def stream_open(self, method: str) -> Iterator[None]:
        gauge = self.streams.labels(method)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    # The shim's
    def http_done(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_seconds.labels(route, method, str(status)).observe(seconds)

    # The SQLite writer's
    def batch_committed(self, units: int) -> None:
        self.commit_units.observe(units)

    def lock_waited(self, seconds: float) -> None:
        self.lock_wait_seconds.observe(seconds)

    def exported_names(self) -> set[str]:
        """Every series name the registry exports, including labelled families not
        observed yet (a test checks the alert rules against them)."""
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
        }
        names: set[str] = set()
        for family in self.registry.collect():
            names.update(family.name + s for s in suffixes.get(family.type, ("",)))
            names.update(sample.name for sample in family.samples)
        return names


class SnapshotRefresher:
    """Reads the queue and mailbox gauges every `every_s` seconds on the event loop."""

    def __init__(
        self,
        metrics: Metrics,
        read: Callable[[], Awaitable[QueueSnapshot]] | None = None,
        *,
        every_s: float = REFRESH_S,
    ) -> None:
        self._metrics = metrics
        self._read = read
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def refresh(self) -> None:
        if self._read is not None:
            self._metrics.snapshots.snapshot = await self._read()

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("metrics refresh failed")
            await asyncio.sleep(self._every_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


@dataclass
class MetricsServer:
    """prometheus_client's own exposition, on a thread: any path answers (/metrics)."""

    httpd: WSGIServer
    thread: threading.Thread
    port: int

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(metrics: Metrics, host: str, port: int) -> MetricsServer:
    """Serve the registry on host:port (0 = a free port). A port that cannot be bound is
    CannotListen("metrics", …)."""
    check_free("metrics", host, port)
    try:
        httpd, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as error:
        raise listen_error("metrics", host, port, error) from None
    return MetricsServer(httpd, thread, int(httpd.server_address[1]))
