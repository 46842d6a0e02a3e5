"""Helpers for delivery tests."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from mailpool_server.app import App
from mailpool_server.rest import render
from mailpool_server.rpc import encode_events


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


async def events_of(app: App, handle: str, since: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of each event in the log, data as the HTTP contract shows it (without
    the envelope's identity and convId): read from the store, through the same encoding
    every delivery path uses."""
    async with app.store.read() as tx:
        identity = await tx.identity_by_handle(handle)
        assert identity is not None
        events = await tx.events_after(identity, since, (), 10_000)
    rendered = [render.event(encode_events.event(e)) for e in events]
    return [
        (body["type"], {k: v for k, v in body["data"].items() if k not in ("identity", "convId")})
        for body in rendered
    ]
