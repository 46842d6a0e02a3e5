from __future__ import annotations

import copy

from hypothesis import given
from hypothesis import strategies as st

from mailpool_server.service.models import Affinity, Contact, SendClass
from mailpool_server.service.picker import Candidate, classify, pick, shortlist


def candidates(*specs: tuple[int, int, bool]) -> list[Candidate]:
    return [
        Candidate(f"acc_{n}", f"m{n}@x.example", stage, remaining, excluded, n)
        for n, (stage, remaining, excluded) in enumerate(specs)
    ]


def test_classification() -> None:
    assert classify(None) is SendClass.COLD_FIRST_CONTACT
    contact = Contact("i", "a@example.com", outbound_count=2, outbounds_since_reply=2)
    assert classify(contact) is SendClass.COLD_FOLLOWUP
    replied = Contact(
        "i", "a@example.com", outbound_count=5, outbounds_since_reply=2, last_reply_at=1
    )
    assert classify(replied) is SendClass.WARM
    stale = Contact(
        "i", "a@example.com", outbound_count=5, outbounds_since_reply=3, last_reply_at=1
    )
    assert classify(stale) is SendClass.COLD_FOLLOWUP


def test_pinned_mailbox_wins_while_it_can_send() -> None:
    pool = candidates((0, 1, False), (5, 50, False))
    assert pick(pool, "acc_0") == (pool[0], Affinity.EXISTING)


def test_capped_or_unhealthy_pin_is_reassigned() -> None:
    pool = candidates((5, 0, False), (5, 10, True), (1, 3, False))
    assert pick(pool, "acc_0") == (pool[2], Affinity.REASSIGNED)
    assert pick(pool, "acc_1") == (pool[2], Affinity.REASSIGNED)


def test_weighting_prefers_remaining_cap_times_stage() -> None:
    pool = candidates((0, 5, False), (2, 10, False), (5, 4, False))
    # weights: 5*1=5, 10*3=30, 4*6=24
    assert pick(pool, None) == (pool[1], Affinity.NEW)


def test_ties_go_to_the_oldest_and_nothing_left_is_none() -> None:
    pool = candidates((5, 50, False), (5, 50, False))
    assert pick(pool, None) == (pool[0], Affinity.NEW)
    assert pick(candidates((5, 0, False), (5, 50, True)), None) is None


def _place(pool: list[Candidate], pins: list[str | None]) -> list[tuple[str, Affinity] | None]:
    """Pick for each recipient in turn, as a send does (a pick uses one of the cap)."""
    placed: list[tuple[str, Affinity] | None] = []
    for pin in pins:
        choice = pick(pool, pin)
        if choice is not None:
            choice[0].remaining -= 1
        placed.append(None if choice is None else (choice[0].mailbox_id, choice[1]))
    return placed


@given(
    specs=st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 6), st.booleans()), min_size=0, max_size=12
    ),
    pins=st.lists(st.one_of(st.none(), st.integers(0, 13)), min_size=1, max_size=6),
)
def test_the_shortlist_places_recipients_as_the_whole_pool_would(
    specs: list[tuple[int, int, bool]], pins: list[int | None]
) -> None:
    pool = candidates(*specs)
    pinned = [None if n is None else f"acc_{n}" for n in pins]
    wanted = sorted({p for p in pinned if p is not None})
    short = shortlist(copy.deepcopy(pool), len(pins), wanted)
    assert len(short) <= len(pins) + len(wanted)
    assert _place(copy.deepcopy(short), pinned) == _place(copy.deepcopy(pool), pinned)
