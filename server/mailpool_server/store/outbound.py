"""A send's writes in few calls: its key's claim with its identity's lock, a queued
recipient's rows, and the send's finish (the recipients' rows, cap counters, events and
idempotency result).

SQLite runs the single-row statements one after another (each costs microseconds, in
this process). PostgreSQL gets one statement per call, its rows written by data-
modifying CTEs: every statement there is a round trip, and round trips are most of
what a send costs. Foreign keys between the rows of one statement hold: PostgreSQL
checks them when the statement ends.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Protocol

from mailpool_server.service.ports import (
    ConversationRepo,
    EventRepo,
    IdentityRepo,
    Outbound,
    SendClaim,
    SendRepo,
    SendTally,
)
from mailpool_server.store.conversations import (
    CONVERSATION_STATE,
    MESSAGE_COLUMNS,
    ConversationRepoSql,
    conversation_values,
    message_values,
    timeline_data,
)
from mailpool_server.store.driver import Sql, placeholders, quoted
from mailpool_server.store.events import APPEND_CTES, EventRepoSql, append_params, new_rows
from mailpool_server.store.identities import (
    ADD_IDENTITY_USAGE,
    ADD_MAILBOX_USAGE,
    IDENTITY_COLUMNS,
    IdentityRepoSql,
    identity_of,
)
from mailpool_server.store.sends import (
    CLAIM_KEY,
    COMPLETE_KEY,
    CONTACT_COLUMNS,
    CONTACT_UPSERT,
    PENDING_COLUMNS,
    SendRepoSql,
    claim_key_params,
    complete_key_params,
    contact_values,
    pending_values,
)


class _SingleRows(ConversationRepo, IdentityRepo, SendRepo, EventRepo, Protocol):
    """The single-row methods the two calls are made of."""


async def add_outbound_in_steps(tx: _SingleRows, outbound: Outbound) -> None:
    """add_outbound as the single-row calls it stands for (SQLite, the in-memory store)."""
    if outbound.new_conversation:
        await tx.add_conversation(outbound.conversation)
    else:
        await tx.update_conversation(outbound.conversation)
    await tx.add_message(outbound.message)
    for entry in outbound.timeline:
        await tx.add_timeline(outbound.conversation.id, entry)
    await tx.add_pending_send(outbound.pending)
    await tx.save_contact(outbound.contact)


async def claim_for_send_in_steps(
    tx: _SingleRows, org_id: str, key: str, fingerprint: str, now: int, expires_at: int, handle: str
) -> SendClaim:
    """claim_for_send as the calls it stands for (SQLite, the in-memory store)."""
    existing = await tx.claim_idempotency_key(org_id, key, fingerprint, now, expires_at)
    if existing is not None:
        return SendClaim(existing, None)
    return SendClaim(None, await tx.identity_by_handle(handle, lock=True))


# PostgreSQL: the claim, and the identity's lock only if the claim took (the EXISTS
# makes the executor insert before it scans, so the key is waited on first, as with
# two statements); one row: how many keys were claimed (0 or 1), then the identity.
_CLAIM_FOR_SEND = Sql(f"""WITH claimed AS ({CLAIM_KEY.text}),
locked AS (
  SELECT {IDENTITY_COLUMNS} FROM identities
  WHERE handle = :handle AND EXISTS (SELECT 1 FROM claimed) FOR UPDATE
)
SELECT (SELECT count(*) FROM claimed), locked.* FROM (SELECT 1) AS one LEFT JOIN locked ON true""")


def _past_a_cap(tally: SendTally) -> bool:
    # Checked before any write: a counter's first row of the day is inserted unchecked.
    return tally.count > tally.cap or any(m.count > m.cap for m in tally.mailboxes)


async def finish_send_in_steps(tx: _SingleRows, tally: SendTally) -> int | None:
    """finish_send as the single-row calls it stands for (SQLite, the in-memory store)."""
    identity = tally.identity
    if _past_a_cap(tally):
        return None
    for outbound in tally.outbounds:
        await add_outbound_in_steps(tx, outbound)
    if not await tx.add_identity_usage(identity.id, tally.day, tally.count, tally.cap):
        return None
    for mailbox in tally.mailboxes:
        day, count, cap = tally.day, mailbox.count, mailbox.cap
        if not await tx.add_mailbox_usage(mailbox.mailbox_id, day, count, cap):
            return None
        if mailbox.cold_next_at is not None:
            await tx.set_mailbox_cold_next(mailbox.mailbox_id, mailbox.cold_next_at)
    appended = await tx.append_events(identity, tally.events, tally.at)
    if tally.key is not None:
        await tx.complete_idempotency_key(identity.org_id, tally.key, tally.result)
    return appended[-1].seq


def _prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    return {prefix + name: value for name, value in values.items()}


@cache
def _outbound_ctes(new_conversation: bool) -> str:
    """A queued recipient's rows as CTEs (conv, msg, items, queued, contact)."""
    state = ("id", *CONVERSATION_STATE)
    conversation = (
        f"INSERT INTO conversations ({quoted(state)}) VALUES ({placeholders(state, 'c_')})"
        if new_conversation
        else "UPDATE conversations SET "
        + ", ".join(f'"{column}" = :c_{column}' for column in CONVERSATION_STATE)
        + " WHERE id = :c_id"
    )
    return f"""conv AS ({conversation}),
msg AS (
  INSERT INTO messages ({quoted(MESSAGE_COLUMNS)})
  VALUES ({placeholders(MESSAGE_COLUMNS, "m_")})
),
items AS (
  INSERT INTO timeline (conv_id, ts, type, message_id, data)
  SELECT :c_id, :m_ts, t.type, t.message_id, t.data
  FROM unnest(:t_types::text[], :t_messages::text[], :t_data::text[])
    WITH ORDINALITY AS t(type, message_id, data, position)
  ORDER BY t.position
),
queued AS (
  INSERT INTO pending_sends ({", ".join(PENDING_COLUMNS)})
  VALUES ({placeholders(PENDING_COLUMNS, "p_")})
),
contact AS (
  INSERT INTO contacts ({", ".join(CONTACT_COLUMNS)})
  VALUES ({placeholders(CONTACT_COLUMNS, "k_")}) {CONTACT_UPSERT}
)"""


