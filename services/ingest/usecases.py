"""The ingest's use cases, shared by the HTTP API and the `ehoks.changes` consumer.

Each is atomic: decide (pure parse, done by the caller before any I/O), then store the
version and stage its event in the outbox together. An unchanged document stores nothing and
emits nothing, which also makes redelivered queue messages harmless.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.domain.canonical import content_hash
from services.ingest.domain.hoks import ParsedHoks, hoks_changed, hoks_deleted
from services.ingest.domain.opiskeluoikeus import ParsedOpiskeluoikeus, opiskeluoikeus_changed
from services.ingest.store.documents import (
    Kind,
    Recorded,
    record_deletion,
    record_version,
)
from services.ingest.store.tables import outbox
from shared.events import HoksChanged, HoksDeleted, OpiskeluoikeusChanged
from shared.messaging.outbox import add_event, build_envelope

# The statement that stores a version writes the version it assigned into the event.
VERSION_PLACEHOLDER = 0


@dataclass(frozen=True)
class Deleted:
    version: int | None

    @property
    def changed(self) -> bool:
        return self.version is not None


async def upsert_hoks(
    conn: asyncpg.Connection, parsed: ParsedHoks, document: object, document_json: str, source: str
) -> Recorded:
    """Store a HOKS version; `hoks.changed` carries its normalised jaksot, not the document."""
    event = build_envelope(HoksChanged.TYPE, hoks_changed(parsed, VERSION_PLACEHOLDER))
    return await record_version(
        conn, Kind.HOKS, str(parsed.hoks_id), content_hash(document), document_json, source, event
    )


async def delete_hoks(session: AsyncSession, hoks_id: int, source: str) -> Deleted:
    """E14: the bundler cancels the pending surveys of a deleted HOKS's jaksot."""
    version = await record_deletion(session, Kind.HOKS, str(hoks_id), source)
    if version is not None:
        await add_event(session, outbox, HoksDeleted.TYPE, hoks_deleted(hoks_id, version))
    return Deleted(version)


async def upsert_opiskeluoikeus(
    conn: asyncpg.Connection,
    parsed: ParsedOpiskeluoikeus,
    document: object,
    document_json: str,
    source: str,
) -> Recorded:
    event = build_envelope(
        OpiskeluoikeusChanged.TYPE, opiskeluoikeus_changed(parsed, VERSION_PLACEHOLDER)
    )
    return await record_version(
        conn, Kind.OPISKELUOIKEUS, parsed.oid, content_hash(document), document_json, source, event
    )
