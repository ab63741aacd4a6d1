"""Recording document versions: the one place that decides "new, changed or the same"."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.ingest.store.tables import SCHEMA, document_versions, documents
from shared.messaging.envelope import Envelope


class Kind(StrEnum):
    HOKS = "hoks"
    OPISKELUOIKEUS = "opiskeluoikeus"


@dataclass(frozen=True)
class Recorded:
    version: int
    created: bool
    changed: bool


RECORD_VERSION = text(
    f"""
    WITH latest AS (
        INSERT INTO {SCHEMA}.documents AS d (kind, key, version, content_hash, deleted)
        VALUES (:kind, :key, 1, :content_hash, false)
        ON CONFLICT (kind, key) DO UPDATE
            SET version = d.version + 1, content_hash = excluded.content_hash,
                deleted = false, updated_at = now()
            WHERE d.content_hash IS DISTINCT FROM excluded.content_hash OR d.deleted
        RETURNING d.version
    ), stored AS (
        INSERT INTO {SCHEMA}.document_versions (kind, key, version, content_hash, document, source)
        SELECT :kind, :key, version, :content_hash, CAST(:document AS json), :source
        FROM latest
    ), staged AS (
        INSERT INTO {SCHEMA}.outbox (message_id, type, body)
        SELECT CAST(:message_id AS uuid), :type, convert_to(jsonb_set(
            CAST(:envelope AS jsonb), '{{payload,version}}', to_jsonb(version))::text, 'UTF8')
        FROM latest
    )
    SELECT version FROM latest
    """
)
CURRENT_VERSION = text(f"SELECT version FROM {SCHEMA}.documents WHERE kind = :kind AND key = :key")

Executor = AsyncSession | AsyncConnection


async def record_version(
    db: Executor,
    kind: Kind,
    key: str,
    content_hash: str,
    document_json: str,
    source: str,
    event: Envelope,
) -> Recorded:
    """Store a document and stage its event, unless the latest version has the same content.

    One statement, so one round trip and atomic even outside a transaction: the upsert
    bumps the version only when the hash differs or the document had been deleted, and
    holds the row lock until commit, so concurrent writers of one document queue up and
    each sees the other's result. The event's `payload.version` is filled in by the
    statement from the version it assigned (`event` carries a placeholder).
    """
    ids = {"kind": kind.value, "key": key}
    version: int | None = (
        await db.execute(
            RECORD_VERSION,
            {
                **ids,
                "content_hash": content_hash,
                "document": document_json,
                "source": source,
                "message_id": str(event.message_id),
                "type": event.type,
                "envelope": event.model_dump_json(),
            },
        )
    ).scalar_one_or_none()
    if version is None:
        current = (await db.execute(CURRENT_VERSION, ids)).scalar_one()
        return Recorded(version=current, created=False, changed=False)
    return Recorded(version=version, created=version == 1, changed=True)


async def record_deletion(session: AsyncSession, kind: Kind, key: str, source: str) -> int | None:
    """Mark a document deleted; the new version number, or None if it was not live."""
    version: int | None = (
        await session.execute(
            update(documents)
            .where(documents.c.kind == kind, documents.c.key == key, ~documents.c.deleted)
            .values(
                version=documents.c.version + 1,
                deleted=True,
                content_hash=None,
                updated_at=func.now(),
            )
            .returning(documents.c.version)
        )
    ).scalar_one_or_none()
    if version is not None:
        await session.execute(
            insert(document_versions).values(
                kind=kind, key=key, version=version, deleted=True, source=source
            )
        )
    return version


async def exists(session: AsyncSession, kind: Kind, key: str) -> bool:
    found = await session.scalar(
        select(documents.c.version).where(documents.c.kind == kind, documents.c.key == key)
    )
    return found is not None