@cache
def _outbound_sql(new_conversation: bool) -> Sql:
    return Sql(f"WITH {_outbound_ctes(new_conversation)} SELECT 1")


def _outbound_params(outbound: Outbound) -> dict[str, Any]:
    conversation, message = outbound.conversation, outbound.message
    return {
        **_prefixed("c_", {"id": conversation.id, **conversation_values(conversation)}),
        **_prefixed("m_", message_values(message)),
        **_prefixed("p_", pending_values(outbound.pending)),
        **_prefixed("k_", contact_values(outbound.contact)),
        "t_types": [entry.type.value for entry in outbound.timeline],
        "t_messages": [entry.message.id if entry.message else None for entry in outbound.timeline],
        "t_data": [timeline_data(entry) for entry in outbound.timeline],
    }


@cache
def _finish_sql(outbound: bool | None, mailboxes: int, keyed: bool) -> Sql:
    """A queued recipient's rows (`outbound`: None for none, else whether its
    conversation is new), the identity's counter, `mailboxes` mailbox counters, the
    cold slots moved, the events and (`keyed`) the idempotency result, as one statement
    that answers how many counters took their count and the identity's new head seq."""
    ctes = [] if outbound is None else [_outbound_ctes(outbound)]
    ctes.append(f"c0 AS ({ADD_IDENTITY_USAGE.text})")
    for n in range(1, mailboxes + 1):
        upsert = ADD_MAILBOX_USAGE.text
        for name in ("owner", "count", "cap"):
            upsert = upsert.replace(f":{name}", f":{name}{n}")
        ctes.append(f"c{n} AS ({upsert})")
    ctes.append("""slots AS (
  UPDATE mailboxes SET cold_next_at = moved.at
  FROM unnest(:slot_ids::text[], :slot_ats::bigint[]) AS moved(id, at)
  WHERE mailboxes.id = moved.id
)""")
    ctes.append(APPEND_CTES)
    if keyed:
        ctes.append(f"completed AS ({COMPLETE_KEY.text})")
    took = " + ".join(f"(SELECT count(*) FROM c{n})" for n in range(mailboxes + 1))
    return Sql(f"WITH {', '.join(ctes)} SELECT {took}, reserved.last_seq FROM reserved, woken")


class OutboundRepoSql(IdentityRepoSql, SendRepoSql, ConversationRepoSql, EventRepoSql):
    """The send's writes, built on the single-row repositories (SQLite runs those)."""

    async def add_outbound(self, outbound: Outbound) -> None:
        if self.dialect != "postgresql":
            await add_outbound_in_steps(self, outbound)
            return
        statement = _outbound_sql(outbound.new_conversation)
        await self.driver.run(statement, _outbound_params(outbound))

    async def claim_for_send(
        self, org_id: str, key: str, fingerprint: str, now: int, expires_at: int, handle: str
    ) -> SendClaim:
        if self.dialect != "postgresql":
            return await claim_for_send_in_steps(
                self, org_id, key, fingerprint, now, expires_at, handle
            )
        params = claim_key_params(org_id, key, fingerprint, now, expires_at)
        row = await self.driver.one(_CLAIM_FOR_SEND, {**params, "handle": handle})
        assert row is not None
        if row[0] == 1:
            return SendClaim(None, None if row[1] is None else identity_of(tuple(row)[1:]))
        existing = await self.after_conflict(params)
        if existing is not None:
            return SendClaim(existing, None)
        return SendClaim(None, await self.identity_by_handle(handle, lock=True))

    async def finish_send(self, tally: SendTally) -> int | None:
        if self.dialect != "postgresql":
            return await finish_send_in_steps(self, tally)
        if _past_a_cap(tally):
            return None
        # Every recipient's rows but the last in a statement of their own; the last
        # recipient's go with the rest, so a one-recipient send finishes in one.
        last = tally.outbounds[-1] if tally.outbounds else None
        for outbound in tally.outbounds[:-1]:
            await self.add_outbound(outbound)
        identity, events, at = tally.identity, tally.events, tally.at
        ids, data = new_rows(events, at)
        params: dict[str, Any] = append_params(identity.id, events, at, ids, data)
        params |= {"owner": identity.id, "day": tally.day, "count": tally.count, "cap": tally.cap}
        for n, mailbox in enumerate(tally.mailboxes, start=1):
            params |= {f"owner{n}": mailbox.mailbox_id, f"count{n}": mailbox.count}
            params[f"cap{n}"] = mailbox.cap
        moved = [m for m in tally.mailboxes if m.cold_next_at is not None]
        params["slot_ids"] = [m.mailbox_id for m in moved]
        params["slot_ats"] = [m.cold_next_at for m in moved]
        if tally.key is not None:
            params |= complete_key_params(identity.org_id, tally.key, tally.result)
        if last is not None:
            params |= _outbound_params(last)
        statement = _finish_sql(
            None if last is None else last.new_conversation,
            len(tally.mailboxes),
            tally.key is not None,
        )
        row = await self.driver.one(statement, params)
        assert row is not None
        took, last_seq = row
        return int(last_seq) if took == len(tally.mailboxes) + 1 else None
