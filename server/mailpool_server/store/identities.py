"""Identities, their mailboxes and daily usage counters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, select, update

from mailpool_server.service.models import (
    Identity,
    IdentityState,
    Mailbox,
    SmtpSettings,
    SmtpTls,
    Transport,
)
from mailpool_server.service.picker import Candidate
from mailpool_server.service.policy import HEALTH_EXCLUDE_BELOW, WARMUP_DAILY_CAPS, Tier
from mailpool_server.store.base import TxBase, table
from mailpool_server.store.driver import Row as Row_
from mailpool_server.store.driver import Sql, set_sql
from mailpool_server.store.tables import IdentityRow, IdentityUsageRow, MailboxRow, MailboxUsageRow


def mailbox_from_row(row: MailboxRow | Row[Any]) -> Mailbox:
    smtp = None
    if row.smtp_host is not None:
        smtp = SmtpSettings(
            host=row.smtp_host,
            port=row.smtp_port or 587,
            username=row.smtp_username,
            password=row.smtp_password,
            tls=SmtpTls(row.smtp_tls or SmtpTls.STARTTLS),
        )
    return Mailbox(
        id=row.id,
        identity_id=row.identity_id,
        email=row.email,
        transport=Transport(row.transport),
        warmup_stage=row.warmup_stage,
        health=row.health,
        created_at=row.created_at,
        smtp=smtp,
        cold_next_at=row.cold_next_at,
        qualifying_days=row.qualifying_days,
        closed_through=row.closed_through,
    )


IDENTITY_COLUMNS = (
    "id, org_id, handle, tier, state, created_at, last_seq, timezone, work_start_min, work_end_min"
)


def identity_of(row: Row_) -> Identity:
    """An identity from a driver row of IDENTITY_COLUMNS."""
    id_, org_id, handle, tier, state, created_at, last_seq, timezone, start, end = row
    return Identity(
        id=id_,
        org_id=org_id,
        handle=handle,
        tier=Tier(tier),
        state=IdentityState(state),
        created_at=created_at,
        last_seq=last_seq,
        timezone=timezone,
        work_start_min=start,
        work_end_min=end,
    )


_BY_HANDLE = f"SELECT {IDENTITY_COLUMNS} FROM identities WHERE handle = :handle"
_IDENTITY_BY_HANDLE = Sql(_BY_HANDLE)
_IDENTITIES_OF = Sql(
    f"SELECT {IDENTITY_COLUMNS} FROM identities"
    " WHERE org_id = :org AND handle > :after ORDER BY handle LIMIT :limit"
)
# FOR UPDATE on PostgreSQL; SQLite's writer holds the database's write lock already.
_IDENTITY_BY_HANDLE_LOCKED = Sql(_BY_HANDLE, pg=_BY_HANDLE + " FOR UPDATE")
_IDENTITY_USED = set_sql(
    "SELECT identity_id, used FROM identity_usage WHERE {ids} AND day = :day", ids="identity_id"
)


def _stage_cap_sql(column: str) -> str:
    """service.policy's cap per warmup stage, as SQL (generated from its table)."""
    stages = " ".join(f"WHEN {stage} THEN {cap}" for stage, cap in enumerate(WARMUP_DAILY_CAPS))
    return f"CASE {column} {stages} ELSE {WARMUP_DAILY_CAPS[-1]} END"


_CAP = _stage_cap_sql("m.warmup_stage")
_SENT = "COALESCE(u.sent, 0)"


# An identity's healthy mailboxes with their cap and sends on :day, as ShortlistRows
# (also what SQLite's writer keeps to make shortlists of: sqlite_mailboxes.py).
MAILBOXES_ON_DAY = (
    f"SELECT m.id, m.email, m.warmup_stage, m.cold_next_at, {_SENT}, {_CAP}, m.created_at"
    " FROM mailboxes m"
    " LEFT JOIN mailbox_usage u ON u.mailbox_id = m.id AND u.day = :day"
    f" WHERE m.identity_id = :identity AND m.health >= {HEALTH_EXCLUDE_BELOW}"
)


