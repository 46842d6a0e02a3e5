"""Stored JSON ⇄ domain records: today's rows round-trip, and rows written before the
payloads were typed (the contract's camelCase names) still read."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mailpool_server.service import events as ev
from mailpool_server.service.models import (
    Affinity,
    Direction,
    MailboxRef,
    QueuedRecipient,
    RecipientOutcome,
    RejectReason,
    SendClass,
    SendResult,
)
from mailpool_server.store.codec import dump, load, load_payload, load_send_result

REF = MailboxRef("acc_1", "a.1@mailboxes.example")
BODY = ev.MessageBody(
    "msg_1",
    Direction.INBOUND,
    "<m@x>",
    "bob@example.com",
    ("a.1@x",),
    (),
    "Re: Hi",
    "t",
    "",
    "t",
    5,
)
PAYLOADS: list[ev.EventPayload] = [
    ev.EmailQueued("psn_1", "bob@example.com", SendClass.WARM, 7, REF),
    ev.EmailSent(
        "psn_1", ev.SentMessage("msg_1", "<m@x>", "a.1@x", ("bob@example.com",), "Hi"), REF
    ),
    ev.EmailCancelled("psn_1", "bob@example.com", ev.CancelReason.ADMIN),
    ev.EmailSendFailedPermanently("psn_1", "bob@example.com", "550 no", 6),
    ev.EmailReceived(BODY),
    ev.EmailReplied(BODY),
    ev.EmailBounced("bob@example.com", ev.BounceKind.SOFT, "4.2.2", "full"),
    ev.EmailNoReply(3_600_000),
    ev.MailboxReplaced(REF, 3, None),
    ev.MailboxReplaced(REF, 0, MailboxRef("acc_2", "a.2@mailboxes.example")),
]


def test_every_payload_round_trips() -> None:
    assert {type(p) for p in PAYLOADS} == set(ev.PAYLOAD_TYPES.values())
    for payload in PAYLOADS:
        assert load_payload(payload.TYPE.value, dump(payload)) == payload


def test_rows_written_before_typed_payloads_still_read() -> None:
    old_queued = {
        "pendingId": "psn_1",
        "recipient": "bob@example.com",
        "sendClass": "warm",
        "dispatchAt": 7,
        "account": {"id": "acc_1", "email": "a.1@mailboxes.example"},
    }
    assert load_payload("email.queued", json.dumps(old_queued)) == PAYLOADS[0]
    old_sent = {
        "pendingId": "psn_1",
        "message": {
            "id": "msg_1",
            "messageIdHeader": "<m@x>",
            "from": "a.1@x",
            "to": ["bob@example.com"],
            "subject": "Hi",
        },
        "account": old_queued["account"],
    }
    assert load_payload("email.sent", json.dumps(old_sent)) == PAYLOADS[1]
    old_replaced = {"oldAccount": old_queued["account"], "repinned": 3, "newAccount": None}
    assert load_payload("mailbox.replaced", json.dumps(old_replaced)) == PAYLOADS[8]
    old_bounce = {
        "recipient": "bob@example.com",
        "kind": "soft",
        "statusCode": "4.2.2",
        "diagnostic": "full",
    }
    assert load_payload("email.bounced", json.dumps(old_bounce)) == PAYLOADS[6]


RESULT = SendResult(
    identity="alice@mailpool.local",
    accepted=1,
    rejected=1,
    remaining=149,
    results=(
        RecipientOutcome(
            "Bob@example.com",
            queued=QueuedRecipient(
                "psn_1", "conv_1", SendClass.COLD_FIRST_CONTACT, Affinity.NEW, REF, 9
            ),
        ),
        RecipientOutcome("x@blocked.example", reason=RejectReason.DO_NOT_CONTACT),
    ),
)


def test_send_results_round_trip() -> None:
    assert load(SendResult, dump(RESULT)) == RESULT
    assert load_send_result(dump(RESULT)) == RESULT


def test_send_results_stored_flat_by_older_versions_still_replay() -> None:
    flat = {
        "identity": "alice@mailpool.local",
        "accepted": 1,
        "rejected": 1,
        "remaining": 149,
        "results": [
            {
                "to": "Bob@example.com",
                "status": "queued",
                "reason": None,
                "pending_id": "psn_1",
                "conv_id": "conv_1",
                "send_class": "cold_first_contact",
                "affinity": "new",
                "account_id": "acc_1",
                "account_email": "a.1@mailboxes.example",
                "dispatch_at": 9,
            },
            {
                "to": "x@blocked.example",
                "status": "rejected",
                "reason": "do_not_contact",
                "pending_id": None,
                "conv_id": None,
                "send_class": None,
                "affinity": None,
                "account_id": None,
                "account_email": None,
                "dispatch_at": None,
            },
        ],
    }
    assert load_send_result(json.dumps(flat)) == RESULT


def test_a_record_missing_a_defaulted_field_reads_with_the_default() -> None:
    # Rows carrying every field under its own name are read by position; one without
    # a field takes the general way, and the field gets its default.
    rejected = {"to": "x@blocked.example", "status": "rejected", "reason": "do_not_contact"}
    expected = RecipientOutcome("x@blocked.example", reason=RejectReason.DO_NOT_CONTACT)
    assert load(RecipientOutcome, json.dumps(rejected)) == expected
    assert load(RecipientOutcome, json.dumps({**rejected, "queued": None})) == expected
    assert load(RecipientOutcome, dump(expected)) == expected


def test_an_enum_value_no_member_has_is_refused() -> None:
    stored = json.loads(dump(PAYLOADS[0]))
    with pytest.raises(KeyError):
        load_payload(PAYLOADS[0].TYPE.value, json.dumps({**stored, "send_class": "lukewarm"}))


def test_records_are_written_as_the_stdlib_would_read_and_write_them() -> None:
    # orjson writes the text; what it writes is the JSON the stdlib's encoder made
    # before it (field names, enum values, arrays), so rows of either read alike.
    for record in (*PAYLOADS, RESULT):
        assert json.loads(dump(record)) == json.loads(
            json.dumps(dataclasses.asdict(record), default=lambda e: e.value)
        )


def test_text_orjson_refuses_is_written_and_read_by_the_stdlib() -> None:
    # A lone surrogate (UTF-8 cannot carry it): orjson refuses it either way; such a
    # value is stored and read back all the same.
    odd = ev.EmailBounced("bob@example.com", ev.BounceKind.HARD, "5.1.1", "bad \ud800 byte")
    assert load_payload(odd.TYPE.value, dump(odd)) == odd
    non_ascii = ev.EmailBounced("zoë@exämple.com", ev.BounceKind.SOFT, "4.2.2", "plein — full")
    stored_escaped = json.dumps(dataclasses.asdict(non_ascii), default=lambda e: e.value)
    assert "\\u00eb" in stored_escaped  # as the stdlib's encoder wrote it
    assert load_payload(non_ascii.TYPE.value, stored_escaped) == non_ascii
