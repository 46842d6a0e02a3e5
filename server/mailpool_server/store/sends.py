"""The rows one send writes besides conversations and events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update

from mailpool_server.service.models import Contact, Identity, PendingSend, SendResult
from mailpool_server.service.ports import IdempotencyRecord
from mailpool_server.store.base import InsertFn, TxBase, table
from mailpool_server.store.codec import dump, load_send_result
from mailpool_server.store.identities import IDENTITIES, identity_from_row
from mailpool_server.store.tables import (
    ContactRow,
    DoNotContactRow,
    IdempotencyRow,
    MailboxRow,
    PendingSendRow,
)

_KEYS = table(IdempotencyRow)
_CONTACTS = table(ContactRow)
_DO_NOT_CONTACT = table(DoNotContactRow)
_MAILBOXES = table(MailboxRow)
_PENDING = table(PendingSendRow)

_LOCK_IDENTITY = (
    select(IDENTITIES).where(IDENTITIES.c.id == bindparam("identity_id")).with_for_update()
)
_IDEMPOTENCY_RECORD = select(_KEYS.c.fingerprint, _KEYS.c.response, _KEYS.c.expires_at).where(
    _KEYS.c.org_id == bindparam("org"),
    _KEYS.c.key == bindparam("idem_key"),
    _KEYS.c.expires_at > bindparam("now"),
    _KEYS.c.response != "",
)
_REVIVE_KEY = (
    update(_KEYS)
    .where(
        _KEYS.c.org_id == bindparam("org"),
        _KEYS.c.key == bindparam("idem_key"),
        _KEYS.c.expires_at <= bindparam("now"),
    )
    .values(
        fingerprint=bindparam("fingerprint"),
        response="",
        created_at=bindparam("now"),
        expires_at=bindparam("expires_at"),
    )
    .returning(_KEYS.c.key)
)
_KEY_ROW = select(_KEYS.c.fingerprint, _KEYS.c.response, _KEYS.c.expires_at).where(
    _KEYS.c.org_id == bindparam("org"), _KEYS.c.key == bindparam("idem_key")
)
_COMPLETE_KEY = (
    update(_KEYS)
    .where(_KEYS.c.org_id == bindparam("org"), _KEYS.c.key == bindparam("idem_key"))
    .values(response=bindparam("answer"))
)
_DO_NOT_CONTACT_AMONG = select(_DO_NOT_CONTACT.c.address).where(
    _DO_NOT_CONTACT.c.org_id == bindparam("org"),
    _DO_NOT_CONTACT.c.address.in_(bindparam("addresses", expanding=True)),
)
_CONTACTS_AMONG = select(_CONTACTS).where(
    _CONTACTS.c.identity_id == bindparam("identity"),
    _CONTACTS.c.address.in_(bindparam("addresses", expanding=True)),
)
_SET_COLD_NEXT = (
    update(_MAILBOXES)
    .where(_MAILBOXES.c.id == bindparam("mailbox"))
    .values(cold_next_at=bindparam("at"))
)
_INSERT_PENDING = _PENDING.insert()
_CONTACT_STATE = ("pinned_mailbox_id", "outbound_count", "outbounds_since_reply", "last_reply_at")


def _claim_key(insert: InsertFn) -> Any:
    return (
        insert(_KEYS)
        .on_conflict_do_nothing(index_elements=["org_id", "key"])
        .returning(_KEYS.c.key)
    )


def _save_contact(insert: InsertFn) -> Any:
    statement = insert(_CONTACTS)
    return statement.on_conflict_do_update(
        index_elements=["identity_id", "address"],
        set_={name: statement.excluded[name] for name in _CONTACT_STATE},
    )


def _record(fingerprint: str, response: str, expires_at: int) -> IdempotencyRecord:
    # An empty response is a claim whose send has not committed (only PostgreSQL can
    # show one, to the transaction that waited on it).
    result = load_send_result(response) if response else None
    return IdempotencyRecord(fingerprint, result, expires_at)


class SendRepoSql(TxBase):
    async def lock_identity(self, identity_id: str) -> Identity:
        # FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the lock.
        row = (await self.session.execute(_LOCK_IDENTITY, {"identity_id": identity_id})).first()
        if row is None:
            raise LookupError(f"identity {identity_id} vanished")
        return identity_from_row(row)

    async def claim_idempotency_key(
        self, org_id: str, key: str, fingerprint: str, now: int, expires_at: int
    ) -> IdempotencyRecord | None:
        # The INSERT is the first write of the send: a concurrent duplicate blocks on
        # the unique key right here until the first transaction ends.
        inserted = await self.session.execute(
            self.prepared(_claim_key),
            {
                "org_id": org_id,
                "key": key,
                "fingerprint": fingerprint,
                "response": "",
                "created_at": now,
                "expires_at": expires_at,
            },
        )
        if inserted.first() is not None:
            return None
        # Past its 24 hours the key starts a new life, if this request is the one to
        # revive it: the UPDATE re-checks the expiry under the row's lock, so of two
        # requests reviving one key on PostgreSQL, the second finds it live.
        revived = await self.session.execute(
            _REVIVE_KEY,
            {
                "org": org_id,
                "idem_key": key,
                "now": now,
                "fingerprint": fingerprint,
                "expires_at": expires_at,
            },
        )
        if revived.first() is not None:
            return None
        row = (
            await self.session.execute(_KEY_ROW, {"org": org_id, "idem_key": key})
        ).one()  # the conflict proves it exists; nothing deletes rows
        return _record(row.fingerprint, row.response, row.expires_at)

    async def idempotency_record(self, org_id: str, key: str, now: int) -> IdempotencyRecord | None:
        row = (
            await self.session.execute(
                _IDEMPOTENCY_RECORD, {"org": org_id, "idem_key": key, "now": now}
            )
        ).first()
        return None if row is None else _record(row.fingerprint, row.response, row.expires_at)

    async def complete_idempotency_key(self, org_id: str, key: str, result: SendResult) -> None:
        await self.session.execute(
            _COMPLETE_KEY, {"org": org_id, "idem_key": key, "answer": dump(result)}
        )

    async def do_not_contact_among(self, org_id: str, addresses: list[str]) -> set[str]:
        if not addresses:
            return set()
        rows = await self.session.scalars(
            _DO_NOT_CONTACT_AMONG, {"org": org_id, "addresses": addresses}
        )
        return set(rows)

    async def add_do_not_contact(self, org_id: str, address: str, reason: str, at: int) -> None:
        await self.session.execute(
            self.insert(DoNotContactRow)
            .values(org_id=org_id, address=address, reason=reason, created_at=at)
            .on_conflict_do_nothing(index_elements=["org_id", "address"])
        )

    async def contacts_among(self, identity_id: str, addresses: list[str]) -> dict[str, Contact]:
        if not addresses:
            return {}
        rows = await self.session.execute(
            _CONTACTS_AMONG, {"identity": identity_id, "addresses": addresses}
        )
        return {
            row.address: Contact(
                identity_id=row.identity_id,
                address=row.address,
                pinned_mailbox_id=row.pinned_mailbox_id,
                outbound_count=row.outbound_count,
                outbounds_since_reply=row.outbounds_since_reply,
                last_reply_at=row.last_reply_at,
            )
            for row in rows
        }

    async def save_contact(self, contact: Contact) -> None:
        await self.session.execute(
            self.prepared(_save_contact),
            {
                "identity_id": contact.identity_id,
                "address": contact.address,
                "pinned_mailbox_id": contact.pinned_mailbox_id,
                "outbound_count": contact.outbound_count,
                "outbounds_since_reply": contact.outbounds_since_reply,
                "last_reply_at": contact.last_reply_at,
            },
        )

    async def set_mailbox_cold_next(self, mailbox_id: str, at: int) -> None:
        await self.session.execute(_SET_COLD_NEXT, {"mailbox": mailbox_id, "at": at})

    async def add_pending_send(self, pending: PendingSend) -> None:
        await self.session.execute(
            _INSERT_PENDING,
            {
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
            },
        )
