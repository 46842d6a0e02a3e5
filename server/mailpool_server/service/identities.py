"""Reading identities with today's usage."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mailpool_server.service.auth import identity_in_org
from mailpool_server.service.clock import Clock, next_midnight_ms, now_ms, utc_day
from mailpool_server.service.errors import InvalidArgument
from mailpool_server.service.models import Identity, IdentityToday, Mailbox, MailboxToday
from mailpool_server.service.paging import decode_token, encode_token, page_size
from mailpool_server.service.policy import mailbox_daily_cap, tier_policy
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


MAX_HISTORY_DAYS = 90
DEFAULT_HISTORY_DAYS = 30


@dataclass(frozen=True)
class UsageDay:
    """One UTC day: the count (identity: accepted, mailbox: sent) and the cap."""

    day: str
    count: int
    cap: int


@dataclass(frozen=True)
class MailboxHistory:
    mailbox: Mailbox
    days: list[UsageDay]


@dataclass(frozen=True)
class UsageHistory:
    handle: str
    days: list[UsageDay]
    mailboxes: list[MailboxHistory]


def history_days(today: str, count: int) -> list[str]:
    """The `count` UTC days ending with `today`, oldest first."""
    last = dt.date.fromisoformat(today)
    return [(last - dt.timedelta(days=n)).isoformat() for n in range(count - 1, -1, -1)]


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

    async def usage_history(self, org_id: str, handle: str, days: int | None) -> UsageHistory:
        """Accepted sends per UTC day (every day present), oldest first, ending today,
        for the identity and each mailbox. Caps are today's: the tier's, and a mailbox's
        from its current warmup stage (the history of stages is not stored)."""
        count = DEFAULT_HISTORY_DAYS if days is None else days
        if not 1 <= count <= MAX_HISTORY_DAYS:
            raise InvalidArgument.of("days", f"must be between 1 and {MAX_HISTORY_DAYS}")
        span = history_days(utc_day(now_ms(self._clock)), count)
        async with self._store.read() as tx:
            identity = await identity_in_org(tx, org_id, handle)
            used = await tx.identity_used_days(identity.id, span[0], span[-1])
            mailboxes = await tx.mailboxes_of([identity.id])
            sent = await tx.mailboxes_sent_days([m.id for m in mailboxes], span[0], span[-1])
        cap = tier_policy(identity.tier).daily_cap
        return UsageHistory(
            identity.handle,
            [UsageDay(day, used.get(day, 0), cap) for day in span],
            [
                MailboxHistory(
                    m,
                    [
                        UsageDay(day, sent.get((m.id, day), 0), mailbox_daily_cap(m.warmup_stage))
                        for day in span
                    ],
                )
                for m in mailboxes
            ],
        )
