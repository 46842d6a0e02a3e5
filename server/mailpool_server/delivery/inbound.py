"""The inbound listener: SMTP and LMTP (aiosmtpd) on the server's own event loop, the
way an MTA hands mail over. Unknown recipients are refused at RCPT time."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import ssl
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses, parseaddr
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailpool_server.service.inbound import DeliveryReport, Inbound, InboundMail
from mailpool_server.startup import listen_error

log = logging.getLogger("mailpool.inbound")

MAX_MESSAGE_BYTES = 25 * 1024 * 1024
# RFC 5322 lines end at 998 characters, so no real Message-ID is longer, and none of ours
# is; a longer one cannot thread onto anything and is not kept (the store's columns
# hold 998). Addresses are at most 254 characters (RFC 5321); the store keys contacts
# and conversations by them, with room to 320.
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,996}>")
MAX_SENDER = 320


class RefusedMail(Exception):
    """Mail refused for good (a 5xx reply): retrying it cannot succeed."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def _after_semicolon(value: str | None) -> str:
    return (value or "").rpartition(";")[2].strip()


def _report(message: EmailMessage) -> DeliveryReport | None:
    """The first failed/delayed recipient of an RFC 3464 delivery status notification."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type") or "").lower() != "delivery-status":
        return None
    recipient = status = diagnostic = ""
    original = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            payload = part.get_payload()
            blocks = (
                [b for b in payload if isinstance(b, Message)] if isinstance(payload, list) else []
            )
            for block in blocks:
                if block.get("Final-Recipient") or block.get("Original-Recipient"):
                    recipient = _after_semicolon(
                        block.get("Final-Recipient") or block.get("Original-Recipient")
                    )
                    status = (block.get("Status") or "").strip()
                    diagnostic = _after_semicolon(block.get("Diagnostic-Code"))
                    break
        elif kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original = inner[0].get("Message-ID")
        elif kind == "text/rfc822-headers":
            original = HeaderParser().parsestr(part.get_content()).get("Message-ID")
    if not recipient or not re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", status):
        return None
    return DeliveryReport(recipient, status, diagnostic, (original or "").strip() or None)


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return ""
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # an unknown or broken charset
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def parse(raw: bytes, mailbox_email: str) -> InboundMail:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    in_reply_to = _message_ids(message, "In-Reply-To")
    sender = parseaddr(str(message.get("From") or ""))[1]
    if len(sender) > MAX_SENDER:
        raise RefusedMail("550 5.1.7 the From address is longer than any deliverable address")
    return InboundMail(
        mailbox_email=mailbox_email,
        from_address=sender,
        to=tuple(a for _, a in getaddresses([str(v) for v in message.get_all("To") or []]) if a),
        cc=tuple(a for _, a in getaddresses([str(v) for v in message.get_all("Cc") or []]) if a),
        subject=str(message.get("Subject") or ""),
        text=_body(message, "plain"),
        html=_body(message, "html"),
        message_id_header=(
            _message_ids(message, "Message-ID")
            or [f"<{secrets.token_hex(12)}@inbound.mailpool.local>"]
        )[0],
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=tuple(_message_ids(message, "References")),
        report=_report(message),
    )


def _message_ids(message: EmailMessage, header: str) -> list[str]:
    """The header's Message-IDs, those longer than a line can hold left out."""
    return [
        found
        for found in re.findall(r"<[^<>\s]+>", str(message.get(header) or ""))
        if _MESSAGE_ID.fullmatch(found)
    ]


class Handler:
    """aiosmtpd hooks: check each RCPT, then hand the message to the use case once per
    recipient (LMTP answers DATA once per recipient)."""

    def __init__(self, inbound: Inbound, *, lmtp: bool) -> None:
        self._inbound = inbound
        self._lmtp = lmtp

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not await self._inbound.accepts(address):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        replies = []
        for rcpt in envelope.rcpt_tos:
            try:
                await self._inbound.receive(parse(raw, rcpt))
                replies.append("250 2.0.0 delivered")
            except RefusedMail as refused:
                replies.append(refused.reply)
            except Exception:  # the sender keeps the message and retries
                log.exception("inbound delivery failed", extra={"fields": {"rcpt": rcpt}})
                replies.append("451 4.3.0 try again later")
        if self._lmtp:
            return "\r\n".join(replies)
        # SMTP has one reply for all recipients: the same one, or try again.
        return replies[0] if all(r == replies[0] for r in replies) else "451 4.3.0 try again later"


async def start_listener(
    inbound: Inbound,
    host: str,
    port: int,
    *,
    lmtp: bool = False,
    hostname: str = "mailpool",
    start_serving: bool = True,
    tls_context: ssl.SSLContext | None = None,
) -> asyncio.Server:
    """Listen on host:port (0 = a free port: read it from server.sockets). Without
    start_serving the port is bound but nothing is accepted until server.start_serving().
    A port that cannot be bound is CannotListen (PortInUse when taken). With
    `tls_context`, SMTP offers STARTTLS (not required: senders that cannot are still
    accepted, as MTAs expect of a receiving server)."""
    protocol: Any = LMTP if lmtp else SMTP
    handler = Handler(inbound, lmtp=lmtp)
    loop = asyncio.get_running_loop()
    tls: dict[str, Any] = {}
    if tls_context is not None and not lmtp:
        tls = {"tls_context": tls_context, "require_starttls": False}
    try:
        return await loop.create_server(
            lambda: protocol(
                handler,
                hostname=hostname,
                data_size_limit=MAX_MESSAGE_BYTES,
                loop=loop,
                enable_SMTPUTF8=True,
                **tls,
            ),
            host=host,
            port=port,
            start_serving=start_serving,
        )
    except OSError as error:
        raise listen_error("lmtp" if lmtp else "smtp", host, port, error) from None
