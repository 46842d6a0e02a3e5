"""Helpers for delivery tests."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from mailpool_server.app import App


async def deliver_all(app: App) -> int:
    """Run the dispatcher until nothing due is left; how many rows it handled."""
    total = 0
    while claimed := await app.dispatcher.run_once():
        total += claimed
    return total


def maildir_messages(app: App) -> list[EmailMessage]:
    root = app.settings.maildir()
    files = sorted(root.glob("*/new/*"))
    return [_read(path) for path in files]


def _read(path: Path) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    return message


async def events_of(app: App, handle: str, since: int = 0) -> list[tuple[str, dict[str, object]]]:
    async with app.store.read() as tx:
        identity = await tx.identity_by_handle(handle)
        assert identity is not None
        return [(e.type, e.data) for e in await tx.events_after(identity, since, (), 10_000)]
