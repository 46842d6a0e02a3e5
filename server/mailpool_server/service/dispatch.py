"""The dispatcher's use case: claim due sends, hand them to transports, record outcomes.

Every claimed row ends in exactly one of sent (email.sent), failed
(email.send_failed_permanently) or back in the queue for a retry. Outcomes are
recorded only by the claim that still holds the row, so a dispatcher that lost its
lease (it stalled, or died and came back) records and announces nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from mailpool_server.logs import request_id as current_request_id
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
from mailpool_server.service.observe import NO_OBSERVER, Observer
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
        observer: Observer = NO_OBSERVER,
    ) -> None:
        self._observer = observer
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
        # Each delivery runs in its own task (gather), so this is its own context: the
        # logs of this delivery carry the id of the request that queued it.
        current_request_id.set(message.request_id or "-")
        async with self._slots:
            transport = self._transports[message.mailbox.transport]
            error: Exception | None = None
            started = time.perf_counter()
            try:
                await transport.deliver(message)
            except (TransientDeliveryError, PermanentDeliveryError) as failure:
                error = failure
            except Exception as failure:  # a transport bug must not lose the row
                log.exception("transport failed", extra={"fields": {"pending": message.pending_id}})
                error = TransientDeliveryError(f"{type(failure).__name__}: {failure}")
            seconds = time.perf_counter() - started
            outcome = await self._record(message, error)
            if outcome is not None:
                self._observer.delivery(message.mailbox.transport.value, outcome, seconds)
                fields = {
                    "pending": message.pending_id,
                    "transport": message.mailbox.transport.value,
                    "attempt": message.attempt,
                    "outcome": outcome,
                    "ms": round(seconds * 1000, 2),
                }
                if error is not None:
                    fields["error"] = str(error)[:200]
                log.info("delivery", extra={"fields": fields})

    async def _record(self, message: OutgoingMessage, error: Exception | None) -> str | None:
        """Record the attempt's outcome: sent, retry or failed; None when this claim
        lost the row (nothing recorded)."""
        now = now_ms(self._clock)
        day = utc_day(now)
        events: EventsByIdentity = {}
        async with self._store.write() as tx:
            # Lock order, everywhere: the identity row first (as Send does), then rows.
            identity = await tx.lock_identity(message.identity_id)
            if error is None:
                outcome = "sent"
                if not await tx.finish_sent(message.pending_id, message.attempt, now):
                    return None
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
                if not await tx.retry_later(
                    message.pending_id, message.attempt, retry_at, str(error)
                ):
                    return None
                return "retry"
            else:
                outcome = "failed"
                if not await tx.finish_failed(message.pending_id, message.attempt, str(error)):
                    return None
                failure = EmailSendFailedPermanently(
                    message.pending_id, message.recipient, str(error), message.attempt
                )
                events[message.identity_id] = [NewEvent(message.conv_id, failure)]
                if isinstance(error, PermanentDeliveryError) and error.auth_failure:
                    merge(events, await hit(tx, message.mailbox, HealthHit.AUTH_FAILURE, day))
            heads = await append_all(tx, events, now, locked=identity)
        announce(self._listener, heads)
        return outcome
