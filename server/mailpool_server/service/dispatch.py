"""The dispatcher's use case: claim due sends, hand them to transports, record outcomes.

Every claimed row ends in exactly one of sent (email.sent), failed
(email.send_failed_permanently) or back in the queue for a retry. Outcomes are
recorded only by the claim that still holds the row, so a dispatcher that lost its
lease (it stalled, or died and came back) records and announces nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from mailpool_server.service.clock import Clock, now_ms, utc_day
from mailpool_server.service.event_log import EventsByIdentity, announce, append_all, merge
from mailpool_server.service.events import (
    EmailSendFailedPermanently,
    EmailSent,
    NewEvent,
    SentMessage,
)
from mailpool_server.service.health import hit
from mailpool_server.service.models import MailboxRef, Transport
from mailpool_server.service.outbound import (
    MessageTransport,
    OutgoingMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from mailpool_server.service.policy import HealthHit
from mailpool_server.service.ports import EventListener, Store

log = logging.getLogger("mailpool.dispatch")

DEFAULT_LEASE_MS = 120_000
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_BACKOFF_MS = 30_000
MAX_BACKOFF_MS = 3_600_000


def backoff_ms(attempt: int, base_ms: int = DEFAULT_BACKOFF_MS) -> int:
    """30 s, 1 min, 2 min, 4 min, … capped at 1 h, after the attempt-th failure."""
    return int(min(MAX_BACKOFF_MS, base_ms * 2 ** (attempt - 1)))


class Dispatcher:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        listener: EventListener,
        transports: Mapping[Transport, MessageTransport],
        *,
        lease_ms: int = DEFAULT_LEASE_MS,
        batch: int = 32,
        concurrency: int = 8,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._listener = listener
        self._transports = transports
        self._lease_ms = lease_ms
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._max_attempts = max_attempts

    async def run_once(self) -> int:
        """Claim one batch of due sends and deliver it; the number claimed."""
        now = now_ms(self._clock)
        async with self._store.write() as tx:
            claimed = await tx.claim_due(now, now + self._lease_ms, self._batch)
        await asyncio.gather(*(self._deliver(message) for message in claimed))
        return len(claimed)

    async def _deliver(self, message: OutgoingMessage) -> None:
        async with self._slots:
            transport = self._transports[message.mailbox.transport]
            error: Exception | None = None
            try:
                await transport.deliver(message)
            except (TransientDeliveryError, PermanentDeliveryError) as failure:
                error = failure
            except Exception as failure:  # a transport bug must not lose the row
                log.exception("transport failed", extra={"fields": {"pending": message.pending_id}})
                error = TransientDeliveryError(f"{type(failure).__name__}: {failure}")
            await self._record(message, error)

    async def _record(self, message: OutgoingMessage, error: Exception | None) -> None:
        now = now_ms(self._clock)
        day = utc_day(now)
        events: EventsByIdentity = {}
        async with self._store.write() as tx:
            # Lock order, everywhere: the identity row first (as Send does), then rows.
            identity = await tx.lock_identity(message.identity_id)
            if error is None:
                if not await tx.finish_sent(message.pending_id, message.attempt, now):
                    return
                await tx.count_delivery(message.mailbox.id, day)
                sent = SentMessage(
                    message.message_id,
                    message.message_id_header,
                    message.mailbox.email,
                    (message.recipient,),
                    message.subject,
                )
                mailbox = MailboxRef(message.mailbox.id, message.mailbox.email)
                events[message.identity_id] = [
                    NewEvent(message.conv_id, EmailSent(message.pending_id, sent, mailbox))
                ]
            elif isinstance(error, TransientDeliveryError) and message.attempt < self._max_attempts:
                retry_at = now + backoff_ms(message.attempt)
                await tx.retry_later(message.pending_id, message.attempt, retry_at, str(error))
                return
            else:
                if not await tx.finish_failed(message.pending_id, message.attempt, str(error)):
                    return
                failure = EmailSendFailedPermanently(
                    message.pending_id, message.recipient, str(error), message.attempt
                )
                events[message.identity_id] = [NewEvent(message.conv_id, failure)]
                if isinstance(error, PermanentDeliveryError) and error.auth_failure:
                    merge(events, await hit(tx, message.mailbox, HealthHit.AUTH_FAILURE, day))
            heads = await append_all(tx, events, now, locked=identity)
        announce(self._listener, heads)
