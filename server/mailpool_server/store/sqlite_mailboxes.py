"""SQLite's writer keeps each sending identity's healthy mailboxes and their sends today.

Picking a send's mailboxes in SQL (identities.shortlist_sql) joins every mailbox of the
identity to its usage row and sorts them: ~200,000 CPU instructions of SQLite's per
send with 40 mailboxes, the costliest statement a send runs. On SQLite every write of
this process goes through one connection (sqlite_db.py), so that connection can keep
what the shortlist is made of and keep it right: a send updates it with the counts and
cold slots it writes (`count_sent`, `move_cold_slot`), and anything else forgets it.

What forgets the book, whole (the next send of each identity reads its mailboxes again):
- a statement on the writer that names mailboxes or mailbox_usage and is not one the
  book accounts for (driver.Sql.forgets_mailboxes; every SQLAlchemy statement naming
  them, through the writer's before_cursor_execute hook): an operator pausing a
  mailbox, the dispatcher counting a delivery, a health change;
- a unit of work that rolls back (it may have counted sends it then undid), and a
  batch whose COMMIT fails;
- a commit by any other connection (the CLI, another process), seen as a new
  `PRAGMA data_version` when the writer begins its next batch.

PostgreSQL has no such book: there, replicas write the same rows, and the shortlist
stays one statement (see outbound.py).
"""

from __future__ import annotations

import sqlite3
from operator import attrgetter

from mailpool_server.service.picker import Candidate
from mailpool_server.store.driver import Driver, Sql
from mailpool_server.store.identities import MAILBOXES_ON_DAY, ShortlistRow, candidates_of

# Past this many identities kept, the book starts again (bounds its memory: ~10 KiB an
# identity with 40 mailboxes).
MAX_IDENTITIES = 2048

_MAILBOXES_ON_DAY = Sql(MAILBOXES_ON_DAY, keeps_mailboxes=True)


class _Mailbox:
    """One healthy mailbox as the shortlist needs it, on `day`."""

    __slots__ = ("cap", "cold_next_at", "created_at", "day", "email", "id", "sent", "stage")

    def __init__(self, day: str, row: ShortlistRow) -> None:
        self.day = day
        self.id, self.email, self.stage, self.cold_next_at, self.sent, self.cap = row[:6]
        self.created_at = row[6]

    def row(self) -> ShortlistRow:
        return (
            self.id,
            self.email,
            self.stage,
            self.cold_next_at,
            self.sent,
            self.cap,
            self.created_at,
        )


class MailboxBook:
    """Per identity: its healthy mailboxes on one day, as the writer's transaction
    has them."""

    __slots__ = ("_data_version", "_identities", "_mailboxes")

    def __init__(self) -> None:
        self._identities: dict[str, tuple[str, list[_Mailbox]]] = {}  # day, mailboxes
        self._mailboxes: dict[str, _Mailbox] = {}  # by id, those of every kept identity
        self._data_version: int | None = None

    async def shortlist(
        self, driver: Driver, identity_id: str, day: str, most: int, pinned: set[str]
    ) -> list[Candidate]:
        """shortlist_sql's answer: the identity's mailboxes with cap left on `day`, the
        pinned first, then by remaining x (stage + 1), oldest first on ties; at most
        `most`. Read on the writer (`driver`) when not kept."""
        kept = self._identities.get(identity_id)
        if kept is not None and kept[0] == day:
            mailboxes = kept[1]
        else:
            params = {"identity": identity_id, "day": day}
            rows = await driver.all(_MAILBOXES_ON_DAY, params)
            mailboxes = self._keep(identity_id, day, [tuple(row) for row in rows])
        # Kept oldest first, and the sort is stable: sorting by score alone breaks ties
        # by age (a key of plain ints; a tuple key cost ~100,000 instructions a send).
        able = [m for m in mailboxes if m.sent < m.cap and m.id in pinned]
        able.sort(key=_by_score)
        if len(able) < most:
            others = [m for m in mailboxes if m.sent < m.cap and m.id not in pinned]
            others.sort(key=_by_score)
            able += others
        return candidates_of([mailbox.row() for mailbox in able[:most]])

    def count_sent(self, mailbox_id: str, day: str, count: int) -> None:
        """A send counted `count` more on the mailbox's usage row for `day`."""
        mailbox = self._mailboxes.get(mailbox_id)
        if mailbox is None:
            return
        if mailbox.day != day:  # kept for another day: read again when next asked
            self.forget()
        else:
            mailbox.sent += count

    def move_cold_slot(self, mailbox_id: str, at: int) -> None:
        mailbox = self._mailboxes.get(mailbox_id)
        if mailbox is not None:
            mailbox.cold_next_at = at

    def forget(self) -> None:
        self._identities.clear()
        self._mailboxes.clear()

    def check_others(self, raw: sqlite3.Connection) -> None:
        """Forget everything if another connection committed since the last check (run
        inside the writer's transaction, so nothing commits between this and its use)."""
        (version,) = raw.execute("PRAGMA data_version").fetchone()
        if version != self._data_version:
            self._data_version = version
            self.forget()

    def _keep(self, identity_id: str, day: str, rows: list[ShortlistRow]) -> list[_Mailbox]:
        if len(self._identities) >= MAX_IDENTITIES:
            self.forget()
        mailboxes = [_Mailbox(day, row) for row in rows]
        mailboxes.sort(key=attrgetter("created_at", "id"))
        self._identities[identity_id] = (day, mailboxes)
        self._mailboxes.update((mailbox.id, mailbox) for mailbox in mailboxes)
        return mailboxes


def _by_score(mailbox: _Mailbox) -> int:
    """The picker's score, best first: remaining cap x (warmup stage + 1)."""
    return (mailbox.sent - mailbox.cap) * (mailbox.stage + 1)
