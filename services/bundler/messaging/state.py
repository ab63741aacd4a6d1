"""Consumers of the ingest's events (one function per event type): they keep the
bundler's record of HOKS, study rights and jaksot current (E, J4, W4, E14, E18).

Each runs in the consumer's transaction with the inbox claim (`event_handler`), so a
redelivered message is skipped, and hands its payload to the use case; a payload that
does not match its model can never succeed and is set aside at once.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.bundler.usecases import Bundler, Cause
from shared.events import HoksChanged, HoksDeleted, OpiskeluoikeusChanged
from shared.messaging.consumer import EventHandler, payload_of
from shared.messaging.envelope import Envelope


def state_handlers(bundler: Bundler) -> dict[str, EventHandler]:
    """The handlers of `hoks.changed`, `hoks.deleted` and `opiskeluoikeus.changed`."""

    async def on_hoks_changed(session: AsyncSession, envelope: Envelope) -> None:
        payload = payload_of(HoksChanged, envelope)
        cause = Cause(envelope.type, payload.version, envelope.message_id)
        await bundler.apply_hoks_changed(session, payload=payload, cause=cause)

    async def on_hoks_deleted(session: AsyncSession, envelope: Envelope) -> None:
        payload = payload_of(HoksDeleted, envelope)
        cause = Cause(envelope.type, payload.version, envelope.message_id)
        await bundler.apply_hoks_deleted(session, payload=payload, cause=cause)

    async def on_opiskeluoikeus_changed(session: AsyncSession, envelope: Envelope) -> None:
        payload = payload_of(OpiskeluoikeusChanged, envelope)
        cause = Cause(envelope.type, payload.version, envelope.message_id)
        await bundler.apply_opiskeluoikeus_changed(session, payload=payload, cause=cause)

    return {
        HoksChanged.TYPE: on_hoks_changed,
        HoksDeleted.TYPE: on_hoks_deleted,
        OpiskeluoikeusChanged.TYPE: on_opiskeluoikeus_changed,
    }
