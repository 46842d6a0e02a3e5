"""API keys: generation, format check and the hash that is all we store."""

from __future__ import annotations

import hashlib
import secrets

from mailpool_server.service.errors import ApiKeyMalformed, ApiKeyMissing

KEY_PREFIX = "sk_live_"
# What a listing shows of a key: "sk_live_" and 8 hex digits; enough to tell keys
# apart and to revoke one, never enough to use it.
DISPLAY_PREFIX_LEN = len(KEY_PREFIX) + 8


def generate_key() -> str:
    """A new key: sk_live_ + 40 random hex digits (160 bits)."""
    return KEY_PREFIX + secrets.token_hex(20)


def hash_key(key: str) -> str:
    """SHA-256 of the key. Keys carry 160 random bits, so a fast hash is safe here
    (no dictionary to guess from) and keeps authentication to one indexed lookup."""
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LEN]


def parse_authorization(value: str | None) -> str:
    """Extract the key from an Authorization value ("Bearer sk_…", or the bare key).

    Raises the contract's errors: missing, or not starting with "sk_".
    """
    if value is None or not value.strip():
        raise ApiKeyMissing()
    token = value.strip()
    scheme, _, rest = token.partition(" ")
    if rest and scheme.lower() == "bearer":
        token = rest.strip()
    if not token.startswith("sk_"):
        raise ApiKeyMalformed()
    return token
