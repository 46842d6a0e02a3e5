"""Seeding the benchmark database through mailpool's own operator API and store."""

from __future__ import annotations

from dataclasses import dataclass

from mailpool_server.app import App
from mailpool_server.config import Settings
from mailpool_server.service.events import EmailQueued, NewEvent
from mailpool_server.service.models import MailboxRef, SendClass
from mailpool_server.service.policy import Tier


@dataclass
class Seeded:
    key: str
    handles: list[str]  # scale identities the send scenarios spread over
    backlog_handle: str
    fanout_handle: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)


async def seed(database_url: str, *, identities: int, backlog: int) -> Seeded:
    app = await App.open(Settings(database_url=database_url))
    try:
        await app.admin.create_org("bench")
        key = await app.admin.create_key("bench")
        handles = [f"bench{n}@mailpool.local" for n in range(identities)]
        for handle in [*handles, "backlog@mailpool.local", "fanout@mailpool.local"]:
            await app.admin.create_identity("bench", handle, Tier.SCALE, warmup_stage=5)
        # A realistic backlog: email.queued events, written in the store's own batches.
        async with app.store.read() as tx:
            identity = await tx.identity_by_handle("backlog@mailpool.local")
        assert identity is not None
        for start in range(0, backlog, 5000):
            async with app.store.write() as tx:
                fresh = await tx.lock_identity(identity.id)
                await tx.append_events(
                    fresh,
                    [
                        NewEvent(
                            "conv_0123456789abcdef",
                            EmailQueued(
                                f"psn_{n:016x}",
                                f"lead{n:06d}@example.com",
                                SendClass.COLD_FIRST_CONTACT,
                                1_777_276_800_000,
                                MailboxRef("acc_0123456789abcdef", "bench.1@mailboxes.local"),
                            ),
                        )
                        for n in range(start, min(backlog, start + 5000))
                    ],
                    1_777_276_800_000,
                )
        return Seeded(key, handles, "backlog@mailpool.local", "fanout@mailpool.local")
    finally:
        await app.database.dispose()
