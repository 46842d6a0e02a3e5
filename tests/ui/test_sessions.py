"""The session table: idle expiry, a maximum age, a size bound, sign-out."""

from __future__ import annotations

from mailpool_server.rest.ui.sessions import Flash, SessionTable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_lives_while_it_is_used_and_ends_after_an_idle_period() -> None:
    clock = Clock()
    table = SessionTable(idle_s=60, max_age_s=3600, capacity=10, clock=clock)
    session = table.create("sk_live_" + "a" * 40)
    for _ in range(5):
        clock.now += 59
        assert table.get(session.id) is session
    clock.now += 61
    assert table.get(session.id) is None
    assert len(table) == 0


def test_a_session_ends_at_its_maximum_age_however_busy() -> None:
    clock = Clock()
    table = SessionTable(idle_s=60, max_age_s=300, capacity=10, clock=clock)
    session = table.create("sk_live_" + "a" * 40)
    while clock.now - 1000 <= 300:  # up to and including its maximum age
        assert table.get(session.id) is session
        clock.now += 50
    assert table.get(session.id) is None


def test_the_table_is_bounded_and_evicts_the_least_recently_used() -> None:
    clock = Clock()
    table = SessionTable(idle_s=600, max_age_s=3600, capacity=3, clock=clock)
    first, second, third = (table.create(f"sk_live_{n}") for n in range(3))
    clock.now += 1
    assert table.get(first.id) is first  # now the most recently used
    fourth = table.create("sk_live_3")
    assert len(table) == 3
    assert table.get(second.id) is None
    assert [table.get(s.id) for s in (first, third, fourth)] == [first, third, fourth]


def test_ids_and_tokens_are_unguessable_and_distinct() -> None:
    table = SessionTable()
    sessions = [table.create("sk_live_x") for _ in range(50)]
    values = {s.id for s in sessions} | {s.csrf for s in sessions}
    assert len(values) == 100
    assert min(len(v) for v in values) >= 43  # 32 random bytes, base64url


def test_sign_out_deletes_and_unknown_ids_are_nobody() -> None:
    table = SessionTable()
    session = table.create("sk_live_" + "b" * 40)
    assert session.key_prefix == "sk_live_bbbbbbbb…"
    table.delete(session.id)
    assert table.get(session.id) is None
    assert table.get("") is None and table.get(None) is None and table.get("nope") is None


def test_flashes_are_shown_once() -> None:
    session = SessionTable().create("sk_live_x")
    session.flashes.append(Flash("Archived."))
    assert session.take_flashes() == [Flash("Archived.")]
    assert session.take_flashes() == []
