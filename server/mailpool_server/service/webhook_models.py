"""The webhook endpoint of an org: where the relay POSTs its events, and how it stands."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EndpointStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class PauseReason(enum.StrEnum):
    """Why an endpoint is paused."""

    GONE = "gone"  # it answered 410 Gone
    FAILURES = "failures"  # consecutive deliveries failed (every attempt of each)
    OPERATOR = "operator"  # `mailpool admin webhook disable`


@dataclass(frozen=True)
class WebhookEndpoint:
    """One org's endpoint. `secret` signs deliveries and is shown only when made;
    `failed_deliveries` counts consecutive events whose every attempt failed;
    `lease_owner`/`lease_until` name the relay that delivers it now (until, Unix ms)."""

    id: str
    org_id: str
    url: str
    secret: str
    status: EndpointStatus
    created_at: int
    paused_reason: PauseReason | None = None
    paused_at: int | None = None
    failed_deliveries: int = 0
    lease_owner: str | None = None
    lease_until: int | None = None
