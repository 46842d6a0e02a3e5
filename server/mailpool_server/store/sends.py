"""The rows one send writes besides conversations and events."""

from __future__ import annotations

from mailpool_server.service.models import Contact, Identity, PendingSend, SendResult
from mailpool_server.service.ports import IdempotencyRecord, SendContext
from mailpool_server.store.base import TxBase
from mailpool_server.store.codec import dump, load_send_result
from mailpool_server.store.driver import Sql, placeholders, set_sql
from mailpool_server.store.identities import (
    IDENTITY_COLUMNS,
    candidates_of,
    identity_of,
    shortlist_sql,
)
from mailpool_server.store.tables import DoNotContactRow

_IDENTITY_BY_ID = f"SELECT {IDENTITY_COLUMNS} FROM identities WHERE id = :identity_id"
# FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the lock.
_LOCK_IDENTITY = Sql(_IDENTITY_BY_ID, pg=_IDENTITY_BY_ID + " FOR UPDATE")
_RECORD_COLUMNS = "fingerprint, response, expires_at"
_IDEMPOTENCY_RECORD = Sql(
    f"SELECT {_RECORD_COLUMNS} FROM idempotency_keys"
    " WHERE org_id = :org AND key = :idem_key AND expires_at > :now AND response != ''"
)
CLAIM_KEY = Sql(
    "INSERT INTO idempotency_keys (org_id, key, fingerprint, response, created_at, expires_at)"
    " VALUES (:org, :idem_key, :fingerprint, '', :now, :expires_at)"
    " ON CONFLICT (org_id, key) DO NOTHING RETURNING key"
)
_REVIVE_KEY = Sql(
    "UPDATE idempotency_keys"
    " SET fingerprint = :fingerprint, response = '', created_at = :now, expires_at = :expires_at"
    " WHERE org_id = :org AND key = :idem_key AND expires_at <= :now RETURNING key"
)
_KEY_ROW = Sql(
    f"SELECT {_RECORD_COLUMNS} FROM idempotency_keys WHERE org_id = :org AND key = :idem_key"
)
COMPLETE_KEY = Sql(
    "UPDATE idempotency_keys SET response = :answer WHERE org_id = :org AND key = :idem_key"
)
CONTACT_COLUMNS = (
    "identity_id",
    "address",
    "pinned_mailbox_id",
    "outbound_count",
    "outbounds_since_reply",
    "last_reply_at",
)
_CONTACT_STATE = ", ".join(CONTACT_COLUMNS[2:])
# Upserting a contact replaces its state (the caller computed it from what it read).
CONTACT_UPSERT = "ON CONFLICT (identity_id, address) DO UPDATE SET " + ", ".join(
    f"{column} = excluded.{column}" for column in CONTACT_COLUMNS[2:]
)
_CONTACTS_AMONG = set_sql(
    f"SELECT address, {_CONTACT_STATE} FROM contacts"
    " WHERE identity_id = :identity AND {addresses}",
    addresses="address",
)
# The mailboxes a send's recipients are pinned to: those given (a reply's
# conversation's), and their contacts'.
_PINNED = (
    "{pinned} OR m.id IN (SELECT pinned_mailbox_id FROM contacts"
    " WHERE identity_id = :identity AND {addresses})"
)
# A send's reads under its identity's lock, in one statement (a round trip each on
# PostgreSQL), told apart by the first column: 2 the identity's usage on the day (one
# row), 0 the org's do-not-contact entries, 1 the identity's contacts, 3 the picker's
# shortlist of mailboxes. SQLite's writer makes the shortlist from what it keeps
# (sqlite_mailboxes.py) and reads the rest (_SEND_KNOWN).
_KNOWN_TEXT = (
    "SELECT 2, CAST(NULL AS TEXT), CAST(NULL AS TEXT), COALESCE((SELECT used FROM"
    " identity_usage WHERE identity_id = :identity AND day = :day), 0),"
    " CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)"
    " UNION ALL SELECT 0, address, NULL, NULL, NULL, NULL, NULL, NULL FROM do_not_contact"
    " WHERE org_id = :org AND {addresses}"
    f" UNION ALL SELECT 1, address, {_CONTACT_STATE}, NULL, NULL FROM contacts"
    " WHERE identity_id = :identity AND {addresses}"
)
_SEND_CONTEXT = set_sql(
    _KNOWN_TEXT
    + " UNION ALL SELECT 3, shortlist.* FROM ("
    + shortlist_sql(_PINNED)
    + ") AS shortlist",
    addresses="address",
    pinned="m.id",
)
_SEND_KNOWN = set_sql(_KNOWN_TEXT, addresses="address")
_SAVE_CONTACT = Sql(
    f"INSERT INTO contacts ({', '.join(CONTACT_COLUMNS)}) VALUES ({placeholders(CONTACT_COLUMNS)})"
    f" {CONTACT_UPSERT}"
)
# set_mailbox_cold_next moves the slot in SQLite's mailbox book itself.
_SET_COLD_NEXT = Sql(
    "UPDATE mailboxes SET cold_next_at = :at WHERE id = :mailbox", keeps_mailboxes=True
)
PENDING_COLUMNS = (
    "id",
    "identity_id",
    "conv_id",
    "message_id",
    "mailbox_id",
    "recipient",
    "send_class",
    "status",
    "dispatch_at",
    "attempts",
    "created_at",
    "request_id",
)
_INSERT_PENDING = Sql(
    f"INSERT INTO pending_sends ({', '.join(PENDING_COLUMNS)})"
    f" VALUES ({placeholders(PENDING_COLUMNS)})"
)


