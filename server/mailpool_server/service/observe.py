"""What the use cases report for an operator's metrics: a port, so that service/ knows
no metrics library. The composition root passes an implementation (metrics.py, on
prometheus_client) when metrics are on; NO_OBSERVER otherwise."""

from __future__ import annotations

from typing import Protocol

from mailpool_server.service.models import SendResult
from mailpool_server.service.policy import Tier


class Observer(Protocol):
    def send_decided(self, tier: Tier, result: SendResult) -> None:
        """A send was decided (queued, or wholly rejected): its per-recipient result."""

    def send_replayed(self) -> None:
        """A send was answered from its idempotency record."""

    def delivery(self, transport: str, outcome: str, seconds: float) -> None:
        """The dispatcher finished one attempt: outcome is sent, retry or failed;
        seconds is what the transport took."""

    def inbound(self, kind: str) -> None:
        """An inbound message was stored: reply, new, bounce_hard or bounce_soft."""


class NoObserver:
    def send_decided(self, tier: Tier, result: SendResult) -> None:
        pass

    def send_replayed(self) -> None:
        pass

    def delivery(self, transport: str, outcome: str, seconds: float) -> None:
        pass

    def inbound(self, kind: str) -> None:
        pass


NO_OBSERVER: Observer = NoObserver()
