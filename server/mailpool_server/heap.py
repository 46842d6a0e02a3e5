"""How a serving process's garbage collector runs, set once it serves.

Python collects its youngest generation every 700 new container objects by default. A
server with hundreds of streams open has that many objects in flight at any moment (a
write's futures, a wake-up's callbacks), so every young collection promoted some that
were about to die; the oldest generation then grew by a quarter within a second or two,
and a full collection (3-17 ms, every object the process holds) followed. In `make bench`
fan-out to 500 subscribers spent a fifth of its CPU collecting, and a full collection
landing among the 100 events decided the p99.

Every 10,000 new objects, a young collection takes ~2 ms and promotes far fewer:
fan-out's CPU per delivery went from 83-98 to 67-84 µs, and its p99 over the minimal
server's from 1.06-1.38 to 0.95-1.16 (four runs each of `python -m bench --only fanout`;
README, twelfth session). Sends gain less: ~35 objects a send outlive its call for a
while, and 4,000 in-process sends spent 36 µs a send collecting, against ~10 µs with the
young threshold at 5,000.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 10_000


def settle() -> None:
    """Call once the process serves: what exists now (modules, tables, compiled
    statements) lives as long as the process and stays out of every later collection,
    and the young generation is collected less often (see above)."""
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)
