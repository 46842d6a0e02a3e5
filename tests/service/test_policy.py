from __future__ import annotations

import pytest

from mailpool_server.service.policy import (
    TIERS,
    HealthHit,
    Tier,
    WarmupState,
    apply_health_hit,
    close_sending_day,
    is_excluded,
    mailbox_daily_cap,
)


def test_tier_table_matches_contract() -> None:
    assert {t: (p.daily_cap, p.mailboxes) for t, p in TIERS.items()} == {
        Tier.STARTER: (150, 3),
        Tier.GROWTH: (500, 10),
        Tier.SCALE: (2000, 40),
    }


@pytest.mark.parametrize(
    ("stage", "cap"), [(0, 5), (1, 10), (2, 20), (3, 30), (4, 40), (5, 50), (9, 50)]
)
def test_mailbox_cap_by_warmup_stage(stage: int, cap: int) -> None:
    assert mailbox_daily_cap(stage) == cap


def test_negative_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="never negative"):
        mailbox_daily_cap(-1)


@pytest.mark.parametrize(
    ("hit", "health"),
    [
        (HealthHit.HARD_BOUNCE, 90),
        (HealthHit.SPAM_COMPLAINT, 80),
        (HealthHit.AUTH_FAILURE, 85),
        (HealthHit.SOFT_BOUNCE, 98),
    ],
)
def test_health_penalties(hit: HealthHit, health: int) -> None:
    assert apply_health_hit(100, hit) == health


def test_health_never_below_zero_and_threshold_is_20() -> None:
    assert apply_health_hit(5, HealthHit.SPAM_COMPLAINT) == 0
    assert is_excluded(19)
    assert not is_excluded(20)


def test_three_sending_days_move_a_stage() -> None:
    state = WarmupState(stage=0, qualifying_days=0, health=100)
    for _ in range(2):
        state = close_sending_day(state, sent=True, clean=True)
        assert state.stage == 0
    state = close_sending_day(state, sent=True, clean=True)
    assert (state.stage, state.qualifying_days) == (1, 0)


def test_days_without_sending_or_with_low_health_do_not_count() -> None:
    state = WarmupState(stage=2, qualifying_days=2, health=100)
    assert close_sending_day(state, sent=False, clean=True) == state
    sick = WarmupState(stage=2, qualifying_days=2, health=40)
    assert close_sending_day(sick, sent=True, clean=False).stage == 2


def test_clean_days_recover_health_up_to_100() -> None:
    assert close_sending_day(WarmupState(0, 0, 70), sent=True, clean=True).health == 71
    assert close_sending_day(WarmupState(0, 0, 100), sent=True, clean=True).health == 100
    assert close_sending_day(WarmupState(0, 0, 70), sent=True, clean=False).health == 70
