"""Limits the HTTP contract states, shared by the use cases and the shim (which sizes
its own timeouts by them). Plain constants: importing this pulls in nothing else."""

from __future__ import annotations

# GET /events and ListEvents hold a request at most this long (timeoutMs 0..25000).
MAX_LONG_POLL_MS = 25_000
# List endpoints: limit 1..200.
MAX_PAGE_SIZE = 200
