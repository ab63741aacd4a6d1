"""The consumer of `send.requested` (sender.events): record the bundle's messages in the
consumer's transaction, with the inbox claim, so a redelivered job records nothing twice;
the delivery worker sends them after the commit."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.sender.usecases import RequestInvalid, Sender
from shared.events import SendRequested
from shared.messaging.consumer import EventHandler, MessageRejected, payload_of
from shared.messaging.envelope import Envelope


def request_handlers(sender: Sender) -> dict[str, EventHandler]:
    async def on_send_requested(session: AsyncSession, envelope: Envelope) -> None:
        payload = payload_of(SendRequested, envelope)
        try:
            await sender.record_send_request(session, payload=payload)
        except RequestInvalid as exc:
            raise MessageRejected(f"invalid {envelope.type}: {exc}") from exc

    return {SendRequested.TYPE: on_send_requested}
