"""A baseline for the bench: the issue's throwaway prototype, a grpc.aio server that serves
the same Send proto and makes the same writes as mailpool's one-recipient keyed send, with
the bare `sqlite3` module, group-committed the same way (store/sqlite_db.py, much simplified).

What it leaves out, on purpose: the API key check (no auth), request validation, the
send's reads (identities and mailboxes are loaded once at start-up, mailboxes taken round
robin, the contact not read), and the event bus. What it keeps: every row mailpool writes,
in one unit of work inside a SAVEPOINT of a batch transaction on one writer connection,
acknowledged only once its batch's COMMIT is on disk. `python -m bench.bare_send_server`
reads MAILPOOL_DATABASE_URL (a database bench/seed.py made) and prints its port on the
first line, then serves until its stdin closes (or a signal ends it), like noop_server.

With `--reads` it also makes the reads no correct send can skip, each one plain SELECT: the
API key by its hash (on a reader connection, before the unit), and in the unit the
identity by its handle (its state may have changed) and what mailpool's send reads of its
recipient (the day's usage, the org's do-not-contact entry, the contact). It still skips
validation, the idempotent pre-read (mailpool's, so that replays need not wait for the
writer) and the mailbox reads (mailpool keeps those in memory on SQLite too).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import cycle
from typing import Any, TypeVar

import grpc

from mailpool.v1 import send_pb2
from mailpool.v1 import send_service_pb2 as send_pb
from mailpool.v1 import send_service_pb2_grpc as send_grpc
from mailpool_server import event_loop
from mailpool_server.service.ids import new_event_id, new_id, random_hex
from mailpool_server.service.policy import Tier, mailbox_daily_cap, tier_policy

T = TypeVar("T")
MAX_BATCH = 128  # as SqliteDatabase: commit even with writers queued past this many units
BUSY_TIMEOUT_S = 10.0  # another process holding the write lock: how long BEGIN retries
DAY_MS = 86_400_000

CLAIM_KEY = (
    'INSERT INTO idempotency_keys (org_id, "key", fingerprint, response, created_at,'
    " expires_at) VALUES (?, ?, ?, '', ?, ?) ON CONFLICT (org_id, \"key\") DO NOTHING"
    ' RETURNING "key"'
)
KEY_ROW = 'SELECT fingerprint, response FROM idempotency_keys WHERE org_id = ? AND "key" = ?'
CONVERSATION = (
    "INSERT INTO conversations (id, identity_id, correspondent, correspondent_domain,"
    " mailbox_id, subject, snippet, message_count, archived, labels, created_at, last_event_at,"
    ' last_message_id_header, "references", no_reply_after_ms, no_reply_at, last_no_reply_at)'
    " VALUES (?, ?, ?, ?, ?, ?, ?, 1, 0, '[]', ?, ?, ?, ?, NULL, NULL, NULL)"
)
MESSAGE = (
    "INSERT INTO messages (id, conv_id, direction, message_id_header, from_address,"
    ' to_addresses, cc_addresses, subject, text, html, snippet, in_reply_to, "references", ts)'
    " VALUES (?, ?, 'outbound', ?, ?, ?, '[]', ?, ?, '', ?, NULL, '[]', ?)"
)
TIMELINE = (
    "INSERT INTO timeline (conv_id, ts, type, message_id, data) VALUES (?, ?, 'message', ?, '{}')"
)
PENDING = (
    "INSERT INTO pending_sends (id, identity_id, conv_id, message_id, mailbox_id, recipient,"
    " send_class, status, dispatch_at, attempts, created_at, request_id)"
    " VALUES (?, ?, ?, ?, ?, ?, 'cold_first_contact', 'queued', ?, 0, ?, ?)"
)
CONTACT = (
    "INSERT INTO contacts (identity_id, address, pinned_mailbox_id, outbound_count,"
    " outbounds_since_reply, last_reply_at) VALUES (?, ?, ?, 1, 1, NULL)"
    " ON CONFLICT (identity_id, address) DO UPDATE SET"
    " pinned_mailbox_id = excluded.pinned_mailbox_id, outbound_count = excluded.outbound_count,"
    " outbounds_since_reply = excluded.outbounds_since_reply,"
    " last_reply_at = excluded.last_reply_at"
)
IDENTITY_USAGE = (
    "INSERT INTO identity_usage (identity_id, day, used) VALUES (?, ?, 1)"
    " ON CONFLICT (identity_id, day) DO UPDATE SET used = identity_usage.used + excluded.used"
    " WHERE identity_usage.used + excluded.used <= ? RETURNING used"
)
MAILBOX_USAGE = (
    "INSERT INTO mailbox_usage (mailbox_id, day, sent, delivered, hits) VALUES (?, ?, 1, 0, 0)"
    " ON CONFLICT (mailbox_id, day) DO UPDATE SET sent = mailbox_usage.sent + excluded.sent"
    " WHERE mailbox_usage.sent + excluded.sent <= ? RETURNING sent"
)
COLD_NEXT = "UPDATE mailboxes SET cold_next_at = ? WHERE id = ?"
RESERVE_SEQ = "UPDATE identities SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq"
EVENT = (
    "INSERT INTO events (id, identity_id, seq, type, conv_id, created_at, data)"
    " VALUES (?, ?, ?, 'email.queued', ?, ?, ?)"
)
COMPLETE_KEY = 'UPDATE idempotency_keys SET response = ? WHERE org_id = ? AND "key" = ?'
# --reads: mailpool's statements for them (store/orgs.py, identities.py, sends.py).
API_KEY = (
    "SELECT id, org_id, prefix, key_hash, created_at, revoked_at, expires_at FROM api_keys"
    " WHERE key_hash = ?"
)
IDENTITY = (
    "SELECT id, org_id, handle, tier, state, created_at, last_seq, timezone, work_start_min,"
    " work_end_min FROM identities WHERE handle = ?"
)
KNOWN = (
    "SELECT 2, NULL, NULL, COALESCE((SELECT used FROM identity_usage WHERE identity_id = ?1"
    " AND day = ?2), 0), NULL, NULL UNION ALL SELECT 0, address, NULL, NULL, NULL, NULL"
    " FROM do_not_contact WHERE org_id = ?3 AND address = ?4 UNION ALL SELECT 1, address,"
    " pinned_mailbox_id, outbound_count, outbounds_since_reply, last_reply_at FROM contacts"
    " WHERE identity_id = ?1 AND address = ?4"
)


class Refused(Exception):
    """A send the baseline answers with an error status (its unit rolled back)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code


