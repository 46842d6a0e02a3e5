"""The one table of mailpool's numbers: tiers, warmup caps and health rules."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Tier(enum.StrEnum):
    STARTER = "starter"
    GROWTH = "growth"
    SCALE = "scale"


@dataclass(frozen=True)
class TierPolicy:
    daily_cap: int
    mailboxes: int


TIERS: dict[Tier, TierPolicy] = {
    Tier.STARTER: TierPolicy(daily_cap=150, mailboxes=3),
    Tier.GROWTH: TierPolicy(daily_cap=500, mailboxes=10),
    Tier.SCALE: TierPolicy(daily_cap=2000, mailboxes=40),
}

# Per-mailbox daily cap by warmup stage; the last entry holds for every later stage.
WARMUP_DAILY_CAPS: tuple[int, ...] = (5, 10, 20, 30, 40, 50)
MAX_WARMUP_STAGE = len(WARMUP_DAILY_CAPS) - 1
WARMUP_DAYS_PER_STAGE = 3
WARMUP_MIN_HEALTH = 50

HEALTH_START = 100
HEALTH_MAX = 100
# Below this a mailbox is excluded from picking and counts as dead.
HEALTH_EXCLUDE_BELOW = 20
HEALTH_CLEAN_DAY_BONUS = 1


class HealthHit(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SPAM_COMPLAINT = "spam_complaint"
    AUTH_FAILURE = "auth_failure"
    SOFT_BOUNCE = "soft_bounce"


HEALTH_PENALTIES: dict[HealthHit, int] = {
    HealthHit.HARD_BOUNCE: 10,
    HealthHit.SPAM_COMPLAINT: 20,
    HealthHit.AUTH_FAILURE: 15,
    HealthHit.SOFT_BOUNCE: 2,
}


def tier_policy(tier: Tier) -> TierPolicy:
    return TIERS[tier]


def mailbox_daily_cap(warmup_stage: int) -> int:
    """The per-mailbox cap a warmup stage allows (stage 5 and above: 50)."""
    if warmup_stage < 0:
        raise ValueError("warmup stage is never negative")
    return WARMUP_DAILY_CAPS[min(warmup_stage, MAX_WARMUP_STAGE)]


def is_excluded(health: int) -> bool:
    """A mailbox below the health threshold is never picked."""
    return health < HEALTH_EXCLUDE_BELOW


def apply_health_hit(health: int, hit: HealthHit) -> int:
    return max(0, health - HEALTH_PENALTIES[hit])


@dataclass(frozen=True)
class WarmupState:
    stage: int
    qualifying_days: int
    health: int


def close_sending_day(state: WarmupState, *, sent: bool, clean: bool) -> WarmupState:
    """Apply the end of one UTC day to a mailbox.

    A clean sending day (it sent, nothing hurt its health) earns +1 health. A day on
    which it sent with health at or above 50 counts towards warmup, and every third
    such day moves it up one stage.
    """
    health = state.health
    if sent and clean:
        health = min(HEALTH_MAX, health + HEALTH_CLEAN_DAY_BONUS)
    stage, days = state.stage, state.qualifying_days
    if sent and health >= WARMUP_MIN_HEALTH:
        days += 1
        if days >= WARMUP_DAYS_PER_STAGE:
            stage, days = stage + 1, 0
    return WarmupState(stage=stage, qualifying_days=days, health=health)
