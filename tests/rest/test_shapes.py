"""shapes.py is the one statement of the contract's JSON. Here: render.py's output has
exactly the declared shape for every case the protos have (the golden scenarios reach
only some: no bounce, no mailbox.replaced, ...), and what shapes.py derives from the
protos is what the server really sends.

How a disagreement is caught: each rendered body is validated against the schema made
from its render function's declared return type. That schema closes every object
(additionalProperties: false) and requires every key (test_every_object_is_closed), so
validation is a recursive key-for-key comparison with the TypedDict, plus value types."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, get_args, get_type_hints

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from jsonschema import Draft202012Validator

from mailpool.v1 import (
    conversation_pb2,
    conversation_service_pb2,
    event_pb2,
    event_service_pb2,
    mailbox_pb2,
    send_pb2,
    send_service_pb2,
)
from mailpool_server.rest import names, render, shapes
from mailpool_server.rest.openapi import REFS, document
from mailpool_server.rest.schema import schema
from mailpool_server.rpc import encode_events, enums
from mailpool_server.service import events as service_events
from mailpool_server.store.codec import load_payload

T0 = 1_777_278_929_000
CONV = "conv_0123456789abcdef"
PENDING = "psn_0123456789abcdef"
ACCOUNT = {"id": "acc_0123456789abcdef", "email": "alice.chen@tryacme.com"}
OTHER_ACCOUNT = {"id": "acc_fedcba9876543210", "email": "alice.c@tryacme.net"}
MESSAGE: dict[str, Any] = {
    "id": "msg_0123456789abcdef",
    "messageIdHeader": "<0123456789abcdef01234567@tryacme.com>",
    "from": "morgan@northwind.example",
    "to": ["alice.chen@tryacme.com"],
    "subject": "Re: hello",
}
INBOUND = {
    **MESSAGE,
    "direction": "inbound",
    "cc": ["cc@northwind.example"],
    "text": "thanks",
    "html": "<p>thanks</p>",
    "snippet": "thanks",
    "ts": T0,
}
# Every event type as the service stores it (data in the contract's names), by wire name.
EVENT_DATA: dict[str, list[dict[str, object]]] = {
    "email.queued": [
        {
            "pendingId": PENDING,
            "recipient": "morgan@northwind.example",
            "sendClass": "cold_first_contact",
            "dispatchAt": T0,
            "account": ACCOUNT,
        }
    ],
    "email.sent": [{"pendingId": PENDING, "message": MESSAGE, "account": ACCOUNT}],
    "email.cancelled": [{"pendingId": PENDING, "recipient": "x@example.com", "reason": "admin"}],
    "email.send_failed_permanently": [
        {"pendingId": PENDING, "recipient": "x@example.com", "error": "550 5.1.1", "attempts": 5}
    ],
    "email.received": [{"message": INBOUND}],
    "email.replied": [{"message": INBOUND}],
    "email.bounced": [
        {"recipient": "x@example.com", "kind": "hard", "statusCode": "5.1.1", "diagnostic": "no"}
    ],
    "email.no_reply": [{"waitedMs": 4 * 3_600_000}],
    "mailbox.replaced": [
        {"oldAccount": ACCOUNT, "repinned": 3, "newAccount": OTHER_ACCOUNT},
        {"oldAccount": ACCOUNT, "repinned": 0, "newAccount": None},
    ],
}


def _events() -> Iterator[event_pb2.Event]:
    """Through the server's own encoder, so the type ↔ payload case pairing is the real one."""
    seq = 0
    for type_, variants in EVENT_DATA.items():
        for data in variants:
            seq += 1
            conv_id = None if type_ == "mailbox.replaced" else CONV
            # Read as the store reads a row written in the contract's camelCase names.
            payload = load_payload(type_, json.dumps(data))
            stored = service_events.Event(
                f"evt_01J{seq:023d}", "idn_1", "alice@x", seq, conv_id, T0 + seq, payload
            )
            yield encode_events.event(stored)


