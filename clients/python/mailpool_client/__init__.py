"""mailpool's Python client: typed errors, sends retried with the same idempotency key,
event streams that resume where they stopped.

    import asyncio
    from mailpool_client import MailpoolClient

    async def main() -> None:
        async with MailpoolClient("127.0.0.1:50051", "sk_live_…") as client:
            sent = await client.send("demo@mailpool.local", to="morgan@northwind.example",
                                     subject="Hi", text="Hello")
            async with client.events("demo@mailpool.local") as events:
                async for event in events:
                    print(event.seq, event.type)

    asyncio.run(main())

`SyncMailpoolClient` offers the same without asyncio. The generated messages and stubs
are in `mailpool.v1` (same distribution).
"""

from mailpool_client.client import (
    DEFAULT_CHANNEL_OPTIONS,
    MailpoolClient,
    SendResult,
    __version__,
)
from mailpool_client.errors import (
    AllRecipientsRejected,
    Cancelled,
    Conflict,
    DeadlineExceeded,
    FieldViolation,
    Internal,
    InvalidArgument,
    MailpoolError,
    NotFound,
    OutOfRange,
    PermissionDenied,
    Rejection,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    from_call,
)
from mailpool_client.events import (
    CaughtUp,
    Disconnected,
    EventItem,
    EventStream,
    Heartbeat,
    StreamItem,
)
from mailpool_client.reasons import Reason
from mailpool_client.retry import DEFAULT_RECONNECT, DEFAULT_RETRY, RetryPolicy
from mailpool_client.sync import SyncEventStream, SyncMailpoolClient
from mailpool_client.webhooks import InvalidSignature, check_signature, verify_signature

__all__ = [
    "DEFAULT_CHANNEL_OPTIONS",
    "DEFAULT_RECONNECT",
    "DEFAULT_RETRY",
    "AllRecipientsRejected",
    "Cancelled",
    "CaughtUp",
    "Conflict",
    "DeadlineExceeded",
    "Disconnected",
    "EventItem",
    "EventStream",
    "FieldViolation",
    "Heartbeat",
    "Internal",
    "InvalidArgument",
    "InvalidSignature",
    "MailpoolClient",
    "MailpoolError",
    "NotFound",
    "OutOfRange",
    "PermissionDenied",
    "Reason",
    "Rejection",
    "ResourceExhausted",
    "RetryPolicy",
    "SendResult",
    "StreamItem",
    "SyncEventStream",
    "SyncMailpoolClient",
    "Unauthenticated",
    "Unavailable",
    "__version__",
    "check_signature",
    "from_call",
    "verify_signature",
]
