from __future__ import annotations

import hashlib
import json
from dataclasses import fields

import pytest

from mailpool_server.service.addresses import normalize
from mailpool_server.service.errors import (
    IdempotencyKeyMalformed,
    InvalidArgument,
    MutuallyExclusiveFields,
)
from mailpool_server.service.send_request import SendCommand, parse_duration_ms, validate

BASE = {"identity": "a@mailpool.local", "to": ("b@example.com",), "subject": "s", "text": "t"}


def command(**fields: object) -> SendCommand:
    return SendCommand(**{**BASE, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("30m", 1_800_000),
        ("4h", 14_400_000),
        ("1.5h", 5_400_000),
        ("1d", 86_400_000),
        ("3 days", 259_200_000),
        ("90 minutes", 5_400_000),
        ("120000", 120_000),
        ("10s", 60_000),
        ("59999", 60_000),
        (" 2 Hours ", 7_200_000),
        ("1w", 604_800_000),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "soon", "5 fortnights", "-5m", "1e3", "m", "366d"])
def test_bad_durations_name_the_field(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_duration_ms(text)
    assert caught.value.violations[0].field == "noReplyEventAfter"


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"conv_id": "conv_ab"}, ["convId", "to", "subject"]),
        (
            {"conv_id": "conv_ab", "to": (), "subject": None, "in_reply_to": "<x@y>"},
            ["convId", "inReplyTo"],
        ),
    ],
)
def test_conv_id_excludes_new_conversation_fields(
    fields: dict[str, object], names: list[str]
) -> None:
    with pytest.raises(MutuallyExclusiveFields) as caught:
        validate(command(**fields))
    assert [v.field for v in caught.value.violations] == names
    assert caught.value.message.startswith("convId is mutually exclusive with")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"to": ()}, "to"),
        ({"to": tuple(f"r{n}@example.com" for n in range(51))}, "to"),
        ({"to": ("a@example.com", "A@example.com")}, "to"),
        ({"subject": None}, "subject"),
        ({"subject": "two\nlines"}, "subject"),
        ({"text": None}, "text"),
        ({"text": ""}, "text"),
        ({"labels": ("",)}, "labels"),
        ({"labels": tuple(str(n) for n in range(21))}, "labels"),
        ({"in_reply_to": "no-brackets"}, "inReplyTo"),
        ({"references": ("<a@b>",)}, "references"),
        ({"no_reply_event_after": "later"}, "noReplyEventAfter"),
        ({"to": (), "subject": None, "conv_id": "conv_XYZ"}, "convId"),
    ],
)
def test_validation_names_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(command(**fields))
    assert field in [v.field for v in caught.value.violations]
    assert caught.value.message.startswith(caught.value.violations[0].field)


def test_html_alone_is_enough_and_bad_addresses_are_not_errors() -> None:
    valid = validate(command(text=None, html="<p>hi</p>", to=("not an address",)))
    assert valid.recipients == ("not an address",)


@pytest.mark.parametrize("key", ["", " ", "ü", "a" * 256, "line\nbreak"])
def test_malformed_idempotency_keys(key: str) -> None:
    with pytest.raises(IdempotencyKeyMalformed):
        validate(command(idempotency_key=key))


def test_fingerprint_ignores_key_order_and_the_key_itself() -> None:
    body: dict[str, object] = {
        "to": ["b@example.com"],
        "subject": "s",
        "text": "t",
        "labels": ["x"],
    }
    reordered = json.loads(json.dumps(dict(reversed(list(body.items())))))

    def from_json(data: dict[str, object], key: str) -> SendCommand:
        return SendCommand(
            identity="A@mailpool.local",
            to=tuple(data["to"]),  # type: ignore[arg-type]
            subject=data["subject"],  # type: ignore[arg-type]
            text=data["text"],  # type: ignore[arg-type]
            labels=tuple(data["labels"]),  # type: ignore[arg-type]
            idempotency_key=key,
        )

    assert from_json(body, "k1").fingerprint() == from_json(reordered, "k2").fingerprint()
    assert command().fingerprint() != command(text="other").fingerprint()
    assert command().fingerprint() != command(identity="b@mailpool.local").fingerprint()


def test_the_fingerprint_format_is_stable() -> None:
    """Records stored by earlier versions hold fingerprints in this format: a change to
    it would turn every retry of an earlier send into 422 key reused."""
    command = SendCommand(identity="A@x.com", to=("b@y.com",), subject="s", text="t", labels=("l",))
    assert command.fingerprint() == (
        "e5ba27de39b3a248194154dd1e2af4bd804bf53dd21bba7c2745d4b8b543f2ab"
    )


@pytest.mark.parametrize(
    "text",
    [
        'quote " and backslash \\ and slash /',
        "controls \x00 \x01 \x08 \t \n \x0b \x0c \r \x1f and DEL \x7f",
        "ünïcödé, 漢字, emoji 📨, line separators \u2028 \u2029, BOM \ufeff",
    ],
)
def test_the_fingerprint_is_the_stdlib_json_s_digest(text: str) -> None:
    """Fingerprints stored before orjson took them were digests of the stdlib's JSON:
    every field, strings of every kind, the same bytes."""
    command = SendCommand(
        identity="Ä@mailpool.local",
        to=(f"{text}@example.com", "b@example.com"),
        subject=text,
        text=text,
        html=None,
        labels=(text, "plain"),
        references=("<a@b>",),
        no_reply_event_after="3 days",
    )
    body = {f.name: getattr(command, f.name) for f in fields(SendCommand)}
    del body["idempotency_key"]
    body["identity"] = normalize(command.identity)
    stdlib = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert command.fingerprint() == hashlib.sha256(stdlib.encode()).hexdigest()
