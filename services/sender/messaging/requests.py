"""The consumer of `send.requested` (sender.events): record the bundle's messages in the
consumer's transaction, with the inbox claim, so a redelivered job records nothing twice;
the delivery worker sends them after the commit."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.sender.usecases import RequestInvalid, Sender
from shared.events import SendRequested
from shared.messaging.consumer import EventHandler, MessageRejected
from shared.messaging.envelope import Envelope


def request_handlers(sender: Sender) -> dict[str, EventHandler]:
    async def on_send_requested(session: AsyncSession, envelope: Envelope) -> None:
        try:
            payload = SendRequested.model_validate(envelope.payload)
        except ValidationError as exc:
            # Field names only: the payload holds addresses.
            errors = exc.errors(include_url=False, include_input=False)
            raise MessageRejected(f"invalid {envelope.type} payload: {errors}") from exc
        try:
            await sender.record_send_request(session, payload=payload)
        except RequestInvalid as exc:
            raise MessageRejected(f"invalid {envelope.type}: {exc}") from exc

    return {SendRequested.TYPE: on_send_requested}