@dataclass
class Mailbox:
    id: str
    email: str
    cap: int
    cold_next_at: int


@dataclass
class Identity:
    id: str
    org_id: str
    handle: str
    cap: int
    mailboxes: list[Mailbox]
    rotation: Iterator[Mailbox] = field(init=False)  # round robin over the mailboxes

    def __post_init__(self) -> None:
        self.rotation = cycle(self.mailboxes)


class _Batch:
    def __init__(self) -> None:
        self.members = 0
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class Writer:
    """Units of work on one connection, taking turns, group-committed: the first of a batch
    runs BEGIN IMMEDIATE, each unit runs in SAVEPOINT unit, and the batch commits (on a
    thread) once no writer waits or MAX_BATCH units are in; each unit returns only then."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._busy = False
        self._queue: deque[asyncio.Future[None]] = deque()
        self._batch: _Batch | None = None
        self._commits: set[asyncio.Task[None]] = set()

    async def run(self, unit: Callable[[sqlite3.Connection], T]) -> T:
        await self._take_turn()
        conn = self._conn
        try:
            batch = await self._begin_batch()
            conn.execute("SAVEPOINT unit")
            try:
                result = unit(conn)
                conn.execute("RELEASE unit")
            except BaseException:
                conn.execute("ROLLBACK TO unit")
                conn.execute("RELEASE unit")
                raise
            batch.members += 1
        finally:
            self._release_turn()
        await asyncio.shield(batch.committed)
        return result

    async def _take_turn(self) -> None:
        if not self._busy and not self._queue:
            self._busy = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._release_turn()  # handed the turn as we gave up: pass it on
            else:
                with suppress(ValueError):
                    self._queue.remove(turn)
            raise

    def _release_turn(self) -> None:
        """Hand the connection to the next writer (it joins the open batch), or commit."""
        while self._queue and self._queue[0].done():
            self._queue.popleft()  # gave up waiting
        batch = self._batch
        if batch is not None and (not self._queue or batch.members >= MAX_BATCH):
            self._batch = None
            task = asyncio.get_running_loop().create_task(self._commit(batch))
            self._commits.add(task)
            task.add_done_callback(self._commits.discard)
        elif self._queue:
            self._queue.popleft().set_result(None)
        else:
            self._busy = False

    async def _begin_batch(self) -> _Batch:
        if self._batch is None:
            loop = asyncio.get_running_loop()
            give_up, delay = loop.time() + BUSY_TIMEOUT_S, 0.001
            while True:  # busy_timeout=0: wait for another process's lock without blocking
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as error:
                    if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or loop.time() > give_up:
                        raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
            self._batch = _Batch()
        return self._batch

    async def _commit(self, batch: _Batch) -> None:
        try:
            await asyncio.to_thread(self._conn.commit)
        except BaseException as error:
            with suppress(sqlite3.Error):
                self._conn.rollback()
            batch.committed.set_exception(error)
            batch.committed.exception()  # seen, even if no member waits for it
        else:
            batch.committed.set_result(None)
        finally:
            self._release_turn()

    async def close(self) -> None:
        while self._commits:
            await asyncio.gather(*self._commits, return_exceptions=True)
        self._conn.close()


def connect(url: str) -> sqlite3.Connection:
    """The writer connection, configured as mailpool's (sqlite_db.py _configure)."""
    conn = sqlite3.connect(url.partition(":///")[2], isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA busy_timeout=0")
    return conn


def load_identities(conn: sqlite3.Connection) -> dict[str, Identity]:
    mailboxes: dict[str, list[Mailbox]] = {}
    for identity_id, *row in conn.execute(
        "SELECT identity_id, id, email, warmup_stage, cold_next_at FROM mailboxes"
        " ORDER BY created_at, id"
    ):
        mailbox_id, email, stage, cold_next_at = row
        mailboxes.setdefault(identity_id, []).append(
            Mailbox(mailbox_id, email, mailbox_daily_cap(stage), cold_next_at)
        )
    return {
        handle: Identity(id_, org_id, handle, tier_policy(Tier(tier)).daily_cap, mailboxes[id_])
        for id_, org_id, handle, tier in conn.execute(
            "SELECT id, org_id, handle, tier FROM identities"
        )
        if id_ in mailboxes
    }


class BareSend(send_grpc.SendServiceServicer):
    def __init__(
        self, conn: sqlite3.Connection, cold_gap_ms: int, reader: sqlite3.Connection | None
    ) -> None:
        self.writer = Writer(conn)
        self._identities = load_identities(conn)
        self._cold_gap_ms = cold_gap_ms
        self.reader = reader  # --reads: where the key is looked up

    async def Send(self, request: send_pb.SendRequest, context: Any) -> send_pb.SendResponse:
        identity = self._identities.get(request.identity)
        if identity is None or len(request.to) != 1:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "one known identity, one to")
        assert identity is not None
        if self.reader is not None and not self._key_is_good(context):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no usable API key")
        try:
            return await self.writer.run(lambda conn: self._write(conn, request, identity))
        except Refused as refused:
            await context.abort(refused.code, str(refused))
            raise AssertionError("abort raises") from None

    async def CancelSend(
        self, request: send_pb.CancelSendRequest, context: Any
    ) -> send_pb.CancelSendResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of the baseline")
        raise AssertionError("abort raises")

    def _key_is_good(self, context: Any) -> bool:
        assert self.reader is not None
        given = dict(context.invocation_metadata() or ()).get("authorization", "")
        key_hash = hashlib.sha256(given.removeprefix("Bearer ").encode()).hexdigest()
        row = self.reader.execute(API_KEY, (key_hash,)).fetchone()
        return row is not None and row[5] is None  # and not revoked

    def _read(self, conn: sqlite3.Connection, identity: Identity, to: str, day: str) -> None:
        """--reads: the identity and what the send knows of its recipient, as mailpool
        reads them in the unit; a suspended identity or a blocked recipient is refused."""
        row = conn.execute(IDENTITY, (identity.handle,)).fetchone()
        if row is None or row[4] != "active":
            raise Refused(grpc.StatusCode.FAILED_PRECONDITION, "the identity is not active")
        for kind, *_ in conn.execute(KNOWN, (identity.id, day, identity.org_id, to)):
            if kind == 0:
                raise Refused(grpc.StatusCode.FAILED_PRECONDITION, "on do-not-contact")

    def _write(
        self, conn: sqlite3.Connection, request: send_pb.SendRequest, identity: Identity
    ) -> send_pb.SendResponse:
        """One keyed send's rows, in mailpool's order (store/outbound.py finish_send)."""
        now = time.time_ns() // 1_000_000
        key, org_id = request.idempotency_key, identity.org_id
        if key:  # 1. the key's claim; a key that exists answers from its stored response
            fingerprint = hashlib.sha256(request.SerializeToString()).hexdigest()
            claim = (org_id, key, fingerprint, now, now + DAY_MS)
            if conn.execute(CLAIM_KEY, claim).fetchone() is None:
                stored_fingerprint, stored = conn.execute(KEY_ROW, (org_id, key)).fetchone()
                if stored_fingerprint != fingerprint:
                    raise Refused(grpc.StatusCode.ALREADY_EXISTS, "idempotency key reused")
                return send_pb.SendResponse.FromString(base64.b64decode(stored))
        day = time.strftime("%Y-%m-%d", time.gmtime(now // 1000))
        if self.reader is not None:
            self._read(conn, identity, request.to[0], day)
        box = next(identity.rotation)
        to, subject, text, ident = request.to[0], request.subject, request.text, identity.id
        conv, msg, psn = new_id("conv"), new_id("msg"), new_id("psn")
        header = f"<{random_hex(12)}@{box.email.partition('@')[2]}>"
        snippet = " ".join(text.split())[:140]
        dispatch_at = max(now, box.cold_next_at)  # a cold send: the mailbox's next slot
        # 2. the conversation, 3. its message, 4. the message's timeline item
        domain, refs = to.partition("@")[2], json.dumps([header])
        conversation = (conv, ident, to, domain, box.id, subject, snippet, now, now, header, refs)
        conn.execute(CONVERSATION, conversation)
        message = (msg, conv, header, box.email, json.dumps([to]), subject, text, snippet, now)
        conn.execute(MESSAGE, message)
        conn.execute(TIMELINE, (conv, now, msg))
        # 5. the queued send (its request id, as mailpool makes one), 6. the contact, pinned
        pending = (psn, ident, conv, msg, box.id, to, dispatch_at, now, new_id("req"))
        conn.execute(PENDING, pending)
        conn.execute(CONTACT, (ident, to, box.id))
        # 7, 8. the day's counters, refused past a cap (mailpool checks before it writes)
        used = conn.execute(IDENTITY_USAGE, (ident, day, identity.cap)).fetchone()
        sent = conn.execute(MAILBOX_USAGE, (box.id, day, box.cap)).fetchone()
        if used is None or sent is None:
            raise Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, "a daily cap is reached")
        cold_next_at = dispatch_at + self._cold_gap_ms
        conn.execute(COLD_NEXT, (cold_next_at, box.id))  # 9. the mailbox's next cold slot
        (seq,) = conn.execute(RESERVE_SEQ, (ident,)).fetchone()  # 10. the event, at its seq
        data = {
            "pending_id": psn,
            "recipient": to,
            "send_class": "cold_first_contact",
            "dispatch_at": dispatch_at,
            "mailbox": {"id": box.id, "email": box.email},
        }
        conn.execute(EVENT, (new_event_id(now), ident, seq, conv, now, json.dumps(data)))
        response = send_pb.SendResponse(
            identity=identity.handle, accepted=1, rejected=0, remaining=identity.cap - used[0]
        )
        result = response.results.add()
        result.to, result.status = to, send_pb2.RECIPIENT_STATUS_QUEUED
        result.pending_id, result.conv_id = psn, conv
        result.send_class = send_pb2.SEND_CLASS_COLD_FIRST_CONTACT
        result.affinity = send_pb2.AFFINITY_NEW
        result.account.id, result.account.email = box.id, box.email
        result.dispatch_time.seconds, millis = divmod(dispatch_at, 1000)
        result.dispatch_time.nanos = millis * 1_000_000
        if key:  # 11. the answer, under the key
            answer = base64.b64encode(response.SerializeToString()).decode()
            conn.execute(COMPLETE_KEY, (answer, org_id, key))
        box.cold_next_at = cold_next_at
        return response


async def main() -> None:
    url = os.environ["MAILPOOL_DATABASE_URL"]
    reader = connect(url) if "--reads" in sys.argv[1:] else None
    servicer = BareSend(connect(url), int(os.environ.get("MAILPOOL_COLD_GAP_MS", "60000")), reader)
    server = grpc.aio.server()
    send_grpc.add_SendServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
    await server.stop(0)
    await servicer.writer.close()
    if servicer.reader is not None:
        servicer.reader.close()


if __name__ == "__main__":
    # The loop mailpool serve runs on: a baseline on another loop would skew the ratios.
    event_loop.run(main())