def contact_values(contact: Contact) -> dict[str, object]:
    """A contact's row, by CONTACT_COLUMNS."""
    return {
        "identity_id": contact.identity_id,
        "address": contact.address,
        "pinned_mailbox_id": contact.pinned_mailbox_id,
        "outbound_count": contact.outbound_count,
        "outbounds_since_reply": contact.outbounds_since_reply,
        "last_reply_at": contact.last_reply_at,
    }


def pending_values(pending: PendingSend) -> dict[str, object]:
    """A queued send's row, by PENDING_COLUMNS."""
    return {
        "id": pending.id,
        "identity_id": pending.identity_id,
        "conv_id": pending.conv_id,
        "message_id": pending.message_id,
        "mailbox_id": pending.mailbox_id,
        "recipient": pending.recipient,
        "send_class": pending.send_class.value,
        "status": pending.status.value,
        "dispatch_at": pending.dispatch_at,
        "attempts": pending.attempts,
        "created_at": pending.created_at,
        "request_id": pending.request_id,
    }


def claim_key_params(
    org_id: str, key: str, fingerprint: str, now: int, expires_at: int
) -> dict[str, object]:
    """CLAIM_KEY's parameters."""
    return {
        "org": org_id,
        "idem_key": key,
        "fingerprint": fingerprint,
        "now": now,
        "expires_at": expires_at,
    }


def complete_key_params(org_id: str, key: str, result: SendResult) -> dict[str, object]:
    """COMPLETE_KEY's parameters: the result stored under the org's key."""
    return {"org": org_id, "idem_key": key, "answer": dump(result)}


def _record(fingerprint: str, response: str, expires_at: int) -> IdempotencyRecord:
    # An empty response is a claim whose send has not committed (only PostgreSQL can
    # show one, to the transaction that waited on it).
    result = load_send_result(response) if response else None
    return IdempotencyRecord(fingerprint, result, expires_at)


