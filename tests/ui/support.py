"""What the dashboard's tests share: tenants made on a running server's database,
sends and reads over gRPC (the same calls the dashboard makes, as a second opinion),
and server processes they can stop and start.

The browser tests are synchronous (Playwright's sync API owns the thread's event
loop while a browser is open), so anything asynchronous here runs on a thread of its
own."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc

from mailpool.v1 import (
    conversation_service_pb2,
    conversation_service_pb2_grpc,
    event_pb2,
    event_service_pb2,
    event_service_pb2_grpc,
    identity_service_pb2,
    identity_service_pb2_grpc,
    send_pb2,
    send_service_pb2,
    send_service_pb2_grpc,
)
from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.models import IdentityState
from mailpool_server.service.policy import MAX_WARMUP_STAGE, Tier

T = TypeVar("T")


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a thread with its own event loop."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        async def main() -> T:
            return await make()

        try:
            outcome.append(asyncio.run(main()))
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    if failure:
        raise failure[0]
    assert outcome, "the coroutine did not finish within 60 s"
    return outcome[0]


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass
class IdentitySeed:
    handle: str
    tier: Tier = Tier.STARTER
    state: IdentityState = IdentityState.ACTIVE
    # Accepted sends to record per day, by days before today (0 = today).
    usage: dict[int, int] = field(default_factory=dict)
    # Extra mailboxes: (address, health).
    mailboxes: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Tenant:
    org: str
    key: str
    handles: list[str]

    @property
    def handle(self) -> str:
        return self.handles[0]

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)


def make_tenant(
    database_url: str, data_dir: Path, org: str, seeds: Sequence[IdentitySeed]
) -> Tenant:
    """An org, a key and identities, made with the operator API on the server's
    database. Past usage is written with the store's own counter upsert: the server's
    clock cannot be moved in a separate process, and sends can only land today."""

    async def make() -> Tenant:
        app = await App.open(Settings(database_url=database_url, data_dir=data_dir))
        try:
            await app.admin.create_org(org)
            key = await app.admin.create_key(org)
            for seed in seeds:
                await app.admin.create_identity(
                    org, seed.handle, seed.tier, seed.state, MAX_WARMUP_STAGE
                )
                for email, health in seed.mailboxes:
                    await app.admin.add_mailbox(
                        seed.handle, email, warmup_stage=MAX_WARMUP_STAGE, health=health
                    )
                async with app.store.write() as tx:
                    identity = await tx.identity_by_handle(seed.handle)
                    assert identity is not None
                    for days_ago, count in seed.usage.items():
                        day = (utc_today() - dt.timedelta(days=days_ago)).isoformat()
                        assert await tx.add_identity_usage(identity.id, day, count, count)
            return Tenant(org=org, key=key, handles=[s.handle for s in seeds])
        finally:
            await app.database.dispose()

    return run_async(make)


def revoke_key(database_url: str, data_dir: Path, tenant: Tenant) -> None:
    async def revoke() -> None:
        app = await App.open(Settings(database_url=database_url, data_dir=data_dir))
        try:
            await app.admin.revoke_key(tenant.org, tenant.key)
        finally:
            await app.database.dispose()

    run_async(revoke)


class Api:
    """Sync gRPC calls with a tenant's key: to act outside the browser and to check
    what the dashboard showed or did."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.sends = send_service_pb2_grpc.SendServiceStub(self.channel)
        self.conversations = conversation_service_pb2_grpc.ConversationServiceStub(self.channel)
        self.identities = identity_service_pb2_grpc.IdentityServiceStub(self.channel)
        self.events = event_service_pb2_grpc.EventServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def send(
        self,
        tenant: Tenant,
        to: str,
        subject: str = "Quick question",
        *,
        wait_for_ready: bool = False,
    ) -> send_pb2.RecipientResult:
        """One new conversation with `to`, queued (the servers here do not deliver).
        wait_for_ready: wait for a server that is (re)starting rather than fail."""
        answer = self.sends.Send(
            send_service_pb2.SendRequest(
                identity=tenant.handle, to=[to], subject=subject, text=f"Hi {to}"
            ),
            metadata=tenant.metadata,
            timeout=30,
            wait_for_ready=wait_for_ready,
        )
        [result] = answer.results
        return result

    def conversation(
        self, tenant: Tenant, conv_id: str
    ) -> conversation_service_pb2.GetConversationResponse:
        return self.conversations.GetConversation(
            conversation_service_pb2.GetConversationRequest(
                identity=tenant.handle, conv_id=conv_id
            ),
            metadata=tenant.metadata,
            timeout=30,
        )

    def identity(
        self, tenant: Tenant, handle: str = ""
    ) -> identity_service_pb2.GetIdentityResponse:
        return self.identities.GetIdentity(
            identity_service_pb2.GetIdentityRequest(identity=handle or tenant.handle),
            metadata=tenant.metadata,
            timeout=30,
        )

    def events_of(self, tenant: Tenant, types: Sequence[str] = ()) -> list[event_pb2.Event]:
        answer = self.events.ListEvents(
            event_service_pb2.ListEventsRequest(identity=tenant.handle, types=types, limit=200),
            metadata=tenant.metadata,
            timeout=30,
        )
        return list(answer.events)


class Process:
    """A `mailpool` command that serves until stopped; its ports from its first lines."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.ports: dict[str, int] = {}
        with log.open("ab") as stderr:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mailpool_server", *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if match := re.match(r"mailpool: (\w+) listening on [\d.]+:(\d+)", line):
                self.ports[match.group(1)] = int(match.group(2))
            if "HTTP" in self.ports:
                break
        assert "HTTP" in self.ports, f"{args[0]} did not start (see {log})"

    def stop(self) -> None:
        self._process.terminate()
        assert self._process.wait(timeout=30) == 0
        assert self._process.stdout is not None
        self._process.stdout.close()


@contextmanager
def running(args: Sequence[str], env: dict[str, str], log: Path) -> Iterator[Process]:
    process = Process(args, env, log)
    try:
        yield process
    finally:
        process.stop()


def serve_args(*, grpc_port: int = 0, extra: Sequence[str] = ()) -> list[str]:
    """`mailpool serve` without delivery (sends stay queued, so they can be cancelled)
    and without inbound listeners, on free ports."""
    return [
        "serve",
        "--grpc-port",
        str(grpc_port),
        "--http-port",
        "0",
        "--inbound-port",
        "-1",
        "--no-dispatcher",
        "--no-webhook-relay",
        *extra,
    ]
