"""Operator commands behind `mailpool admin …` and `mailpool demo`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailpool_server.service.addresses import is_handle, normalize
from mailpool_server.service.clock import Clock, now_ms
from mailpool_server.service.errors import AdminError
from mailpool_server.service.identities import identities_today
from mailpool_server.service.ids import new_id
from mailpool_server.service.keys import (
    DISPLAY_PREFIX_LEN,
    KEY_PREFIX,
    display_prefix,
    generate_key,
    hash_key,
)
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
from mailpool_server.service.policy import (
    HEALTH_MAX,
    HEALTH_START,
    MAX_WARMUP_STAGE,
    Tier,
    tier_policy,
)
from mailpool_server.service.ports import Store, Tx

DEMO_ORG = "demo"
DEMO_HANDLE = "demo@mailpool.local"
SMTP_FORMS = "smtp://user:secret@host:587?tls=starttls|none, or smtps://user:secret@host:465"


def parse_smtp_url(url: str) -> SmtpSettings:
    """smtp://user:secret@host:587?tls=starttls|none, or smtps://… for implicit TLS."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        shown = re.sub(r"(//[^/:@]*):[^@/]*@", r"\1:***@", url)  # never echo a password
        raise AdminError(f"--smtp must look like {SMTP_FORMS}, not {shown!r}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"tls"})
    if unknown:
        raise AdminError(
            f"--smtp takes no {unknown[0]!r} option; the one option is tls=starttls|none"
        )
    if parts.scheme == "smtps":
        # Implicit TLS is what smtps:// means; tls=implicit only repeats it.
        if query.get("tls", ["implicit"]) != ["implicit"]:
            raise AdminError(
                "--smtp smtps:// is implicit TLS and takes no tls=; "
                "for STARTTLS or plain, use smtp://…?tls=starttls|none"
            )
        tls = SmtpTls.IMPLICIT
    else:
        value = query.get("tls", [SmtpTls.STARTTLS.value])
        if value not in ([SmtpTls.STARTTLS.value], [SmtpTls.NONE.value]):
            raise AdminError(
                f"--smtp tls={value[-1]!r} is not one of tls=starttls or tls=none "
                "(for implicit TLS, use smtps://)"
            )
        tls = SmtpTls(value[0])
    given = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    if given and not (given.isascii() and given.isdigit() and 1 <= int(given) <= 65535):
        raise AdminError(f"--smtp port {given!r} is not a port number (1-65535)")
    return SmtpSettings(
        host=parts.hostname,
        port=int(given) if given else (465 if tls is SmtpTls.IMPLICIT else 587),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def check_warmup_stage(stage: int) -> None:
    """The stages the policy table defines; later ones (reached by warming up) cap the
    same as the last, so nothing is gained by starting there."""
    if not 0 <= stage <= MAX_WARMUP_STAGE:
        raise AdminError(f"--warmup-stage is 0..{MAX_WARMUP_STAGE}")


_FULL_KEY = re.compile(re.escape(KEY_PREFIX) + "[0-9a-f]{40}")


def _by_prefix(keys: list[ApiKeyInfo], prefix: str, org_name: str) -> ApiKeyInfo:
    """The one key whose listed prefix starts with `prefix`; an active one before a
    revoked one, so that revoking twice says so rather than "no such key"."""
    if not prefix.startswith(KEY_PREFIX) or len(prefix) < len(KEY_PREFIX) + 4:
        raise AdminError(
            f"give the key ({KEY_PREFIX} + 40 hex digits) or its listed prefix "
            f"({KEY_PREFIX} + at least 4 hex digits)"
        )
    if len(prefix) > DISPLAY_PREFIX_LEN:
        raise AdminError(
            f"{prefix!r} is longer than a listed prefix and is not a whole key: give the "
            f"key ({KEY_PREFIX} + 40 hex digits) or its listed prefix ({KEY_PREFIX} + 8)"
        )
    matches = [k for k in keys if k.prefix.startswith(prefix)]
    active = [k for k in matches if k.revoked_at is None]
    candidates = active or matches
    if not candidates:
        raise AdminError(f"no key of {org_name!r} starts with {prefix!r}")
    if len(candidates) > 1:
        raise AdminError(
            f"{prefix!r} matches {len(candidates)} keys; give more of the prefix",
            [k.prefix for k in candidates],
        )
    return candidates[0]


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
            # Names are unique regardless of case, as handles are.
            existing = await tx.org_by_name(name)
            if existing is not None:
                raise AdminError(f"an org named {existing.name!r} exists already")
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

    async def revoke_key(self, org_name: str, key: str) -> ApiKeyInfo:
        """Revoke one of the org's keys: the whole key (found by its hash), or the start
        of its listed prefix when that names one key."""
        key = key.strip().rstrip("…")
        async with self._store.write() as tx:
            org = await self._org(tx, org_name)
            if _FULL_KEY.fullmatch(key):
                found = await tx.api_key_by_hash(hash_key(key))
                if found is None or found.org_id != org.id:
                    raise AdminError(f"{display_prefix(key)}… is not a key of {org.name!r}")
                target = found
            else:
                target = _by_prefix(await tx.api_keys_of(org.id), key, org.name)
            if target.revoked_at is not None:
                raise AdminError(f"key {target.prefix}… is already revoked")
            await tx.revoke_api_key(target.id, now_ms(self._clock))
        return target

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
        check_warmup_stage(warmup_stage)
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
        check_warmup_stage(warmup_stage)
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
