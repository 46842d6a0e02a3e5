"""One line describing an event, from its contract envelope: what `mailpool tail` prints
and what the dashboard's live tail shows, so the two read alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUMMARY_WIDTH = 120


def duration(ms: int) -> str:
    """4 h as "4h", 90 min as "1.5h": a wait, as people say it."""
    seconds = ms / 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}".replace(".0" + unit, unit)
    return f"{seconds:.0f}s"


def summary(envelope: Mapping[str, Any]) -> str:
    """A short description of an event from its contract envelope."""
    data = envelope["data"]
    kind = envelope["type"]
    if kind == "email.queued":
        text = (
            f"to {data['recipient']} ({data['sendClass']}) via {data['account']['email']}, "
            f"dispatch {data['dispatchAtIso']}"
        )
    elif kind == "email.sent":
        message = data["message"]
        text = f"{message['from']} → {', '.join(message['to'])}: {message['subject']!r}"
    elif kind == "email.cancelled":
        text = f"{data['recipient']}: {data['reason']}"
    elif kind == "email.send_failed_permanently":
        text = f"{data['recipient']}: {data['error']} ({data['attempts']} attempts)"
    elif kind in ("email.received", "email.replied"):
        message = data["message"]
        text = f"from {message['from']}: {message['subject']!r}"
    elif kind == "email.bounced":
        text = f"{data['recipient']}: {data['kind']} {data['statusCode']} {data['diagnostic']}"
    elif kind == "email.no_reply":
        text = f"no reply after {duration(data['waitedMs'])}"
    elif kind == "mailbox.replaced":
        new = data["newAccount"]["email"] if data["newAccount"] else "no healthy peer"
        text = f"{data['oldAccount']['email']} → {new}, {data['repinned']} recipients repinned"
    else:
        text = ""
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_WIDTH else text[: SUMMARY_WIDTH - 1] + "…"
