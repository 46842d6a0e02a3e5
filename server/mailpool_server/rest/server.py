"""Running the shim: uvicorn inside the current event loop, in front of a gRPC target."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import grpc
import uvicorn

from mailpool_server.metrics import Metrics
from mailpool_server.rest.app import build_app
from mailpool_server.rest.ui.dashboard import Dashboard
from mailpool_server.startup import bind
from mailpool_server.tls import ClientTls, ServerTls


@dataclass
class RunningHttp:
    server: uvicorn.Server
    port: int
    channel: grpc.aio.Channel
    ticker: asyncio.Task[None]
    dashboard: Dashboard | None = None

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the grace period)."""
        self.server.should_exit = True
        if self.dashboard is not None:
            # Live tails never finish by themselves: end them (the browsers resume
            # elsewhere by Last-Event-ID) rather than let them eat the grace period.
            self.dashboard.close()
        await self.ticker
        await self.server.shutdown()
        await self.channel.close()


async def start_http(
    grpc_target: str,
    host: str,
    port: int,
    *,
    grace_s: float,
    sock: socket.socket | None = None,
    metrics: Metrics | None = None,
    tls: ServerTls | None = None,
    grpc_tls: ClientTls | None = None,
    ui: bool = True,
) -> RunningHttp:
    """Serve the shim on host:port (0 picks a free port), or on `sock` already bound
    there, calling `grpc_target`. A port that cannot be bound is CannotListen.

    uvicorn's public startup/main_loop/shutdown are driven here instead of serve(),
    which would install its own signal handlers over the process's. The socket is bound
    here rather than by uvicorn, which logs a failed bind and calls sys.exit.

    `tls`: serve HTTPS (with its client CA: require client certificates); `grpc_tls`:
    dial the gRPC target over TLS; `ui`: serve the dashboard at /ui/."""
    if sock is None:
        sock = bind("http", host, port)
    channel = (
        grpc_tls.channel(grpc_target)
        if grpc_tls is not None
        else grpc.aio.insecure_channel(grpc_target)
    )
    app = build_app(channel, metrics, ui=ui)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        # httptools (llhttp, in C) parses HTTP/1.1: an HTTP send cost ~12% less server
        # CPU than with h11, uvicorn's pure-Python parser.
        http="httptools",
        timeout_graceful_shutdown=int(grace_s) or 1,
        **(tls.uvicorn_options() if tls is not None else {}),
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # as Server.serve() sets it up
    try:
        await server.startup(sockets=[sock])
    except BaseException:
        sock.close()
        await channel.close()
        raise
    bound = server.servers[0].sockets[0].getsockname()[1]
    # main_loop keeps the Date header fresh and returns once should_exit is set.
    ticker = asyncio.create_task(server.main_loop())
    return RunningHttp(
        server=server,
        port=bound,
        channel=channel,
        ticker=ticker,
        dashboard=app.state.dashboard,
    )