def shortlist_sql(pinned: str) -> str:
    """The picker's candidates in one query (SendRepo.send_context): the identity's
    healthy mailboxes that have cap left on :day, pinned ones first, then by the
    picker's own score (remaining cap x (warmup stage + 1)), oldest first on ties; at
    most :most, what the caller wants plus a bound on how many are pinned (counted by
    the caller: counting them in a subquery scanned the mailboxes a second time,
    ~100,000 CPU instructions of SQLite's per send). `pinned`: the SQL condition that
    mailbox `m` is pinned."""
    return (
        f"{MAILBOXES_ON_DAY} AND {_SENT} < {_CAP}"
        f" ORDER BY ({pinned}) DESC, ({_CAP} - {_SENT}) * (m.warmup_stage + 1) DESC,"
        " m.created_at, m.id"
        " LIMIT :most"
    )


ShortlistRow = tuple[str, str, int, int, int, int, int]


def candidates_of(rows: list[ShortlistRow]) -> list[Candidate]:
    """shortlist_sql's rows as the picker's candidates."""
    # The picker breaks ties by age: rank the shortlist by it (a few rows).
    by_age = sorted(rows, key=lambda row: (row[6], row[0]))
    rank = {row[0]: order for order, row in enumerate(by_age)}
    return [
        Candidate(mailbox_id, email, stage, cap - sent, False, rank[mailbox_id], cap, cold)
        for mailbox_id, email, stage, cold, sent, cap, _created_at in rows
    ]


def _usage_upsert(
    usage: str,
    owner: str,
    counter: str,
    zeros: tuple[str, ...] = (),
    *,
    keeps_mailboxes: bool = False,
) -> Sql:
    """Add :count to the day's counter unless the sum passes :cap; RETURNING tells.
    `zeros`: the row's other counters, which a new row starts at 0."""
    columns = ", ".join((owner, "day", counter, *zeros))
    values = ", ".join((":owner", ":day", ":count", *("0" for _ in zeros)))
    return Sql(
        f"INSERT INTO {usage} ({columns}) VALUES ({values})"
        f" ON CONFLICT ({owner}, day) DO UPDATE"
        f" SET {counter} = {usage}.{counter} + excluded.{counter}"
        f" WHERE {usage}.{counter} + excluded.{counter} <= :cap RETURNING {counter}",
        keeps_mailboxes=keeps_mailboxes,
    )


ADD_IDENTITY_USAGE = _usage_upsert("identity_usage", "identity_id", "used")
# add_mailbox_usage counts it in SQLite's mailbox book itself.
ADD_MAILBOX_USAGE = _usage_upsert(
    "mailbox_usage", "mailbox_id", "sent", ("delivered", "hits"), keeps_mailboxes=True
)

_MAILBOXES = table(MailboxRow)
_MAILBOX_USAGE = table(MailboxUsageRow)

_MAILBOXES_OF = (
    select(_MAILBOXES)
    .where(_MAILBOXES.c.identity_id.in_(bindparam("ids", expanding=True)))
    .order_by(_MAILBOXES.c.created_at, _MAILBOXES.c.id)
)
_MAILBOXES_SENT = select(_MAILBOX_USAGE.c.mailbox_id, _MAILBOX_USAGE.c.sent).where(
    _MAILBOX_USAGE.c.mailbox_id.in_(bindparam("ids", expanding=True)),
    _MAILBOX_USAGE.c.day == bindparam("on_day"),
)


