"""The send request: its two shapes, validation that names the field, and the
canonical fingerprint idempotency compares."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, fields

import orjson

from mailpool_server.service.addresses import normalize
from mailpool_server.service.errors import (
    FieldViolation,
    IdempotencyKeyMalformed,
    InvalidArgument,
    MutuallyExclusiveFields,
)
from mailpool_server.service.ids import CONV_ID

MAX_RECIPIENTS = 50
MAX_ADDRESS_CHARS = 320
MAX_SUBJECT_CHARS = 998
MAX_BODY_CHARS = 1_000_000
MAX_LABELS = 20
MAX_LABEL_CHARS = 64
MAX_REFERENCES = 100
MAX_MESSAGE_ID_CHARS = 998
MIN_NO_REPLY_MS = 60_000
MAX_NO_REPLY_MS = 365 * 86_400_000
MAX_IDEMPOTENCY_KEY = 255

_UNIT_MS = {
    **dict.fromkeys(("ms", "msec", "msecs", "millisecond", "milliseconds"), 1),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1_000),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60_000),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3_600_000),
    **dict.fromkeys(("d", "day", "days"), 86_400_000),
    **dict.fromkeys(("w", "week", "weeks"), 7 * 86_400_000),
}
# ASCII digits only (\d would take "²" or "٣"), and few of them: a longer number is
# beyond 365 days in any unit anyway, and is refused before it is converted.
_DURATION = re.compile(r"^([0-9]{1,15}(?:\.[0-9]{1,9})?)\s*([a-z]*)$")
_DURATION_HINT = "must be a duration such as 30m, 4h, 1.5h, 1d, 3 days or milliseconds"
_MESSAGE_ID = re.compile(rf"^<[^<>\s]{{1,{MAX_MESSAGE_ID_CHARS - 2}}}>$")


@dataclass(frozen=True)
class SendCommand:
    """A send as the client gave it (None = field absent)."""

    identity: str
    to: tuple[str, ...] = ()
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    conv_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    no_reply_event_after: str | None = None
    idempotency_key: str | None = field(default=None, compare=False)

    def fingerprint(self) -> str:
        """SHA-256 of the request without its key, field by field, so that two
        requests that parse the same (whatever their JSON key order or spacing)
        compare equal."""
        # Every field is a string, None or a tuple of strings: a shallow copy (asdict's
        # deep one cost ~100 µs a send) encodes the same.
        body = {f.name: getattr(self, f.name) for f in _FINGERPRINTED}
        body["identity"] = normalize(self.identity)
        return hashlib.sha256(_canonical_json(body)).hexdigest()


def _canonical_json(body: dict[str, object]) -> bytes:
    """The stdlib's compact, key-sorted, non-ASCII-as-is JSON of the body, as UTF-8: the
    text fingerprints stored by every earlier version were taken of. orjson writes the
    same bytes for strings, None and tuples of strings (checked against the stdlib for
    every code point) at a twentieth of the cost; a str with a lone surrogate, which
    orjson refuses, goes through the stdlib as before."""
    try:
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return canonical.encode()


def parse_duration_ms(value: str) -> int:
    """'30m', '4h', '1.5h', '1d', '3 days', '90 minutes', or bare milliseconds.
    Below one minute is raised to one minute."""
    text = value.strip().lower()
    if len(text) > 15 and text.isascii() and text.isdigit():
        raise InvalidArgument.of("noReplyEventAfter", "must be at most 365 days")
    match = _DURATION.match(text)
    if match is None:
        raise InvalidArgument.of("noReplyEventAfter", _DURATION_HINT)
    number, unit = match.groups()
    if unit not in _UNIT_MS and not (unit == "" and "." not in number):
        raise InvalidArgument.of("noReplyEventAfter", _DURATION_HINT)
    ms = round(float(number) * _UNIT_MS.get(unit, 1))
    if ms > MAX_NO_REPLY_MS:
        raise InvalidArgument.of("noReplyEventAfter", "must be at most 365 days")
    return max(ms, MIN_NO_REPLY_MS)


def validate_idempotency_key(key: str | None) -> None:
    if key is None:
        return
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or any(not 0x21 <= ord(c) <= 0x7E for c in key):
        raise IdempotencyKeyMalformed()


@dataclass(frozen=True)
class ValidSend:
    """A request that passed validation; recipients are as given (each one's syntax is
    judged per recipient, as invalid_recipient, not as an error)."""

    command: SendCommand
    recipients: tuple[str, ...]
    no_reply_after_ms: int | None


def _check_text(violations: list[FieldViolation], name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        violations.append(FieldViolation(name, f"must be at most {limit} characters"))


def validate(command: SendCommand) -> ValidSend:
    """Check the request's shape; raise InvalidArgument naming every bad field."""
    validate_idempotency_key(command.idempotency_key)
    if command.conv_id is not None:
        clashing = [
            name
            for name, present in (
                ("to", bool(command.to)),
                ("subject", command.subject is not None),
                ("inReplyTo", command.in_reply_to is not None),
                ("references", bool(command.references)),
            )
            if present
        ]
        if clashing:
            raise MutuallyExclusiveFields("convId", clashing)
    violations: list[FieldViolation] = []
    if command.conv_id is not None:
        if not CONV_ID.match(command.conv_id):
            violations.append(FieldViolation("convId", "must match ^conv_[0-9a-f]+$"))
    else:
        _validate_new_conversation(command, violations)
    if not command.text and not command.html:
        violations.append(FieldViolation("text", "text or html is required"))
    _check_text(violations, "text", command.text or "", MAX_BODY_CHARS)
    _check_text(violations, "html", command.html or "", MAX_BODY_CHARS)
    _validate_labels(command.labels, violations)
    no_reply_ms = None
    if command.no_reply_event_after is not None:
        try:
            no_reply_ms = parse_duration_ms(command.no_reply_event_after)
        except InvalidArgument as error:
            violations += error.violations
    if violations:
        first = violations[0]
        raise InvalidArgument(
            f"{first.field}: {first.description}", violations, {"field": first.field}
        )
    return ValidSend(command, command.to, no_reply_ms)