def _time(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def _ref(fields: dict[str, str]) -> mailbox_pb2.MailboxRef:
    return mailbox_pb2.MailboxRef(**fields)


def _timeline() -> list[conversation_pb2.TimelineItem]:
    message = conversation_pb2.Message(
        id=MESSAGE["id"],
        direction=conversation_pb2.MESSAGE_DIRECTION_OUTBOUND,
        message_id_header=MESSAGE["messageIdHeader"],
        from_address="alice.chen@tryacme.com",
        to=["morgan@northwind.example"],
        subject="hello",
        text="hi",
        snippet="hi",
        time=_time(T0),
    )
    label = conversation_pb2.LabelChange(label="hot")
    return [
        conversation_pb2.TimelineItem(time=_time(T0), message=message),
        conversation_pb2.TimelineItem(
            time=_time(T0), no_reply_expired=conversation_pb2.NoReplyExpired(waited_ms=60_000)
        ),
        conversation_pb2.TimelineItem(time=_time(T0), label_added=label),
        conversation_pb2.TimelineItem(time=_time(T0), label_removed=label),
        conversation_pb2.TimelineItem(
            time=_time(T0), archived=conversation_pb2.ArchiveChange(archived=True)
        ),
        conversation_pb2.TimelineItem(
            time=_time(T0), unarchived=conversation_pb2.ArchiveChange(archived=False)
        ),
    ]


def _conversation(*, timers: bool) -> conversation_pb2.Conversation:
    conversation = conversation_pb2.Conversation(
        id=CONV,
        correspondent="morgan@northwind.example",
        subject="hello",
        snippet="thanks",
        message_count=2,
        archived=False,
        labels=["hot"],
        last_event_time=_time(T0),
        create_time=_time(T0 - 1000),
    )
    if timers:
        conversation.no_reply_time.CopyFrom(_time(T0 + 3_600_000))
        conversation.last_no_reply_time.CopyFrom(_time(T0 - 500))
    return conversation


RECIPIENTS = [
    send_pb2.RecipientResult(
        to="morgan@northwind.example",
        status=send_pb2.RECIPIENT_STATUS_QUEUED,
        pending_id=PENDING,
        conv_id=CONV,
        send_class=send_pb2.SEND_CLASS_COLD_FIRST_CONTACT,
        affinity=send_pb2.AFFINITY_NEW,
        account=_ref(ACCOUNT),
        dispatch_time=_time(T0),
    ),
    send_pb2.RecipientResult(
        to="x@blocked.example",
        status=send_pb2.RECIPIENT_STATUS_REJECTED,
        reject_reason=send_pb2.REJECT_REASON_DO_NOT_CONTACT,
    ),
]


def _cases() -> list[tuple[Callable[[Any], Any], Any]]:
    """(render function, protobuf input): every shape and every case of every union."""
    return [
        (
            render.send_response,
            send_service_pb2.SendResponse(
                identity="alice@x", accepted=1, rejected=1, remaining=148, results=RECIPIENTS
            ),
        ),
        (
            render.conversation_list,
            conversation_service_pb2.ListConversationsResponse(
                identity="alice@x", conversations=[_conversation(timers=False)]
            ),
        ),
        (
            render.conversation_list,
            conversation_service_pb2.ListConversationsResponse(
                identity="alice@x", next_page_token="abc"
            ),
        ),
        *(
            (
                render.conversation_detail,
                conversation_service_pb2.GetConversationResponse(
                    identity="alice@x", conversation=_conversation(timers=timers), timeline=timeline
                ),
            )
            for timers, timeline in ((True, _timeline()), (False, []))
        ),
        (
            render.event_list,
            event_service_pb2.ListEventsResponse(
                identity="alice@x", events=list(_events()), cursor=10, has_more=True
            ),
        ),
    ]


@pytest.mark.parametrize(("function", "message"), _cases())
def test_rendered_body_has_the_declared_shape(function: Callable[[Any], Any], message: Any) -> None:
    declared = get_type_hints(function)["return"]
    components = document()["components"]
    validator = Draft202012Validator({**schema(declared, REFS), "components": components})
    validator.validate(function(message))


def test_the_cases_cover_every_proto_case() -> None:
    events = list(_events())
    assert {names.event_type(e.WhichOneof("payload") or "") for e in events} == set(
        names.EVENT_TYPES
    )
    timeline = {item.WhichOneof("item") for item in _timeline()}
    cases = conversation_pb2.TimelineItem.DESCRIPTOR.oneofs_by_name["item"].fields
    assert timeline == {f.name for f in cases}
    assert {r.status for r in RECIPIENTS} == {
        v.number for v in send_pb2.RecipientStatus.DESCRIPTOR.values if v.number
    }


def test_event_types_are_the_servers() -> None:
    # The wire names are the server's (service/events.py); the rule derives them from the
    # payload cases, and the encoder pairs each name with the case the rule names.
    assert list(names.EVENT_TYPES) == [t.value for t in service_events.EventType]
    for e in _events():
        assert names.event_type(e.WhichOneof("payload") or "") == e.type


@pytest.mark.parametrize(
    ("proto_enum", "mapping"),
    [
        (send_pb2.SendClass, enums.SEND_CLASSES),
        (send_pb2.Affinity, enums.AFFINITIES),
        (send_pb2.RejectReason, enums.REJECT_REASONS),
        (send_pb2.RecipientStatus, enums.RECIPIENT_STATUSES),
        (conversation_pb2.MessageDirection, enums.DIRECTIONS),
        (event_pb2.CancelReason, enums.CANCEL_REASONS),
        (event_pb2.BounceKind, enums.BOUNCE_KINDS),
    ],
)
def test_enum_names_are_the_servers(
    proto_enum: names.ProtoEnum, mapping: enums.EnumMap[Any, int]
) -> None:
    server_names = {member.value: mapping.to_proto(member) for member in mapping.members}
    # The server maps its own names onto the proto values; the shim names the values by
    # rule. Each value must get back the server's name, and the list the schema allows
    # must be exactly the server's names.
    for server_name, number in server_names.items():
        assert names.enum_name(proto_enum, number) == server_name
    assert set(names.enum_names(proto_enum)) == set(server_names)


def _literals(*typed_dicts: Any) -> list[str]:
    return [v for td in typed_dicts for v in get_args(get_type_hints(td)["type"])]


def test_discriminators_are_the_proto_names() -> None:
    cases = conversation_pb2.TimelineItem.DESCRIPTOR.oneofs_by_name["item"].fields
    assert _literals(*get_args(shapes.TimelineItem)) == [f.name for f in cases]
    statuses = [
        get_args(get_type_hints(shapes.QueuedRecipient)["status"])[0],
        get_args(get_type_hints(shapes.RejectedRecipient)["status"])[0],
    ]
    assert statuses == list(names.enum_names(send_pb2.RecipientStatus))


def _objects(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if "properties" in node:
            yield path, node
        for key, value in node.items():
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{path}[{index}]")


def test_every_object_is_closed() -> None:
    """The premise of the shape checks: a response object allows exactly its keys."""
    found = 0
    for path, node in _objects(document()["components"]["schemas"], ""):
        if path in ("/SendRequest", "/LabelsRequest"):
            continue  # request bodies: the server, not the schema, judges them
        found += 1
        assert node["additionalProperties"] is False, path
        optional = {"/Error": {"details"}}.get(path, set())
        assert set(node["required"]) == set(node["properties"]) - optional, path
    assert found > 20