class SendRepoSql(TxBase):
    async def lock_identity(self, identity_id: str) -> Identity:
        row = await self.driver.one(_LOCK_IDENTITY, {"identity_id": identity_id})
        if row is None:
            raise LookupError(f"identity {identity_id} vanished")
        return identity_of(row)

    async def claim_idempotency_key(
        self, org_id: str, key: str, fingerprint: str, now: int, expires_at: int
    ) -> IdempotencyRecord | None:
        params = claim_key_params(org_id, key, fingerprint, now, expires_at)
        # The INSERT is the first write of the send: a concurrent duplicate blocks on
        # the unique key right here until the first transaction ends.
        if await self.driver.one(CLAIM_KEY, params) is not None:
            return None
        return await self.after_conflict(params)

    async def after_conflict(self, params: dict[str, object]) -> IdempotencyRecord | None:
        """A claim that met a row under its key: None when this request revived an
        expired one, else the live record."""
        # Past its 24 hours the key starts a new life, if this request is the one to
        # revive it: the UPDATE re-checks the expiry under the row's lock, so of two
        # requests reviving one key on PostgreSQL, the second finds it live.
        if await self.driver.one(_REVIVE_KEY, params) is not None:
            return None
        row = await self.driver.one(_KEY_ROW, params)
        assert row is not None  # the conflict proves it exists; nothing deletes rows
        return _record(*row)

    async def idempotency_record(self, org_id: str, key: str, now: int) -> IdempotencyRecord | None:
        row = await self.driver.one(
            _IDEMPOTENCY_RECORD, {"org": org_id, "idem_key": key, "now": now}
        )
        return None if row is None else _record(*row)

    async def complete_idempotency_key(self, org_id: str, key: str, result: SendResult) -> None:
        await self.driver.run(COMPLETE_KEY, complete_key_params(org_id, key, result))

    async def send_context(
        self,
        org_id: str,
        identity_id: str,
        day: str,
        addresses: list[str],
        *,
        want: int = 0,
        pinned: tuple[str, ...] = (),
    ) -> SendContext:
        # The wanted, and room for the pinned: those given, and at most one per
        # recipient's contact.
        most = want + len(pinned) + len(addresses)
        params: dict[str, object] = {
            "org": org_id,
            "identity": identity_id,
            "day": day,
            "addresses": addresses,
        }
        kept = self.driver.mailboxes
        if kept is None:
            params |= {"pinned": list(pinned), "most": most}
        rows = await self.driver.all(_SEND_CONTEXT if kept is None else _SEND_KNOWN, params)
        used, blocked, contacts, shortlist = 0, set(), {}, []
        for kind, text, more, *numbers in rows:
            if kind == 2:
                used = numbers[0]
            elif kind == 0:
                blocked.add(text)
            elif kind == 1:
                contacts[text] = Contact(identity_id, text, more, *numbers[:3])
            else:
                shortlist.append((text, more, *numbers))
        if kept is None:
            candidates = candidates_of(shortlist)
        else:
            pins = {c.pinned_mailbox_id for c in contacts.values() if c.pinned_mailbox_id}
            pins.update(pinned)
            candidates = await kept.shortlist(self.driver, identity_id, day, most, pins)
        return SendContext(used, frozenset(blocked), contacts, candidates)

    async def add_do_not_contact(self, org_id: str, address: str, reason: str, at: int) -> None:
        await self.session.execute(
            self.insert(DoNotContactRow)
            .values(org_id=org_id, address=address, reason=reason, created_at=at)
            .on_conflict_do_nothing(index_elements=["org_id", "address"])
        )

    async def contacts_among(self, identity_id: str, addresses: list[str]) -> dict[str, Contact]:
        if not addresses:
            return {}
        rows = await self.driver.all(
            _CONTACTS_AMONG, {"identity": identity_id, "addresses": addresses}
        )
        return {
            address: Contact(identity_id, address, pinned, outbound_count, since_reply, replied_at)
            for address, pinned, outbound_count, since_reply, replied_at in rows
        }

    async def save_contact(self, contact: Contact) -> None:
        await self.driver.run(_SAVE_CONTACT, contact_values(contact))

    async def set_mailbox_cold_next(self, mailbox_id: str, at: int) -> None:
        await self.driver.run(_SET_COLD_NEXT, {"mailbox": mailbox_id, "at": at})
        if self.driver.mailboxes is not None:
            self.driver.mailboxes.move_cold_slot(mailbox_id, at)

    async def add_pending_send(self, pending: PendingSend) -> None:
        await self.driver.insert_batched(_INSERT_PENDING, [pending_values(pending)])
