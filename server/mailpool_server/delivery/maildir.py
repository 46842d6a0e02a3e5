"""The embedded default transport: one RFC 5322 file per message in a Maildir, one
Maildir per sending mailbox, readable by any mail client (mutt -f, Thunderbird, …)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from mailpool_server.delivery.mime import build
from mailpool_server.service.clock import Clock, now_ms
from mailpool_server.service.outbound import OutgoingMessage, TransientDeliveryError


class MaildirTransport:
    def __init__(self, root: Path, clock: Clock) -> None:
        self._root = root
        self._clock = clock

    def folder(self, mailbox_email: str) -> Path:
        return self._root / mailbox_email

    async def deliver(self, message: OutgoingMessage) -> None:
        data = build(message, now_ms(self._clock)).as_bytes()
        try:
            await asyncio.to_thread(
                self._write, self.folder(message.mailbox.email), message.pending_id, data
            )
        except OSError as error:
            raise TransientDeliveryError(f"maildir: {error}") from error

    @staticmethod
    def _write(folder: Path, pending_id: str, data: bytes) -> None:
        # The file name is the queued send's id: a re-delivery after a crash finds the
        # message already there and does not write it twice.
        name = f"{pending_id}.mailpool"
        for sub in ("tmp", "new", "cur"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        if (folder / "new" / name).exists() or any((folder / "cur").glob(f"{name}:*")):
            return
        temporary = folder / "tmp" / name
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temporary, folder / "new" / name)  # atomic: readers never see half a file
