"""API key authentication and org scoping."""

from __future__ import annotations

from mailpool_server.service.addresses import normalize
from mailpool_server.service.clock import Clock, now_ms
from mailpool_server.service.errors import ApiKeyInvalid, IdentityNotFound
from mailpool_server.service.keys import hash_key, parse_authorization
from mailpool_server.service.models import Identity
from mailpool_server.service.ports import IdentityRepo, Store


class Authenticator:
    """Turns an Authorization value into the org it acts for."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def org_for(self, authorization: str | None) -> str:
        """The org id of a valid key; raises the contract's 401 errors otherwise.

        No cache: a revoked key stops working on the next request, on every replica.
        """
        key = parse_authorization(authorization)
        async with self._store.lookup() as tx:
            record = await tx.api_key_by_hash(hash_key(key))
        if record is None or not record.usable_at(now_ms(self._clock)):
            raise ApiKeyInvalid()
        return record.org_id


async def identity_in_org(
    tx: IdentityRepo, org_id: str, handle: str, *, lock: bool = False
) -> Identity:
    """The identity with this handle if the org owns it. Another org's identity is
    reported exactly like a missing one, so handles do not leak across orgs. With lock,
    its row is held until commit."""
    return owned_by(await tx.identity_by_handle(normalize(handle), lock=lock), org_id, handle)


def owned_by(identity: Identity | None, org_id: str, handle: str) -> Identity:
    """The identity found by `handle` if the org owns it (see identity_in_org)."""
    if identity is None or identity.org_id != org_id:
        raise IdentityNotFound(handle)
    return identity
