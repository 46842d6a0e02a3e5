"""The grpc.aio server: servicers, health, reflection, keepalive."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mailpool.v1 import (
    conversation_service_pb2,
    conversation_service_pb2_grpc,
    event_service_pb2,
    event_service_pb2_grpc,
    identity_service_pb2,
    identity_service_pb2_grpc,
    send_service_pb2,
    send_service_pb2_grpc,
)
from mailpool_server.metrics import Metrics
from mailpool_server.rpc.conversation_servicer import ConversationServicer
from mailpool_server.rpc.event_servicer import EventServicer
from mailpool_server.rpc.identity_servicer import IdentityServicer
from mailpool_server.rpc.interceptor import DEFAULT_REAUTH_S, DEFAULT_STALL_S, CallInterceptor
from mailpool_server.rpc.send_servicer import SendServicer
from mailpool_server.service.auth import Authenticator
from mailpool_server.service.conversations import ConversationQueries
from mailpool_server.service.event_feed import EventFeed
from mailpool_server.service.identities import IdentityQueries
from mailpool_server.service.send import Sender
from mailpool_server.service.timer import Timer
from mailpool_server.startup import CannotListen, check_free

# Keepalive: the server pings idle connections every 30 s so that dead stream
# subscribers are noticed, and accepts client pings as often as every 10 s (the
# default client sends none; clients that enable keepalive must not go faster).
SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    # grpc sets SO_REUSEPORT by default, so a second server on the same port shared it
    # silently with the first; without it the second one's bind fails.
    ("grpc.so_reuseport", 0),
]

SERVICE_NAMES = [
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (identity_service_pb2, "IdentityService"),
        (send_service_pb2, "SendService"),
        (conversation_service_pb2, "ConversationService"),
        (event_service_pb2, "EventService"),
    )
]


@dataclass
class GrpcServices:
    authenticator: Authenticator
    identities: IdentityQueries
    sender: Sender
    conversations: ConversationQueries
    events: EventFeed


@dataclass
class RunningGrpc:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer


async def start_grpc(
    services: GrpcServices,
    host: str,
    port: int,
    *,
    stall_s: float = DEFAULT_STALL_S,
    reauth_s: float = DEFAULT_REAUTH_S,
    timer: Timer | None = None,
    metrics: Metrics | None = None,
    credentials: grpc.ServerCredentials | None = None,
) -> RunningGrpc:
    """Serve on host:port (0 = a free port): with `credentials`, over TLS only."""
    interceptor = CallInterceptor(
        services.authenticator, stall_s=stall_s, reauth_s=reauth_s, timer=timer, metrics=metrics
    )
    server = grpc.aio.server(
        interceptors=[interceptor],
        options=SERVER_OPTIONS,
    )
    identity_service_pb2_grpc.add_IdentityServiceServicer_to_server(
        IdentityServicer(services.identities), server
    )
    send_service_pb2_grpc.add_SendServiceServicer_to_server(SendServicer(services.sender), server)
    conversation_service_pb2_grpc.add_ConversationServiceServicer_to_server(
        ConversationServicer(services.conversations), server
    )
    event_service_pb2_grpc.add_EventServiceServicer_to_server(
        EventServicer(services.events), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    # Binding a socket first finds a taken port with its errno, and spares the operator
    # grpc core's own log line about it; a port taken between the two still fails below.
    check_free("grpc", host, port)
    try:
        address = f"{host}:{port}"
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError:  # grpcio raises "Failed to bind to address …"
        bound = 0
    if bound == 0:
        check_free("grpc", host, port)  # says why, if the port is still taken
        raise CannotListen("grpc", host, port, "grpc could not bind it")
    await server.start()
    for name in ["", *SERVICE_NAMES]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningGrpc(server=server, port=bound, health=health_servicer)
