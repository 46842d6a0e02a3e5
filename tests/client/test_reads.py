"""Conversations paging, identities, events pages: the read wrappers on the real server."""

from __future__ import annotations

import asyncio
import datetime as dt

from mailpool_client import MailpoolClient
from mailpool_server.app import App
from mailpool_server.service.clock import FakeClock
from mailpool_server.service.models import IdentityState
from mailpool_server.service.policy import MAX_WARMUP_STAGE, Tier
from tests.support import Tenant


async def test_conversations_page_through_ties_without_skips_or_repeats(
    client: MailpoolClient, tenant: Tenant, clock: FakeClock
) -> None:
    # Seven conversations with the same last activity time: paging must order them by id.
    first = await client.send(
        tenant.handle, to=[f"p{n}@example.com" for n in range(7)], subject="Hi", text="x"
    )
    listed = [c async for c in client.conversations(tenant.handle, page_size=3)]
    assert sorted(c.id for c in listed) == sorted(r.conv_id for r in first.response.results)
    assert len({c.id for c in listed}) == 7

    clock.advance(hours=1)
    cutoff = clock.now()
    later = await client.send(
        tenant.handle, to=["q1@other.example", "q2@mail.other.example"], subject="Hi", text="y"
    )
    newer = [c async for c in client.conversations(tenant.handle, since=cutoff, page_size=1)]
    assert {c.id for c in newer} == {r.conv_id for r in later.response.results}
    domain = client.conversations(tenant.handle, correspondent_domain="other.example")
    assert sorted([c.correspondent async for c in domain]) == [
        "q1@other.example",
        "q2@mail.other.example",
    ]
    exact = client.conversations(tenant.handle, correspondent="p3@example.com")
    assert [c.id async for c in exact] == [first.response.results[3].conv_id]
    assert [c async for c in client.conversations(tenant.handle, archived=True)] == []
    older = client.conversations(tenant.handle, until=cutoff - dt.timedelta(seconds=1))
    assert len([c async for c in older]) == 7


async def test_get_conversation_and_list_events(client: MailpoolClient, tenant: Tenant) -> None:
    sent = await client.send(tenant.handle, to="a@example.com", subject="Subject", text="Body")
    conv_id = sent.response.results[0].conv_id
    detail = await client.get_conversation(tenant.handle, conv_id)
    assert (detail.conversation.id, detail.conversation.subject) == (conv_id, "Subject")
    assert [item.WhichOneof("item") for item in detail.timeline] == ["message"]

    await client.send(tenant.handle, to="b@example.com", subject="Again", text="x")
    page = await client.list_events(tenant.handle, limit=1)
    assert ([e.seq for e in page.events], page.cursor, page.has_more) == ([1], 1, True)
    page = await client.list_events(tenant.handle, since=page.cursor, types=["email.queued"])
    assert ([e.seq for e in page.events], page.has_more) == ([2], False)
    # Long-poll: the call waits for the next event to commit.
    waiting = asyncio.ensure_future(client.list_events(tenant.handle, since=2, timeout_ms=20_000))
    await client.send(tenant.handle, to="c@example.com", subject="Third", text="x")
    async with asyncio.timeout(20):
        assert [e.seq for e in (await waiting).events] == [3]


async def test_identities(app: App, client: MailpoolClient, tenant: Tenant) -> None:
    await app.admin.create_identity(
        tenant.org, "bob.acme@mailpool.local", Tier.GROWTH, IdentityState.ACTIVE, MAX_WARMUP_STAGE
    )
    identity = await client.get_identity(tenant.handle)
    assert (identity.handle, identity.daily_cap, identity.remaining_today) == (
        tenant.handle,
        150,
        150,
    )
    assert len(identity.mailboxes) == 3
    page = await client.list_identities(page_size=1)
    assert [i.handle for i in page.identities] == [tenant.handle] and page.next_page_token
    handles = [i.handle async for i in client.identities(page_size=1)]
    assert handles == [tenant.handle, "bob.acme@mailpool.local"]
