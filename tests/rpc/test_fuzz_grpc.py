"""Property: nothing a gRPC client sends makes the server answer UNKNOWN or INTERNAL, or
stop answering health checks. Every RPC gets messages generated from its request
descriptor (every field, with values at and past the edges of their types: NUL and
non-ASCII text, 64-bit extremes, enum numbers the API does not define, Timestamps
beyond year 9999) and raw bytes, against a real `mailpool serve` process on each
backend. The number of inputs sent is printed at the end of the run."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailpool.v1 import (
    conversation_service_pb2,
    event_service_pb2,
    identity_service_pb2,
    send_service_pb2,
)
from tests.conftest import BACKENDS, POSTGRES, postgres_admin_sync
from tests.fuzz_counts import count_input
from tests.processes import run_cli, serve

pytestmark = pytest.mark.slow


def _methods() -> tuple[dict[str, type[Message]], dict[str, type[Message]]]:
    """Every RPC of every mailpool service, read from the descriptors (a new RPC is
    fuzzed without anyone listing it): unary ones and server-streaming ones."""
    unary: dict[str, type[Message]] = {}
    stream: dict[str, type[Message]] = {}
    for module in (send_service_pb2, identity_service_pb2, conversation_service_pb2,
                   event_service_pb2):  # fmt: skip
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                path = f"/{service.full_name}/{method.name}"
                request = message_factory.GetMessageClass(method.input_type)
                (stream if method.server_streaming else unary)[path] = request
    return unary, stream


UNARY, STREAM = _methods()
METHODS = {**UNARY, **STREAM}
# Per method and backend; with 12 methods and two backends (CI) that is over 10,000.
EXAMPLES_PER_METHOD = 450
RAW_EXAMPLES = 1_000
# What the server must never answer, whatever it is sent.
BUG_CODES = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
HANDLE = "f@mailpool.local"

INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_ENUM: (-(2**31), 2**31 - 1),
}


class Server:
    def __init__(self, channel: grpc.Channel, key: str, conv_id: str) -> None:
        self.channel = channel
        self.key = key
        self.conv_id = conv_id
        self.health = health_pb2_grpc.HealthStub(channel)

    def serving(self) -> bool:
        reply = self.health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("grpc-fuzz")
    database = f"sqlite:///{folder / 'f.db'}"
    dropped = None
    if request.param == "postgres":
        assert POSTGRES is not None
        dropped = "fz_" + secrets.token_hex(6)
        postgres_admin_sync(f'CREATE DATABASE "{dropped}"')
        database = POSTGRES.rsplit("/", 1)[0] + "/" + dropped
    env = {
        **os.environ,
        "MAILPOOL_DATABASE_URL": database,
        "MAILPOOL_DATA_DIR": str(folder),
        "MAILPOOL_LOG_LEVEL": "ERROR",
    }
    try:
        run_cli(env, "admin", "org", "create", "fuzz")
        key = run_cli(env, "admin", "key", "create", "--org", "fuzz").strip()
        run_cli(env, "admin", "identity", "create", "--org", "fuzz", "--handle", HANDLE,
             "--tier", "scale", "--warmup-stage", "5")  # fmt: skip
        with serve(env, dispatcher=False) as ports:
            channel = grpc.insecure_channel(f"127.0.0.1:{ports['gRPC']}")
            metadata = (("authorization", f"Bearer {key}"),)
            send = channel.unary_unary(
                "/mailpool.v1.SendService/Send",
                request_serializer=send_service_pb2.SendRequest.SerializeToString,
                response_deserializer=send_service_pb2.SendResponse.FromString,
            )
            sent = send(
                send_service_pb2.SendRequest(
                    identity=HANDLE, to=["seed@example.com"], subject="s", text="t"
                ),
                metadata=metadata,
                timeout=30,
            )
            yield Server(channel, key, sent.results[0].conv_id)
            channel.close()
    finally:
        if dropped is not None:
            postgres_admin_sync(f'DROP DATABASE "{dropped}" WITH (FORCE)')


# Text that meets the server's rules now and then, and breaks them in every way the
# rest of the time.
_edge_text = st.sampled_from(
    [
        "",
        HANDLE,
        HANDLE.upper(),
        "conv_0123456789abcdef",
        "bob@example.com",
        "email.queued",
        "30m",
        "²",
        "9" * 5000,
        "1" + "0" * 400,
        "\x00",
        "a\x00b@example.com",
        "h" * 20_000,
        "🙂" * 100,
        "<a@b.example>",
        "lead-42:step-3",
    ]
)
_text = st.one_of(_edge_text, st.text(max_size=40), st.text(alphabet="\x00\x01 ab@.", max_size=8))


def _field_values(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_STRING:
        return _text
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type in INT_RANGES:
        low, high = INT_RANGES[field.type]
        edges = st.sampled_from([0, 1, -1 if low < 0 else 2, low, high, 25_000, 25_001, 200, 201])
        return st.one_of(edges.filter(lambda v: low <= v <= high), st.integers(low, high))
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=20)
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type and depth < 3:
        return _messages(field.message_type, depth + 1)
    return st.nothing()


def _messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    optional = {}
    for field in descriptor.fields:
        values = _field_values(field, depth)
        optional[field.name] = st.lists(values, max_size=4) if field.is_repeated else values
    return st.fixed_dictionaries({}, optional=optional)


def _build(cls: type[Message], fields: dict[str, Any]) -> Message:
    message = cls()
    _fill(message, fields)
    return message


def _fill(message: Message, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            target = getattr(message, name)
            for item in value if field.is_repeated else [value]:
                _fill(target.add() if field.is_repeated else target, item)
        elif field.is_repeated:
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)


def _calm(method: str, message: Message) -> None:
    """Keep valid long-polls short: the property is about answers, not waiting 25 s."""
    if isinstance(message, event_service_pb2.ListEventsRequest) and (
        0 < message.timeout_ms <= 25_000
    ):
        message.timeout_ms = message.timeout_ms % 20 + 1


_metadata = st.sampled_from(["good", "none", "other", "twice", "long"])


def _auth(server: Server, choice: str) -> tuple[tuple[str, str], ...]:
    good = ("authorization", f"Bearer {server.key}")
    return {
        "good": (good,),
        "none": (),
        "other": (("authorization", "Bearer sk_live_" + "0" * 40),),
        "twice": (good, good),
        "long": (("authorization", "Bearer sk_" + "a" * 4000),),
    }[choice]


def _call(server: Server, method: str, body: bytes, metadata: tuple[tuple[str, str], ...]) -> None:
    count_input("gRPC")
    try:
        # No serializers: the bytes go as they are.
        if method in STREAM:
            streaming: grpc.UnaryStreamMultiCallable[bytes, bytes] = server.channel.unary_stream(
                method
            )
            stream = streaming(body, metadata=metadata, timeout=5)
            for _ in zip(range(2), stream, strict=False):  # backlog or caught_up, then stop
                pass
            stream.cancel()
        else:
            unary: grpc.UnaryUnaryMultiCallable[bytes, bytes] = server.channel.unary_unary(method)
            unary(body, metadata=metadata, timeout=30)
    except grpc.RpcError as error:
        code = error.code()
        assert code not in BUG_CODES, (method, code, error.details())
        if method not in STREAM:  # a stream we cancel or let time out ends like that
            assert code not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED)


FUZZ = settings(
    max_examples=EXAMPLES_PER_METHOD,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("method", list(METHODS))
def test_generated_requests_never_fail_the_server(server: Server, method: str) -> None:
    cls: Any = METHODS[method]

    @FUZZ
    @given(fields=_messages(cls.DESCRIPTOR), auth=_metadata)
    def property_(fields: dict[str, Any], auth: str) -> None:
        if "identity" in cls.DESCRIPTOR.fields_by_name and "identity" not in fields:
            fields["identity"] = HANDLE  # most requests should reach the use case
        message = _build(cls, fields)
        _calm(method, message)
        _call(server, method, message.SerializeToString(), _auth(server, auth))

    property_()
    assert server.serving()


@settings(FUZZ, max_examples=RAW_EXAMPLES)
@given(method=st.sampled_from(list(METHODS)), body=st.binary(max_size=300), auth=_metadata)
def test_raw_bytes_never_fail_the_server(
    server: Server, method: str, body: bytes, auth: str
) -> None:
    _call(server, method, body, _auth(server, auth))


def test_the_server_still_answers_after_the_fuzzing(server: Server) -> None:
    assert server.serving()
    stub = server.channel.unary_unary(
        "/mailpool.v1.IdentityService/GetIdentity",
        request_serializer=identity_service_pb2.GetIdentityRequest.SerializeToString,
        response_deserializer=identity_service_pb2.GetIdentityResponse.FromString,
    )
    reply = stub(
        identity_service_pb2.GetIdentityRequest(identity=HANDLE),
        metadata=_auth(server, "good"),
        timeout=10,
    )
    assert reply.identity.handle == HANDLE
