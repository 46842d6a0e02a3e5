"""The event loop every mailpool process runs on.

uvloop by default: the same asyncio API on libuv, with its socket, timer and callback
machinery in C. A send's server CPU fell by 5-15% with it (10-20% on PostgreSQL, where
a send is a dozen round trips, each a socket write, a wake-up and a read); see the
README's bench section. grpc.aio and uvicorn both run on any asyncio loop.
MAILPOOL_UVLOOP=0 runs the standard loop instead (a profiler that reads only Python
frames, or a platform without uvloop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from mailpool_server.config import env_flag

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop, unless MAILPOOL_UVLOOP=0 (None: asyncio's default)."""
    if not env_flag("MAILPOOL_UVLOOP", True):
        return None
    import uvloop

    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on the chosen loop."""
    try:
        factory = loop_factory()
    except BaseException:
        main.close()  # never started: no "never awaited" warning on top of the error
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