class IdentityRepoSql(TxBase):
    async def add_identity(self, identity: Identity) -> None:
        self.session.add(
            IdentityRow(
                id=identity.id,
                org_id=identity.org_id,
                handle=identity.handle,
                tier=identity.tier.value,
                state=identity.state.value,
                created_at=identity.created_at,
                last_seq=identity.last_seq,
                timezone=identity.timezone,
                work_start_min=identity.work_start_min,
                work_end_min=identity.work_end_min,
            )
        )
        await self.session.flush()

    async def identity_by_handle(self, handle: str, *, lock: bool = False) -> Identity | None:
        query = _IDENTITY_BY_HANDLE_LOCKED if lock else _IDENTITY_BY_HANDLE
        row = await self.driver.one(query, {"handle": handle})
        return None if row is None else identity_of(row)

    async def identities_of(self, org_id: str, after_handle: str, limit: int) -> list[Identity]:
        rows = await self.driver.all(
            _IDENTITIES_OF, {"org": org_id, "after": after_handle, "limit": limit}
        )
        return [identity_of(row) for row in rows]

    async def set_working_hours(
        self, identity_id: str, timezone: str | None, start_min: int | None, end_min: int | None
    ) -> None:
        await self.session.execute(
            update(IdentityRow)
            .where(IdentityRow.id == identity_id)
            .values(timezone=timezone, work_start_min=start_min, work_end_min=end_min)
        )

    async def set_identity_state(self, identity_id: str, state: IdentityState) -> None:
        await self.session.execute(
            update(IdentityRow).where(IdentityRow.id == identity_id).values(state=state.value)
        )

    async def add_mailbox(self, mailbox: Mailbox) -> None:
        smtp = mailbox.smtp
        self.session.add(
            MailboxRow(
                id=mailbox.id,
                identity_id=mailbox.identity_id,
                email=mailbox.email,
                transport=mailbox.transport.value,
                smtp_host=smtp.host if smtp else None,
                smtp_port=smtp.port if smtp else None,
                smtp_username=smtp.username if smtp else None,
                smtp_password=smtp.password if smtp else None,
                smtp_tls=smtp.tls.value if smtp else None,
                warmup_stage=mailbox.warmup_stage,
                health=mailbox.health,
                created_at=mailbox.created_at,
                cold_next_at=mailbox.cold_next_at,
                qualifying_days=mailbox.qualifying_days,
                closed_through=mailbox.closed_through,
            )
        )
        await self.session.flush()

    async def mailbox_by_email(self, email: str) -> Mailbox | None:
        row = await self.session.scalar(select(MailboxRow).where(MailboxRow.email == email))
        return None if row is None else mailbox_from_row(row)

    async def mailboxes_of(self, identity_ids: list[str]) -> list[Mailbox]:
        rows = await self.session.execute(_MAILBOXES_OF, {"ids": identity_ids})
        return [mailbox_from_row(row) for row in rows]

    async def identity_used(self, identity_ids: list[str], day: str) -> dict[str, int]:
        rows = await self.driver.all(_IDENTITY_USED, {"ids": identity_ids, "day": day})
        return {identity_id: used for identity_id, used in rows}

    async def mailboxes_sent(self, mailbox_ids: list[str], day: str) -> dict[str, int]:
        rows = await self.session.execute(_MAILBOXES_SENT, {"ids": mailbox_ids, "on_day": day})
        return {mailbox_id: sent for mailbox_id, sent in rows}

    async def identity_used_days(
        self, identity_id: str, first_day: str, last_day: str
    ) -> dict[str, int]:
        u = IdentityUsageRow
        rows = await self.session.execute(
            select(u.day, u.used).where(
                u.identity_id == identity_id, u.day >= first_day, u.day <= last_day
            )
        )
        return {day: used for day, used in rows}

    async def mailboxes_sent_days(
        self, mailbox_ids: list[str], first_day: str, last_day: str
    ) -> dict[tuple[str, str], int]:
        if not mailbox_ids:
            return {}
        u = MailboxUsageRow
        rows = await self.session.execute(
            select(u.mailbox_id, u.day, u.sent).where(
                u.mailbox_id.in_(mailbox_ids), u.day >= first_day, u.day <= last_day
            )
        )
        return {(mailbox_id, day): sent for mailbox_id, day, sent in rows}

    async def add_identity_usage(self, identity_id: str, day: str, count: int, cap: int) -> bool:
        """Count `count` more sends today unless that passes `cap`: one conditional
        upsert, so the database refuses an oversend even if a caller miscounted."""
        return await self._add_usage(ADD_IDENTITY_USAGE, identity_id, day, count, cap)

    async def add_mailbox_usage(self, mailbox_id: str, day: str, count: int, cap: int) -> bool:
        counted = await self._add_usage(ADD_MAILBOX_USAGE, mailbox_id, day, count, cap)
        if counted and self.driver.mailboxes is not None:
            self.driver.mailboxes.count_sent(mailbox_id, day, count)
        return counted

    async def _add_usage(self, upsert: Sql, owner_id: str, day: str, count: int, cap: int) -> bool:
        if count > cap:
            return False
        params = {"owner": owner_id, "day": day, "count": count, "cap": cap}
        return await self.driver.one(upsert, params) is not None
