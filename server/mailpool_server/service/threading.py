"""Email threading and display helpers: Message-IDs, reply subjects, references, snippets."""

from __future__ import annotations

import html as html_lib
import re

from mailpool_server.service.addresses import domain_of
from mailpool_server.service.ids import random_hex

SNIPPET_CHARS = 140
# Keep References bounded, as mail clients do: the root and the newest ancestors.
MAX_REFERENCES_KEPT = 20
_REPLY_PREFIX = re.compile(r"^\s*(?:re|aw|sv)\s*:\s*", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def new_message_id(mailbox_email: str) -> str:
    """A Message-ID on the sending mailbox's domain."""
    return f"<{random_hex(12)}@{domain_of(mailbox_email)}>"


def reply_subject(subject: str) -> str:
    """'Re: ' exactly once, whatever reply prefixes the subject carried."""
    stripped = subject
    while (match := _REPLY_PREFIX.match(stripped)) is not None:
        stripped = stripped[match.end() :]
    return f"Re: {stripped}"


def references_after(references: tuple[str, ...], message_id: str) -> tuple[str, ...]:
    """The References chain once `message_id` joins the thread."""
    chain = [r for r in references if r != message_id] + [message_id]
    if len(chain) > MAX_REFERENCES_KEPT:
        chain = chain[:1] + chain[-(MAX_REFERENCES_KEPT - 1) :]
    return tuple(chain)


def snippet(text: str, html: str) -> str:
    source = text or html_lib.unescape(_TAG.sub(" ", html))
    return _SPACE.sub(" ", source).strip()[:SNIPPET_CHARS]
