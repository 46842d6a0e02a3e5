"""The webhook relay's HTTP side: the delivery body and the POST (httpx)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx

from mailpool_server.rest import render
from mailpool_server.rpc import encode_events
from mailpool_server.service.events import Event
from mailpool_server.service.webhooks import WebhookUnreachable

# A receiver's answer is not used: read this much of it at most, then hang up.
MAX_RESPONSE_BYTES = 64 * 1024


def render_body(event: Event) -> bytes:
    """The contract's event envelope, serialized as the HTTP shim serializes it
    (Starlette's JSONResponse: compact, UTF-8), so a push carries the same bytes a
    pull shows."""
    return json.dumps(
        render.event(encode_events.event(event)),
        ensure_ascii=False,
        allow_nan=False,
        indent=None,
        separators=(",", ":"),
    ).encode("utf-8")


class HttpWebhookSender:
    """POSTs with one pooled httpx client. No redirects are followed (the URL is the
    endpoint) and proxy variables are ignored, so what `show` prints is where it goes."""

    def __init__(self) -> None:
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> int:
        try:
            async with self._client.stream(
                "POST", url, content=body, headers=dict(headers), timeout=timeout_s
            ) as response:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= MAX_RESPONSE_BYTES:
                        break
                return response.status_code
        except httpx.HTTPError as error:
            raise WebhookUnreachable(f"{type(error).__name__}: {error}") from None

    async def aclose(self) -> None:
        await self._client.aclose()
