"""The ingest's use cases, shared by the HTTP API and the `ehoks.changes` consumer.

Each is one transaction: decide (pure parse, done by the caller before the transaction),
store the version, stage the event in the outbox. An unchanged document stores nothing and
emits nothing, which also makes redelivered queue messages harmless.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.domain.canonical import content_hash
from services.ingest.domain.hoks import ParsedHoks, hoks_changed, hoks_deleted
from services.ingest.domain.opiskeluoikeus import ParsedOpiskeluoikeus, opiskeluoikeus_changed
from services.ingest.store.documents import Kind, Recorded, record_deletion, record_version
from services.ingest.store.tables import outbox
from shared.events import HoksChanged, HoksDeleted, OpiskeluoikeusChanged
from shared.messaging.outbox import add_event


@dataclass(frozen=True)
class Deleted:
    version: int | None

    @property
    def changed(self) -> bool:
        return self.version is not None


async def upsert_hoks(
    session: AsyncSession, parsed: ParsedHoks, document: object, source: str
) -> Recorded:
    recorded = await record_version(
        session, Kind.HOKS, str(parsed.hoks_id), content_hash(document), document, source
    )
    if recorded.changed:
        await add_event(session, outbox, HoksChanged.TYPE, hoks_changed(parsed, recorded.version))
    return recorded


async def delete_hoks(session: AsyncSession, hoks_id: int, source: str) -> Deleted:
    """E14: the bundler cancels the pending surveys of a deleted HOKS's jaksot."""
    version = await record_deletion(session, Kind.HOKS, str(hoks_id), source)
    if version is not None:
        await add_event(session, outbox, HoksDeleted.TYPE, hoks_deleted(hoks_id, version))
    return Deleted(version)


async def upsert_opiskeluoikeus(
    session: AsyncSession, parsed: ParsedOpiskeluoikeus, document: object, source: str
) -> Recorded:
    recorded = await record_version(
        session, Kind.OPISKELUOIKEUS, parsed.oid, content_hash(document), document, source
    )
    if recorded.changed:
        await add_event(
            session,
            outbox,
            OpiskeluoikeusChanged.TYPE,
            opiskeluoikeus_changed(parsed, recorded.version),
        )
    return recorded
