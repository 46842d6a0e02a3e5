"""Reading identities with today's usage."""

from __future__ import annotations

from mailpool_server.service.auth import identity_in_org
from mailpool_server.service.clock import Clock, next_midnight_ms, now_ms, utc_day
from mailpool_server.service.models import Identity, IdentityToday, MailboxToday
from mailpool_server.service.paging import decode_token, encode_token, page_size
from mailpool_server.service.policy import tier_policy
from mailpool_server.service.ports import IdentityRepo, Store


async def identities_today(
    tx: IdentityRepo, identities: list[Identity], at: int
) -> list[IdentityToday]:
    """Attach today's counters and mailboxes to identities, in three queries."""
    if not identities:
        return []
    day = utc_day(at)
    ids = [identity.id for identity in identities]
    used = await tx.identity_used(ids, day)
    mailboxes = await tx.mailboxes_of(ids)
    sent = await tx.mailboxes_sent([m.id for m in mailboxes], day)
    by_identity: dict[str, list[MailboxToday]] = {identity_id: [] for identity_id in ids}
    for mailbox in mailboxes:
        by_identity[mailbox.identity_id].append(MailboxToday(mailbox, sent.get(mailbox.id, 0)))
    return [
        IdentityToday(
            identity=identity,
            daily_cap=tier_policy(identity.tier).daily_cap,
            used_today=used.get(identity.id, 0),
            reset_at=next_midnight_ms(at),
            mailboxes=by_identity[identity.id],
        )
        for identity in identities
    ]


class IdentityQueries:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def get(self, org_id: str, handle: str) -> IdentityToday:
        async with self._store.read() as tx:
            identity = await identity_in_org(tx, org_id, handle)
            [today] = await identities_today(tx, [identity], now_ms(self._clock))
        return today

    async def list(self, org_id: str, size: int, token: str) -> tuple[list[IdentityToday], str]:
        limit = page_size(size or None, field="pageSize", default=50)
        after = decode_token(token, field="pageToken", shape=(str,))[0] if token else ""
        async with self._store.read() as tx:
            page = await tx.identities_of(org_id, after, limit + 1)
            more = len(page) > limit
            page = page[:limit]
            result = await identities_today(tx, page, now_ms(self._clock))
        return result, encode_token([page[-1].handle]) if more else ""
