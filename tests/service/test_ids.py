"""Random ids: the contract's formats, never handed out twice, not even across a fork."""

from __future__ import annotations

import os
import re

from ulid import ULID

from mailpool_server.service.ids import CONV_ID, new_event_id, new_id, random_hex


def test_ids_have_the_contracts_forms_and_never_repeat() -> None:
    ids = [new_id("conv") for _ in range(20_000)]  # several of the pool's draws
    assert all(CONV_ID.match(i) and len(i) == len("conv_") + 16 for i in ids)
    assert len(set(ids)) == len(ids)
    assert re.fullmatch(r"[0-9a-f]{24}", random_hex(12))


def test_event_ids_carry_their_time_and_sort_by_it() -> None:
    at = 1_796_050_148_116
    later = [new_event_id(at + n) for n in range(3)]
    assert [ULID.from_str(e.removeprefix("evt_")).milliseconds for e in later] == [
        at,
        at + 1,
        at + 2,
    ]
    assert sorted(later) == later
    assert new_event_id(at) != new_event_id(at)


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_id("warm")  # the parent holds a draw with bytes left
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, new_id("c").encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        childs = pipe.read()
    assert childs != new_id("c")
