"""Consumers of what follows a formed bundle (one function per event type): Arvo's links
(`nippu.linked`, `tpk_nippu.linked`), the sender's reports (`send.status`) and Arvo's
answers (`survey.status`).

Each runs in the consumer's transaction with the inbox claim, so a redelivered message is
skipped; an event about a bundle never formed here can never succeed and is set aside.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.bundler.usecases import Flow, FlowCause, UnknownNippu
from shared.events import NippuLinked, SendStatus, SurveyStatus, TpkNippuLinked
from shared.messaging.consumer import EventHandler, MessageRejected, payload_of
from shared.messaging.envelope import Envelope

Payload = TypeVar("Payload", bound=BaseModel)


def _handler(
    model: type[Payload],
    apply: Callable[[AsyncSession, Payload, FlowCause], Awaitable[None]],
) -> EventHandler:
    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        payload = payload_of(model, envelope)
        try:
            await apply(session, payload, FlowCause(envelope.type, envelope.message_id))
        except UnknownNippu as exc:
            raise MessageRejected(str(exc)) from exc

    return handle


def flow_handlers(flow: Flow) -> dict[str, EventHandler]:
    """The handlers of `nippu.linked`, `tpk_nippu.linked`, `send.status`, `survey.status`."""

    async def linked(session: AsyncSession, payload: NippuLinked, cause: FlowCause) -> None:
        await flow.apply_nippu_linked(session, payload=payload, cause=cause)

    async def tpk_linked(session: AsyncSession, payload: TpkNippuLinked, _: FlowCause) -> None:
        await flow.apply_tpk_nippu_linked(session, payload=payload)

    async def send_status(session: AsyncSession, payload: SendStatus, cause: FlowCause) -> None:
        await flow.apply_send_status(session, payload=payload, cause=cause)

    async def survey_status(session: AsyncSession, payload: SurveyStatus, cause: FlowCause) -> None:
        await flow.apply_survey_status(session, payload=payload, cause=cause)

    return {
        NippuLinked.TYPE: _handler(NippuLinked, linked),
        TpkNippuLinked.TYPE: _handler(TpkNippuLinked, tpk_linked),
        SendStatus.TYPE: _handler(SendStatus, send_status),
        SurveyStatus.TYPE: _handler(SurveyStatus, survey_status),
    }
