"""Fakes for use-case tests: a listener that checks it is called after the commit, a
scripted transport, and a short way to let other tasks reach their wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from mailpool_server.service.outbound import OutgoingMessage
from tests.memory_store import MemoryStore


@dataclass(frozen=True)
class Announcement:
    identity_id: str
    head_seq: int
    committed_head: int  # the identity's head in the store when the listener was called


class RecordingListener:
    """An EventListener that notes each call together with what the store had
    committed at that moment: announcing before the commit would show a smaller head."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.announced: list[Announcement] = []

    def events_committed(self, identity_id: str, head_seq: int) -> None:
        committed = self._store.committed.identities[identity_id].last_seq
        self.announced.append(Announcement(identity_id, head_seq, committed))

    def take(self) -> list[tuple[str, int]]:
        """(identity id, head) of the calls since the last take; each must have come
        after its commit."""
        calls, self.announced = self.announced, []
        assert all(a.committed_head == a.head_seq for a in calls), calls
        return [(a.identity_id, a.head_seq) for a in calls]


Outcome = Exception | None


@dataclass
class ScriptedTransport:
    """A MessageTransport that fails as scripted per recipient (one outcome per call,
    None = accepted; once the script runs out, every call is accepted)."""

    script: dict[str, list[Outcome]] = field(default_factory=dict)
    calls: list[OutgoingMessage] = field(default_factory=list)
    accepted: list[OutgoingMessage] = field(default_factory=list)
    # The next call for a recipient waits for its gate before its outcome (a stalled
    # delivery); later calls do not.
    hold: dict[str, asyncio.Event] = field(default_factory=dict)

    async def deliver(self, message: OutgoingMessage) -> None:
        self.calls.append(message)
        outcomes = self.script.get(message.recipient, [])
        outcome = outcomes.pop(0) if outcomes else None  # the call's outcome, fixed now
        gate = self.hold.pop(message.recipient, None)
        if gate is not None:
            await gate.wait()
        if outcome is not None:
            raise outcome
        self.accepted.append(message)


async def settle(until: Callable[[], bool], *, rounds: int = 1000) -> None:
    """Let other tasks run until `until()` holds. Everything here is in memory, so a
    task reaches its next wait within a few loop iterations; no time passes."""
    for _ in range(rounds):
        if until():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def let_others_run(rounds: int = 20) -> None:
    """Give every ready task some loop iterations to reach its next wait (before a test
    asserts that something is still waiting)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
