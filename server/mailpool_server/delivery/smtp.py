"""SMTP submission per mailbox (aiosmtplib): STARTTLS or implicit TLS, AUTH, timeouts.

4xx replies, refused connections and timeouts are transient (retried with backoff);
5xx replies are permanent; a rejected login (535) is permanent and also costs the
mailbox health, since every later send from it would fail the same way.
"""

from __future__ import annotations

import aiosmtplib

from mailpool_server.delivery.mime import build
from mailpool_server.service.clock import Clock, now_ms
from mailpool_server.service.models import SmtpTls
from mailpool_server.service.outbound import (
    OutgoingMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)


class SmtpTransport:
    def __init__(
        self, clock: Clock, *, timeout_s: float = 30.0, validate_certs: bool = True
    ) -> None:
        self._clock = clock
        self._timeout_s = timeout_s
        self._validate_certs = validate_certs

    async def deliver(self, message: OutgoingMessage) -> None:
        settings = message.mailbox.smtp
        if settings is None:
            raise PermanentDeliveryError(f"mailbox {message.mailbox.email} has no SMTP settings")
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            use_tls=settings.tls is SmtpTls.IMPLICIT,
            start_tls=settings.tls is SmtpTls.STARTTLS,
            username=settings.username,
            password=settings.password,
            timeout=self._timeout_s,
            validate_certs=self._validate_certs,
        )
        email = build(message, now_ms(self._clock))
        try:
            async with client:
                await client.send_message(
                    email, sender=message.mailbox.email, recipients=[message.recipient]
                )
        except aiosmtplib.SMTPAuthenticationError as error:
            raise PermanentDeliveryError(
                f"{error.code} {error.message}", auth_failure=True
            ) from error
        except aiosmtplib.SMTPRecipientsRefused as error:
            refused = error.recipients[0]
            _raise_for(refused.code, refused.message, error)
        except aiosmtplib.SMTPResponseException as error:
            _raise_for(error.code, error.message, error)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise TransientDeliveryError(f"smtp: {error}") from error


def _raise_for(code: int, text: str, cause: Exception) -> None:
    if 400 <= code < 500:
        raise TransientDeliveryError(f"{code} {text}") from cause
    raise PermanentDeliveryError(f"{code} {text}") from cause
