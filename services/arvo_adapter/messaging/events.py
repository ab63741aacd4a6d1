"""Consumer of `arvo_adapter.events` (one function per event type): each records the
work its event asks for, in the consumer's transaction with the inbox claim, and wakes
the worker; no Arvo call is made here (usecases module doc). A payload that fails its
model, or a jakso whose data Arvo could never accept, can never succeed: it is set aside
at once (dead-letter queue) with an error naming the field.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from services.arvo_adapter.usecases import ArvoAdapter, Invalid, Received
from shared.events import (
    ArvoStatusUpdate,
    JaksoCancelled,
    JaksoKestoChanged,
    NippuReady,
    TpkNippuReady,
)
from shared.messaging.consumer import EventHandler, MessageRejected, payload_of
from shared.messaging.envelope import Envelope


def arvo_handlers(adapter: ArvoAdapter, wake: Callable[[], None]) -> dict[str, EventHandler]:
    async def on_nippu_ready(session: AsyncSession, envelope: Envelope) -> None:
        payload = payload_of(NippuReady, envelope)
        try:
            await adapter.record_nippu_ready(
                session, payload=payload, received=Received.of(envelope)
            )
        except Invalid as exc:
            raise MessageRejected(str(exc)) from exc
        wake()

    async def on_tpk_nippu_ready(session: AsyncSession, envelope: Envelope) -> None:
        payload = payload_of(TpkNippuReady, envelope)
        await adapter.record_tpk_nippu_ready(
            session, payload=payload, received=Received.of(envelope)
        )
        wake()

    async def on_status_update(session: AsyncSession, envelope: Envelope) -> None:
        payload = payload_of(ArvoStatusUpdate, envelope)
        await adapter.record_status_update(session, payload=payload, received=Received.of(envelope))
        wake()

    async def on_kesto_changed(session: AsyncSession, envelope: Envelope) -> None:
        payload = payload_of(JaksoKestoChanged, envelope)
        await adapter.record_kesto_changed(session, payload=payload, received=Received.of(envelope))
        wake()

    async def on_cancelled(session: AsyncSession, envelope: Envelope) -> None:
        payload = payload_of(JaksoCancelled, envelope)
        await adapter.record_cancelled(session, payload=payload, received=Received.of(envelope))
        wake()

    return {
        NippuReady.TYPE: on_nippu_ready,
        TpkNippuReady.TYPE: on_tpk_nippu_ready,
        ArvoStatusUpdate.TYPE: on_status_update,
        JaksoKestoChanged.TYPE: on_kesto_changed,
        JaksoCancelled.TYPE: on_cancelled,
    }
