"""The one composition root: settings, engine, clock, services and servers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from mailpool_server.config import Settings
from mailpool_server.delivery.inbound import start_listener
from mailpool_server.delivery.maildir import MaildirTransport
from mailpool_server.delivery.runner import DeliveryLoops
from mailpool_server.delivery.smtp import SmtpTransport
from mailpool_server.delivery.webhook_relay import WebhookRelayLoop, start_relay
from mailpool_server.metrics import (
    Metrics,
    MetricsServer,
    SnapshotRefresher,
    start_metrics_server,
)
from mailpool_server.rest.server import RunningHttp, start_http
from mailpool_server.rpc.server import GrpcServices, RunningGrpc, start_grpc
from mailpool_server.service.admin import Admin
from mailpool_server.service.auth import Authenticator
from mailpool_server.service.clock import Clock, SystemClock, now_ms
from mailpool_server.service.conversations import ConversationQueries
from mailpool_server.service.dispatch import Dispatcher
from mailpool_server.service.event_bus import EventBus
from mailpool_server.service.event_feed import EventFeed
from mailpool_server.service.identities import IdentityQueries
from mailpool_server.service.inbound import Inbound
from mailpool_server.service.models import Transport
from mailpool_server.service.observe import NO_OBSERVER
from mailpool_server.service.outbound import MessageTransport
from mailpool_server.service.send import Sender
from mailpool_server.service.timer import LoopTimer, Timer
from mailpool_server.service.timers import Timers
from mailpool_server.startup import bind, check_database, database_url
from mailpool_server.store.engine import Database, PostgresDatabase, open_database
from mailpool_server.store.ops_stats import queue_snapshot
from mailpool_server.store.pg_notify import PgListener
from mailpool_server.store.sql_store import SqlStore
from mailpool_server.store.sqlite_db import SqliteDatabase
from mailpool_server.tls import BadTls, ServerTls, shim_client_tls

log = logging.getLogger("mailpool")


def listen_addresses(settings: Settings, *, grpc_server: bool = True) -> list[tuple[str, str, int]]:
    """(listener, host, port) of every port App.start will listen on: grpc, http, smtp,
    lmtp."""
    wanted: list[tuple[str, str, int | None]] = []
    if grpc_server:
        wanted.append(("grpc", settings.grpc_host, settings.grpc_port))
        wanted.append(("http", settings.http_host, settings.http_port))
    wanted.append(("smtp", settings.inbound_host, settings.inbound_port))
    wanted.append(("lmtp", settings.inbound_host, settings.lmtp_port))
    wanted.append(("metrics", settings.metrics_host, settings.metrics_port))
    return [(name, host, port) for name, host, port in wanted if port is not None]


@dataclass
class App:
    settings: Settings
    clock: Clock
    timer: Timer
    database: Database
    store: SqlStore
    bus: EventBus
    admin: Admin
    grpc_services: GrpcServices
    dispatcher: Dispatcher
    timers: Timers
    inbound: Inbound
    grpc: RunningGrpc | None = None
    http: RunningHttp | None = None
    loops: DeliveryLoops | None = None
    pg_listener: PgListener | None = None
    relay: WebhookRelayLoop | None = None
    listeners: dict[str, asyncio.Server] = field(default_factory=dict)
    # Metrics (settings.metrics_port) and TLS (settings.tls_cert): None when off.
    metrics: Metrics | None = None
    tls: ServerTls | None = None
    metrics_server: MetricsServer | None = None
    refresher: SnapshotRefresher | None = None

    @classmethod
    async def open(
        cls, settings: Settings, clock: Clock | None = None, timer: Timer | None = None
    ) -> App:
        """Connect to the database and bring its schema up to date. `clock` tells the
        date and time (caps, warmup); `timer` measures waits (heartbeats, long-polls,
        stalls): tests inject both to move time instead of waiting for it."""
        clock = clock or SystemClock()
        timer = timer or LoopTimer()
        tls = load_tls(settings)
        metrics = Metrics() if settings.metrics_port is not None else None
        # A URL that cannot work, or a database that does not answer, is one line for
        # the operator (StartupError) before anything is created or migrated.
        settings.database_url = database_url(settings.database_url)
        await check_database(settings.database_url)
        database = await open_database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        store = SqlStore(database)
        bus = EventBus()
        services = GrpcServices(
            authenticator=Authenticator(store, clock),
            identities=IdentityQueries(store, clock),
            sender=Sender(
                store,
                clock,
                bus,
                cold_gap_ms=settings.cold_gap_ms,
                idempotency_wait_s=settings.idempotency_wait_s,
                observer=metrics or NO_OBSERVER,
            ),
            conversations=ConversationQueries(store, clock),
            events=EventFeed(store, bus, heartbeat_s=settings.heartbeat_s, timer=timer),
        )
        admin = Admin(store, clock, mailbox_domain=settings.mailbox_domain)
        transports: dict[Transport, MessageTransport] = {
            Transport.MAILDIR: MaildirTransport(settings.maildir(), clock),
            Transport.SMTP: SmtpTransport(clock),
        }
        return cls(
            settings,
            clock,
            timer,
            database,
            store,
            bus,
            admin,
            services,
            dispatcher=Dispatcher(store, clock, bus, transports, observer=metrics or NO_OBSERVER),
            timers=Timers(store, clock, bus),
            inbound=Inbound(store, clock, bus, observer=metrics or NO_OBSERVER),
            metrics=metrics,
            tls=tls,
        )

    async def start(self, *, grpc_server: bool = True) -> None:
        """Start what the settings ask for: gRPC (+ HTTP shim), the dispatcher and
        timers, the inbound listeners. Port 0 picks a free port.

        Every port is bound before anything serves or delivers, and a failure (a port
        in use: CannotListen) stops whatever had started, so a failed start changes
        nothing."""
        http_socket = None
        try:
            if self.metrics is not None and self.settings.metrics_port is not None:
                self._start_metrics(self.metrics, self.settings.metrics_port)
            for name, port, lmtp in (
                ("smtp", self.settings.inbound_port, False),
                ("lmtp", self.settings.lmtp_port, True),
            ):
                if port is not None:
                    self.listeners[name] = await start_listener(
                        self.inbound,
                        self.settings.inbound_host,
                        port,
                        lmtp=lmtp,
                        start_serving=False,
                        tls_context=self.tls.smtp_context() if self.tls else None,
                    )
            if grpc_server and self.settings.http_port is not None:
                http_socket = bind("http", self.settings.http_host, self.settings.http_port)
            if self.database.dialect == "postgresql":
                self.pg_listener = PgListener(self.settings.database_url, self.bus)
                self.pg_listener.start()
            if grpc_server:
                self.grpc = await start_grpc(
                    self.grpc_services,
                    self.settings.grpc_host,
                    self.settings.grpc_port,
                    stall_s=self.settings.stream_stall_s,
                    # Idle streams write a heartbeat each heartbeat_s: checking the key
                    # at half that ends a revoked key's streams within one heartbeat.
                    reauth_s=self.settings.heartbeat_s / 2,
                    timer=self.timer,
                    metrics=self.metrics,
                    credentials=self.tls.grpc_credentials() if self.tls else None,
                )
                log.info("grpc serving", extra={"fields": {"port": self.grpc.port}})
                if http_socket is not None:
                    self.http = await start_http(
                        f"127.0.0.1:{self.grpc.port}",
                        self.settings.http_host,
                        self.settings.http_port or 0,
                        grace_s=self.settings.shutdown_grace_s,
                        sock=http_socket,
                        metrics=self.metrics,
                        ui=self.settings.ui,
                        tls=self.tls,
                        grpc_tls=(
                            shim_client_tls(
                                self.tls, self.settings.tls_ca, self.settings.tls_server_name
                            )
                            if self.tls
                            else None
                        ),
                    )
                    http_socket = None  # the server owns it now
                    log.info("http serving", extra={"fields": {"port": self.http.port}})
            for listener in self.listeners.values():
                await listener.start_serving()
            if self.settings.run_dispatcher:
                self.loops = DeliveryLoops(self.dispatcher, self.timers, self.bus)
                self.loops.start()
            if self.settings.run_webhook_relay:
                self.relay = start_relay(
                    self.store,
                    self.clock,
                    self.timer,
                    self.bus,
                    lease_s=self.settings.webhook_lease_s,
                    poll_s=self.settings.webhook_poll_s,
                    timeout_s=self.settings.webhook_timeout_s,
                )
        except BaseException:
            if http_socket is not None:
                http_socket.close()
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop taking calls, let running ones finish within the grace period, close."""
        # Streams and long-polls never finish by themselves: end them now (UNAVAILABLE,
        # resume by seq elsewhere) rather than let them eat the grace period.
        self.grpc_services.events.close()
        if self.http is not None:
            await self.http.stop()  # before gRPC: its in-flight requests still need it
            self.http = None
        if self.grpc is not None:
            await self.grpc.health.enter_graceful_shutdown()
            await self.grpc.server.stop(self.settings.shutdown_grace_s)
            self.grpc = None
        for listener in self.listeners.values():
            listener.close()
            await listener.wait_closed()
        self.listeners.clear()
        if self.loops is not None:
            await self.loops.stop(self.settings.shutdown_grace_s)
            self.loops = None
        if self.relay is not None:
            await self.relay.stop(self.settings.shutdown_grace_s)
            self.relay = None
        if self.pg_listener is not None:
            await self.pg_listener.stop()
            self.pg_listener = None
        if self.refresher is not None:
            await self.refresher.stop()
            self.refresher = None
        if self.metrics_server is not None:
            self.metrics_server.stop()
            self.metrics_server = None
        await self.database.dispose()  # idempotent: a disposed engine just reconnects

    def _start_metrics(self, metrics: Metrics, port: int) -> None:
        """The exposition port, the queue gauges' refresher, and the database's hooks
        (SQLite's group commit, PostgreSQL's pool)."""
        self.metrics_server = start_metrics_server(metrics, self.settings.metrics_host, port)
        log.info("metrics serving", extra={"fields": {"port": self.metrics_server.port}})
        database, clock = self.database, self.clock
        if isinstance(database, SqliteDatabase):
            database.on_commit = metrics.batch_committed
            database.on_lock_wait = metrics.lock_waited
        elif isinstance(database, PostgresDatabase):
            slots = database.slots
            metrics.snapshots.pool = lambda: (slots.busy, slots.opened)
        self.refresher = SnapshotRefresher(metrics, lambda: queue_snapshot(database, now_ms(clock)))
        self.refresher.start()

    @property
    def metrics_port(self) -> int | None:
        return self.metrics_server.port if self.metrics_server else None

    def listener_port(self, name: str) -> int:
        return int(self.listeners[name].sockets[0].getsockname()[1])


def load_tls(settings: Settings) -> ServerTls | None:
    """The listeners' certificate and key (checked now: BadTls names a bad file), or None
    without --tls-cert; half a pair, or a client CA without a certificate, is BadTls."""
    if settings.tls_cert is None and settings.tls_key is None:
        if settings.tls_client_ca is not None:
            raise BadTls("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if settings.tls_cert is None or settings.tls_key is None:
        raise BadTls("--tls-cert and --tls-key go together: give both or neither")
    return ServerTls.load(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
