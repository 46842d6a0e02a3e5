"""SendService."""

from __future__ import annotations

from mailpool.v1 import send_service_pb2 as pb
from mailpool.v1 import send_service_pb2_grpc as pb_grpc
from mailpool_server.logs import request_id
from mailpool_server.rpc import encode
from mailpool_server.rpc.interceptor import Context, current_org
from mailpool_server.service.send import Sender
from mailpool_server.service.send_request import SendCommand

REPLAYED_HEADER = "idempotent-replayed"


def decode(request: pb.SendRequest) -> SendCommand:
    def optional(name: str) -> str | None:
        return getattr(request, name) if request.HasField(name) else None  # type: ignore[arg-type]

    return SendCommand(
        identity=request.identity,
        to=tuple(request.to),
        subject=optional("subject"),
        text=optional("text"),
        html=optional("html"),
        conv_id=optional("conv_id"),
        in_reply_to=optional("in_reply_to"),
        references=tuple(request.references),
        labels=tuple(request.labels),
        no_reply_event_after=optional("no_reply_event_after"),
        idempotency_key=optional("idempotency_key"),
    )


class SendServicer(pb_grpc.SendServiceServicer):
    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    async def Send(self, request: pb.SendRequest, context: Context) -> pb.SendResponse:
        # A whole rejection is an AllRecipientsRejected error, mapped like every other.
        outcome = await self._sender.send(
            current_org(), decode(request), request_id=request_id.get()
        )
        if outcome.replayed:
            await context.send_initial_metadata(((REPLAYED_HEADER, "true"),))
        return encode.send_response(outcome.result)

    async def CancelSend(
        self, request: pb.CancelSendRequest, context: Context
    ) -> pb.CancelSendResponse:
        handle, cancelled = await self._sender.cancel(
            current_org(), request.identity, request.pending_id
        )
        return pb.CancelSendResponse(
            identity=handle,
            pending_id=cancelled.pending_id,
            conv_id=cancelled.conv_id,
            recipient=cancelled.recipient,
        )
