"""Use cases on the in-memory store: no database, no network, time from the FakeClock
(08:00 UTC on 2026-04-27, from the root conftest)."""

from __future__ import annotations

import pytest

from mailpool_server.service.admin import Admin
from mailpool_server.service.clock import FakeClock
from tests.memory_store import MemoryStore
from tests.service.fakes import RecordingListener
from tests.service.tenants import Tenant, make_tenant

MAILBOX_DOMAIN = "mailboxes.mailpool.test"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def listener(store: MemoryStore) -> RecordingListener:
    return RecordingListener(store)


@pytest.fixture
def admin(store: MemoryStore, clock: FakeClock) -> Admin:
    return Admin(store, clock, mailbox_domain=MAILBOX_DOMAIN)


@pytest.fixture
async def alice(admin: Admin) -> Tenant:
    return await make_tenant(admin, "acme", "alice@acme.test")
