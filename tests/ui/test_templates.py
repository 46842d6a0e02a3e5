"""The conversation template over every kind of timeline item, and escaping: what a
correspondent writes is shown as text, never run as markup."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from mailpool.v1 import conversation_pb2
from mailpool_server.rest.ui.sessions import SessionTable
from mailpool_server.rest.ui.views import ENVIRONMENT


def _at(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def _item(ms: int, **case: object) -> conversation_pb2.TimelineItem:
    return conversation_pb2.TimelineItem(time=_at(ms), **case)  # type: ignore[arg-type]


def test_every_timeline_item_is_shown_and_mail_is_escaped() -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    outbound = conversation_pb2.Message(
        direction=conversation_pb2.MESSAGE_DIRECTION_OUTBOUND,
        from_address="alice.1@mailboxes.mailpool.local",
        to=["morgan@northwind.example"],
        subject="Hello",
        text="Hi Morgan",
        delivery=conversation_pb2.Delivery(
            pending_id="psn_01", state=conversation_pb2.SEND_STATE_QUEUED
        ),
    )
    inbound = conversation_pb2.Message(
        direction=conversation_pb2.MESSAGE_DIRECTION_INBOUND,
        from_address="morgan@northwind.example",
        subject=f"Re: {hostile}",
        html=f"<p>{hostile}</p>",
        snippet=hostile,
    )
    conversation = conversation_pb2.Conversation(
        id="conv_00000000000000ab",
        correspondent="morgan@northwind.example",
        subject=hostile,
        message_count=2,
        labels=[hostile],
        create_time=_at(1_777_276_800_000),
        no_reply_time=_at(1_777_300_000_000),
    )
    timeline = [
        _item(1_777_276_800_000, message=outbound),
        _item(1_777_276_900_000, message=inbound),
        _item(1_777_277_000_000, label_added=conversation_pb2.LabelChange(label=hostile)),
        _item(1_777_277_100_000, label_removed=conversation_pb2.LabelChange(label="old")),
        _item(1_777_277_200_000, archived=conversation_pb2.ArchiveChange(archived=True)),
        _item(1_777_277_300_000, unarchived=conversation_pb2.ArchiveChange()),
        _item(
            1_777_291_200_000,
            no_reply_expired=conversation_pb2.NoReplyExpired(waited_ms=4 * 3600 * 1000),
        ),
    ]
    html = ENVIRONMENT.get_template("conversation.html").render(
        session=SessionTable().create("sk_live_x"),
        flashes=[],
        title=hostile,
        handle="alice@mailpool.local",
        conversation=conversation,
        subject=hostile,
        timeline=timeline,
        waiting=[outbound],
    )
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    for text in (
        "Sent to morgan@northwind.example",
        "Received from morgan@northwind.example",
        "(HTML only)",
        'Label <span class="tag">old</span> removed',
        "Archived",
        "Moved back from the archive",
        "No reply after 4h",
        "/ui/identities/alice@mailpool.local/sends/psn_01/cancel",
        '<span class="send-state">queued</span>',
        'datetime="2026-04-27T08:00:00+00:00">2026-04-27 08:00 UTC</time>',
    ):
        assert text in html, text
