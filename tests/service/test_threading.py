from __future__ import annotations

import re

import pytest

from mailpool_server.service.threading import (
    MAX_REFERENCES_KEPT,
    new_message_id,
    references_after,
    reply_subject,
    snippet,
)


@pytest.mark.parametrize(
    ("subject", "reply"),
    [
        ("Pricing", "Re: Pricing"),
        ("Re: Pricing", "Re: Pricing"),
        ("RE: re:Pricing", "Re: Pricing"),
        ("AW: Angebot", "Re: Angebot"),
        ("", "Re: "),
        ("Regarding", "Re: Regarding"),
    ],
)
def test_reply_subject(subject: str, reply: str) -> None:
    assert reply_subject(subject) == reply


def test_message_id_is_on_the_mailbox_domain() -> None:
    assert re.fullmatch(r"<[0-9a-f]{24}@tryacme\.com>", new_message_id("alice@tryacme.com"))


def test_references_keep_the_root_and_the_newest() -> None:
    chain: tuple[str, ...] = ()
    for n in range(30):
        chain = references_after(chain, f"<{n}@x>")
    assert len(chain) == MAX_REFERENCES_KEPT
    assert chain[0] == "<0@x>" and chain[-1] == "<29@x>"


def test_snippet_prefers_text_and_strips_html() -> None:
    assert snippet("  hello\n\nworld ", "<b>x</b>") == "hello world"
    assert snippet("", "<p>Hi&nbsp;<b>there</b></p>") == "Hi there"
    assert len(snippet("x" * 500, "")) == 140
