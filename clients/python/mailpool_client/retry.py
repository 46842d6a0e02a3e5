"""Retry and reconnect policies: exponential backoff with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import grpc

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# A stream only reads, so it may also retry what a broken connection or a stopping server
# surfaces as (an RST_STREAM is INTERNAL, a removed stream UNKNOWN, a server whose grace
# period ran out cancels its calls: CANCELLED; a cancel of our own is asyncio's
# CancelledError instead) without any risk of a double effect.
RECONNECTABLE = RETRYABLE | {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
}


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is retried.

    Attempt n (n >= 1) that fails with a code in `retry_on` is followed, after a pause drawn
    uniformly from [0, min(max_backoff, initial_backoff * multiplier ** (n - 1))] ("full
    jitter", so that many clients that failed together do not retry together), by attempt
    n + 1, until `max_attempts` attempts were made or the next attempt could not start
    before `deadline` seconds after the first. A `RetryInfo` from the server lengthens the
    pause to at least its delay. Each attempt gets at most `attempt_timeout` seconds (and
    never more than what is left of the deadline); None means no limit.

    For streams, `max_attempts` counts consecutive failed connections (an event or a
    heartbeat received resets it) and None retries forever.
    """

    max_attempts: int | None = 5
    deadline: float | None = 30.0
    attempt_timeout: float | None = 10.0
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    retry_on: frozenset[grpc.StatusCode] = RETRYABLE
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """The pause after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return self.rng.uniform(0.0, ceiling)

    def gives_up_after(self, attempt: int) -> bool:
        return self.max_attempts is not None and attempt >= self.max_attempts


#: Unary calls: 5 attempts within 30 s, 10 s each.
DEFAULT_RETRY = RetryPolicy()

#: Streams: reconnect forever, pauses growing to 10 s.
DEFAULT_RECONNECT = RetryPolicy(
    max_attempts=None,
    deadline=None,
    attempt_timeout=None,
    initial_backoff=0.2,
    max_backoff=10.0,
    retry_on=RECONNECTABLE,
)