def _validate_new_conversation(command: SendCommand, violations: list[FieldViolation]) -> None:
    if not command.to:
        violations.append(FieldViolation("to", "is required (or convId to reply)"))
    elif len(command.to) > MAX_RECIPIENTS:
        violations.append(FieldViolation("to", f"must list at most {MAX_RECIPIENTS} recipients"))
    else:
        seen: set[str] = set()
        for address in command.to:
            key = normalize(address)
            if len(address) > MAX_ADDRESS_CHARS:
                violations.append(
                    FieldViolation(
                        "to", f"addresses must be at most {MAX_ADDRESS_CHARS} characters"
                    )
                )
            elif key in seen:
                violations.append(FieldViolation("to", f"lists {address} more than once"))
            seen.add(key)
    if command.subject is None:
        violations.append(FieldViolation("subject", "is required for a new conversation"))
    else:
        _check_text(violations, "subject", command.subject, MAX_SUBJECT_CHARS)
        if "\r" in command.subject or "\n" in command.subject:
            violations.append(FieldViolation("subject", "must be one line"))
    if command.in_reply_to is not None and not _MESSAGE_ID.match(command.in_reply_to):
        violations.append(FieldViolation("inReplyTo", "must be a Message-ID like <id@host>"))
    if command.references and command.in_reply_to is None:
        violations.append(FieldViolation("references", "needs inReplyTo"))
    if len(command.references) > MAX_REFERENCES:
        violations.append(FieldViolation("references", f"must list at most {MAX_REFERENCES}"))
    elif any(not _MESSAGE_ID.match(r) for r in command.references):
        violations.append(FieldViolation("references", "must be Message-IDs like <id@host>"))


def _validate_labels(labels: tuple[str, ...], violations: list[FieldViolation]) -> None:
    if len(labels) > MAX_LABELS:
        violations.append(FieldViolation("labels", f"must list at most {MAX_LABELS} labels"))
    for label in labels:
        if not 1 <= len(label) <= MAX_LABEL_CHARS or not label.isprintable():
            violations.append(
                FieldViolation("labels", f"each label is 1..{MAX_LABEL_CHARS} printable characters")
            )
            break


_FINGERPRINTED = tuple(f for f in fields(SendCommand) if f.name != "idempotency_key")
