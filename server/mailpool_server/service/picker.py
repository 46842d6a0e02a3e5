"""Recipient classification and the mailbox picker: pure functions of their inputs."""

from __future__ import annotations

from dataclasses import dataclass

from mailpool_server.service.models import Affinity, Contact, SendClass

# A reply within the recipient's last this-many outbound messages makes them warm.
WARM_WINDOW = 3


def classify(contact: Contact | None) -> SendClass:
    """cold_first_contact: never mailed; warm: replied within their last 3 outbound
    messages (a reply followed by at most 2 more outbounds); else cold_followup."""
    if contact is None or contact.outbound_count == 0:
        return SendClass.COLD_FIRST_CONTACT
    if contact.last_reply_at is not None and contact.outbounds_since_reply < WARM_WINDOW:
        return SendClass.WARM
    return SendClass.COLD_FOLLOWUP


@dataclass
class Candidate:
    """A mailbox as the picker sees it during one send (remaining is decremented as
    recipients are placed)."""

    mailbox_id: str
    email: str
    warmup_stage: int
    remaining: int
    excluded: bool
    order: int
    # What the send writes back: its cap counter's ceiling, and its cold-send slot.
    daily_cap: int = 0
    cold_next_at: int = 0

    @property
    def pickable(self) -> bool:
        return self.remaining > 0 and not self.excluded


def pick(candidates: list[Candidate], pinned_id: str | None) -> tuple[Candidate, Affinity] | None:
    """The pinned mailbox if it can still send; otherwise the pickable mailbox with the
    highest remaining-cap x (warmup stage + 1), oldest first on ties. None when no
    mailbox can take the recipient (no_accounts)."""
    pickable = [c for c in candidates if c.pickable]
    if pinned_id is not None:
        for candidate in pickable:
            if candidate.mailbox_id == pinned_id:
                return candidate, Affinity.EXISTING
    if not pickable:
        return None
    best = max(pickable, key=lambda c: (_score(c), -c.order))
    return best, Affinity.NEW if pinned_id is None else Affinity.REASSIGNED


def shortlist(candidates: list[Candidate], want: int, pinned: list[str]) -> list[Candidate]:
    """The candidates placing `want` recipients can take from: the pickable pinned
    ones, then the best `want` others in `pick`'s order (the store runs this as its
    query: SendRepo.send_context). Before each of the `want` picks, one of
    the best `want` is still unpicked, as good as it started, so at least as good as
    anything left out."""
    able = sorted(
        (c for c in candidates if c.pickable),
        key=lambda c: (c.mailbox_id not in pinned, -_score(c), c.order),
    )
    return able[: want + len(pinned)]


def _score(candidate: Candidate) -> int:
    return candidate.remaining * (candidate.warmup_stage + 1)
