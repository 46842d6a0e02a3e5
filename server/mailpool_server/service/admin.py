"""Operator commands behind `mailpool admin …` and `mailpool demo`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailpool_server.service.addresses import is_handle, normalize
from mailpool_server.service.clock import Clock, now_ms
from mailpool_server.service.errors import AdminError
from mailpool_server.service.identities import identities_today
from mailpool_server.service.ids import new_id
from mailpool_server.service.keys import display_prefix, generate_key, hash_key
from mailpool_server.service.models import (
    ApiKeyInfo,
    Identity,
    IdentityState,
    IdentityToday,
    Mailbox,
    Org,
    SmtpSettings,
    SmtpTls,
    Transport,
)
from mailpool_server.service.policy import HEALTH_MAX, HEALTH_START, Tier, tier_policy
from mailpool_server.service.ports import Store, Tx

DEMO_ORG = "demo"
DEMO_HANDLE = "demo@mailpool.local"


def parse_smtp_url(url: str) -> SmtpSettings:
    """smtp://user:secret@host:587?tls=starttls|none, or smtps://… for implicit TLS."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise AdminError(f"--smtp must look like smtp://user:secret@host:port, not {url!r}")
    query = parse_qs(parts.query)
    default_tls = SmtpTls.IMPLICIT if parts.scheme == "smtps" else SmtpTls.STARTTLS
    try:
        tls = SmtpTls(query.get("tls", [default_tls.value])[0])
        port = parts.port or (465 if tls is SmtpTls.IMPLICIT else 587)
    except ValueError as error:
        raise AdminError(f"--smtp: {error}") from None
    return SmtpSettings(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


@dataclass(frozen=True)
class DemoSetup:
    org: Org
    key: str
    identity: IdentityToday


class Admin:
    def __init__(self, store: Store, clock: Clock, *, mailbox_domain: str) -> None:
        self._store = store
        self._clock = clock
        self._mailbox_domain = mailbox_domain

    async def _org(self, tx: Tx, name: str) -> Org:
        org = await tx.org_by_name(name)
        if org is None:
            raise AdminError(f"no org named {name!r}")
        return org

    async def _identity(self, tx: Tx, handle: str) -> Identity:
        identity = await tx.identity_by_handle(normalize(handle))
        if identity is None:
            raise AdminError(f"no identity with handle {handle!r}")
        return identity

    async def create_org(self, name: str) -> Org:
        if not name.strip():
            raise AdminError("an org needs a name")
        async with self._store.write() as tx:
            if await tx.org_by_name(name) is not None:
                raise AdminError(f"an org named {name!r} exists already")
            org = Org(id=new_id("org"), name=name, created_at=now_ms(self._clock))
            await tx.add_org(org)
        return org

    async def create_key(self, org_name: str) -> str:
        """A new key for the org; the only time the key itself is ever seen."""
        key = generate_key()
        async with self._store.write() as tx:
            org = await self._org(tx, org_name)
            await tx.add_api_key(
                ApiKeyInfo(
                    id=new_id("key"),
                    org_id=org.id,
                    prefix=display_prefix(key),
                    key_hash=hash_key(key),
                    created_at=now_ms(self._clock),
                )
            )
        return key

    async def list_keys(self, org_name: str) -> list[ApiKeyInfo]:
        async with self._store.read() as tx:
            return await tx.api_keys_of((await self._org(tx, org_name)).id)

    async def revoke_key(self, org_name: str, prefix: str) -> ApiKeyInfo:
        """Revoke the one active key whose listed prefix starts with `prefix`."""
        prefix = prefix.rstrip("…")
        if len(prefix) < len("sk_live_") + 4:
            raise AdminError("give at least sk_live_ and 4 hex digits of the key")
        async with self._store.write() as tx:
            keys = await tx.api_keys_of((await self._org(tx, org_name)).id)
            matches = [k for k in keys if k.prefix.startswith(prefix) and k.revoked_at is None]
            if not matches:
                raise AdminError(f"no active key of {org_name!r} starts with {prefix!r}")
            if len(matches) > 1:
                raise AdminError(
                    f"{prefix!r} matches {len(matches)} keys; give more of the prefix",
                    [k.prefix for k in matches],
                )
            await tx.revoke_api_key(matches[0].id, now_ms(self._clock))
        return matches[0]

    async def create_identity(
        self,
        org_name: str,
        handle: str,
        tier: Tier,
        state: IdentityState = IdentityState.ACTIVE,
        warmup_stage: int = 0,
    ) -> IdentityToday:
        """Create an identity and provision its tier's mailboxes (maildir transport)."""
        handle = normalize(handle)
        if not is_handle(handle):
            raise AdminError(f"handle {handle!r} must look like an email address")
        if warmup_stage < 0:
            raise AdminError("--warmup-stage is 0 or more")
        at = now_ms(self._clock)
        async with self._store.write() as tx:
            org = await self._org(tx, org_name)
            if await tx.identity_by_handle(handle) is not None:
                raise AdminError(f"an identity with handle {handle!r} exists already")
            identity = Identity(
                id=new_id("idn"),
                org_id=org.id,
                handle=handle,
                tier=tier,
                state=state,
                created_at=at,
            )
            await tx.add_identity(identity)
            local = handle.partition("@")[0]
            for number in range(1, tier_policy(tier).mailboxes + 1):
                await tx.add_mailbox(
                    Mailbox(
                        id=new_id("acc"),
                        identity_id=identity.id,
                        email=f"{local}.{number}@{self._mailbox_domain}",
                        transport=Transport.MAILDIR,
                        warmup_stage=warmup_stage,
                        health=HEALTH_START,
                        created_at=at + number,  # keeps provisioning order stable
                    )
                )
            [today] = await identities_today(tx, [identity], at)
        return today

    async def set_identity_state(self, handle: str, state: IdentityState) -> None:
        async with self._store.write() as tx:
            identity = await self._identity(tx, handle)
            await tx.set_identity_state(identity.id, state)

    async def set_working_hours(
        self, handle: str, timezone: str | None, start: str | None, end: str | None
    ) -> None:
        """Cold sends only inside [start, end) local time ("09:00", "17:30"); all None
        clears the window."""
        window = (timezone, start, end)
        if any(part is None for part in window) and any(part is not None for part in window):
            raise AdminError("give --tz, --from and --to together (or none to clear)")
        minutes: list[int | None] = [None, None]
        if timezone is not None:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise AdminError(f"unknown time zone {timezone!r}") from None
            for index, text in enumerate((start, end)):
                hour, _, minute = (text or "").partition(":")
                if not (
                    hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60
                ):
                    raise AdminError(f"{text!r} is not a time like 09:00")
                minutes[index] = int(hour) * 60 + int(minute)
        async with self._store.write() as tx:
            identity = await self._identity(tx, handle)
            await tx.set_working_hours(identity.id, timezone, minutes[0], minutes[1])

    async def show_identity(self, handle: str) -> IdentityToday:
        async with self._store.read() as tx:
            identity = await self._identity(tx, handle)
            [today] = await identities_today(tx, [identity], now_ms(self._clock))
        return today

    async def add_mailbox(
        self,
        handle: str,
        email: str,
        *,
        smtp_url: str | None = None,
        warmup_stage: int = 0,
        health: int = HEALTH_START,
    ) -> Mailbox:
        email = normalize(email)
        if not is_handle(email):
            raise AdminError(f"--email {email!r} is not an email address")
        if not 0 <= health <= HEALTH_MAX:
            raise AdminError(f"--health is 0..{HEALTH_MAX}")
        if warmup_stage < 0:
            raise AdminError("--warmup-stage is 0 or more")
        smtp = parse_smtp_url(smtp_url) if smtp_url else None
        async with self._store.write() as tx:
            identity = await self._identity(tx, handle)
            if await tx.mailbox_by_email(email) is not None:
                raise AdminError(f"a mailbox {email!r} exists already")
            mailbox = Mailbox(
                id=new_id("acc"),
                identity_id=identity.id,
                email=email,
                transport=Transport.SMTP if smtp else Transport.MAILDIR,
                warmup_stage=warmup_stage,
                health=health,
                created_at=now_ms(self._clock),
                smtp=smtp,
            )
            await tx.add_mailbox(mailbox)
        return mailbox

    async def demo(self) -> DemoSetup:
        """A demo org, a fresh key and an active starter identity. Safe to run again:
        the org and identity are reused; keys are shown once, so each run makes one."""
        async with self._store.read() as tx:
            org = await tx.org_by_name(DEMO_ORG)
            identity = await tx.identity_by_handle(DEMO_HANDLE)
        if org is None:
            org = await self.create_org(DEMO_ORG)
        if identity is None:
            await self.create_identity(DEMO_ORG, DEMO_HANDLE, Tier.STARTER, warmup_stage=5)
        key = await self.create_key(DEMO_ORG)
        return DemoSetup(org=org, key=key, identity=await self.show_identity(DEMO_HANDLE))
