"""Records for the contract tests, with every field given a plain default, and a small
committed world (org, identity, mailboxes) most tests start from."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from asyncpg import IntegrityConstraintViolationError
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from mailpool_server.service.models import (
    ApiKeyInfo,
    Conversation,
    Direction,
    Identity,
    IdentityState,
    Mailbox,
    Message,
    Org,
    PendingSend,
    PendingStatus,
    SendClass,
    SmtpSettings,
    SmtpTls,
    Transport,
)
from mailpool_server.service.policy import Tier
from mailpool_server.service.ports import Store, Tx
from tests.memory_store import IntegrityError as MemoryIntegrityError

# 2026-04-27 08:00 UTC, in Unix ms.
T0 = 1_777_276_800_000
DAY = "2026-04-27"
# What a store raises for a write the schema refuses (a duplicate, a dangling reference):
# through SQLAlchemy (cold paths), from the driver (the hot path's statements), or the
# in-memory store's own.
REFUSED = (
    SqlIntegrityError,
    sqlite3.IntegrityError,
    IntegrityConstraintViolationError,
    MemoryIntegrityError,
)


def org(n: int = 1, *, name: str | None = None) -> Org:
    return Org(id=f"org_{n}", name=name or f"org {n}", created_at=T0)


def api_key(org_id: str, n: int, *, created_at: int = T0, **fields: int | None) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=f"key_{n}",
        org_id=org_id,
        prefix=f"sk_live_{n:04x}…",
        key_hash=f"{n:064x}",
        created_at=created_at,
        **fields,
    )


def identity(org_id: str, handle: str, *, n: int | None = None) -> Identity:
    return Identity(
        id=f"idn_{n if n is not None else handle.partition('@')[0]}",
        org_id=org_id,
        handle=handle,
        tier=Tier.STARTER,
        state=IdentityState.ACTIVE,
        created_at=T0,
    )


def mailbox(identity_id: str, email: str, *, created_at: int = T0, **fields: Any) -> Mailbox:
    box = Mailbox(
        id=f"acc_{email.partition('@')[0].replace('.', '_')}",
        identity_id=identity_id,
        email=email,
        transport=Transport.MAILDIR,
        warmup_stage=5,
        health=100,
        created_at=created_at,
    )
    return replace(box, **fields)


SMTP = SmtpSettings(
    host="smtp.example.com", port=2525, username="u", password="p", tls=SmtpTls.NONE
)


def conversation(
    identity_id: str, mailbox_id: str, correspondent: str, n: int, **fields: Any
) -> Conversation:
    conv = Conversation(
        id=f"conv_{n:04x}",
        identity_id=identity_id,
        correspondent=correspondent,
        mailbox_id=mailbox_id,
        subject=f"subject {n}",
        snippet=f"snippet {n}",
        message_count=1,
        archived=False,
        labels=(),
        created_at=T0,
        last_event_at=T0,
        last_message_id_header=None,
        references=(),
    )
    return replace(conv, **fields)


def message(conv_id: str, n: int, **fields: Any) -> Message:
    msg = Message(
        id=f"msg_{n:04x}",
        conv_id=conv_id,
        direction=Direction.OUTBOUND,
        message_id_header=f"<m{n}@mailboxes.example>",
        from_address="a1@mailboxes.example",
        to=("bob@example.com",),
        cc=(),
        subject=f"subject {n}",
        text=f"text {n}",
        html=f"<p>html {n}</p>",
        snippet=f"text {n}",
        ts=T0,
    )
    return replace(msg, **fields)


def pending(
    message: Message, identity_id: str, mailbox_id: str, n: int, **fields: Any
) -> PendingSend:
    send = PendingSend(
        id=f"psn_{n:04x}",
        identity_id=identity_id,
        conv_id=message.conv_id,
        message_id=message.id,
        mailbox_id=mailbox_id,
        recipient=message.to[0],
        send_class=SendClass.COLD_FIRST_CONTACT,
        status=PendingStatus.QUEUED,
        dispatch_at=T0,
        created_at=T0,
    )
    return replace(send, **fields)


@dataclass(frozen=True)
class World:
    org: Org
    identity: Identity
    mailboxes: tuple[Mailbox, Mailbox]

    @property
    def a1(self) -> Mailbox:
        return self.mailboxes[0]

    @property
    def a2(self) -> Mailbox:
        return self.mailboxes[1]


async def seed_world(store: Store) -> World:
    the_org = org()
    alice = identity(the_org.id, "alice@mailpool.test")
    boxes = (
        mailbox(alice.id, "a1@mailboxes.example", created_at=T0 + 1),
        mailbox(alice.id, "a2@mailboxes.example", created_at=T0 + 2),
    )
    async with store.write() as tx:
        await tx.add_org(the_org)
        await tx.add_identity(alice)
        for box in boxes:
            await tx.add_mailbox(box)
    return World(the_org, alice, boxes)


@dataclass(frozen=True)
class Thread:
    """A conversation with one outbound message, as a send leaves it."""

    conversation: Conversation
    message: Message


async def add_thread(
    store: Store, world: World, n: int, *, to: str = "bob@example.com", mailbox_id: str = ""
) -> Thread:
    conv = conversation(world.identity.id, mailbox_id or world.a1.id, to, n)
    msg = message(conv.id, n, to=(to,))
    async with store.write() as tx:
        await tx.add_conversation(conv)
        await tx.add_message(msg)
    return Thread(conv, msg)


async def queue_send(
    store: Store,
    world: World,
    n: int,
    *,
    to: str = "bob@example.com",
    mailbox_id: str = "",
    **fields: Any,
) -> PendingSend:
    """A queued send (with its conversation and message), committed."""
    thread = await add_thread(store, world, n, to=to, mailbox_id=mailbox_id)
    send = pending(thread.message, world.identity.id, mailbox_id or world.a1.id, n, **fields)
    async with store.write() as tx:
        await tx.add_pending_send(send)
    return send


class Abandoned(Exception):
    """Raised inside a write to roll it back."""


async def abandoned_write(store: Store, work: Callable[[Tx], Awaitable[object]]) -> None:
    """Run `work` in a write that then raises: none of it may remain."""
    with contextlib.suppress(Abandoned):
        async with store.write() as tx:
            await work(tx)
            raise Abandoned
