"""Clock-driven work: no-reply timers, and the end of each UTC day for every mailbox
(health recovery and warmup). State lives in the database, so it survives restarts;
ticks from several processes are safe (each item is taken in one write transaction)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from mailpool_server.service.clock import Clock, now_ms, utc_day
from mailpool_server.service.event_log import EventsByIdentity, announce, append_all
from mailpool_server.service.events import EmailNoReply, NewEvent
from mailpool_server.service.models import TimelineEntry, TimelineType
from mailpool_server.service.policy import WarmupState, close_sending_day
from mailpool_server.service.ports import EventListener, Store


class Timers:
    def __init__(self, store: Store, clock: Clock, listener: EventListener) -> None:
        self._store = store
        self._clock = clock
        self._listener = listener

    async def fire_no_reply(self, limit: int = 200) -> int:
        """Fire every armed no-reply timer that is due: email.no_reply plus a
        no_reply_expired timeline item, once per arming outbound."""
        now = now_ms(self._clock)
        async with self._store.write() as tx:
            # Lock order, as everywhere: identities first (in id order), then re-read
            # the due conversations under those locks (another replica may have fired
            # some meanwhile).
            candidates = await tx.due_no_reply(now, limit, lock=False)
            for identity_id in sorted({c.identity_id for c in candidates}):
                await tx.lock_identity(identity_id)
            due = await tx.due_no_reply(now, limit, lock=True)
            events: EventsByIdentity = {}
            for conversation in due:
                assert conversation.no_reply_at is not None
                assert conversation.no_reply_after_ms is not None
                waited = now - (conversation.no_reply_at - conversation.no_reply_after_ms)
                await tx.update_conversation(
                    replace(conversation, no_reply_at=None, last_no_reply_at=now, last_event_at=now)
                )
                await tx.add_timeline(
                    conversation.id,
                    TimelineEntry(TimelineType.NO_REPLY_EXPIRED, now, waited_ms=waited),
                )
                events.setdefault(conversation.identity_id, []).append(
                    NewEvent(conversation.id, EmailNoReply(waited))
                )
            heads = await append_all(tx, events, now)
        announce(self._listener, heads)
        return len(due)

    async def close_days(self) -> int:
        """Apply every finished UTC day not yet applied to each mailbox: +1 health for a
        clean sending day, and a stage up after every 3 sending days at health >= 50."""
        today = utc_day(now_ms(self._clock))
        closed = 0
        async with self._store.write() as tx:
            for mailbox in await tx.mailboxes_to_close(today):
                state = WarmupState(mailbox.warmup_stage, mailbox.qualifying_days, mailbox.health)
                days = await tx.mailbox_days(mailbox.id, mailbox.closed_through, today)
                for day in days:
                    state = close_sending_day(state, sent=day.delivered > 0, clean=day.hits == 0)
                await tx.set_warmup(
                    mailbox.id, state.stage, state.qualifying_days, state.health, _yesterday(today)
                )
                closed += 1
        return closed


def _yesterday(today: str) -> str:
    return (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()
