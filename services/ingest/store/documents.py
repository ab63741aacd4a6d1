"""Recording document versions: the one place that decides "new, changed or the same"."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import asyncpg
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.store.tables import SCHEMA, document_versions, documents, outbox
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import staging_params, staging_sql


class Kind(StrEnum):
    HOKS = "hoks"
    OPISKELUOIKEUS = "opiskeluoikeus"


@dataclass(frozen=True)
class Recorded:
    version: int
    created: bool
    changed: bool


# Positional parameters: $1 kind, $2 key, $3 content_hash, $4 document, $5 source, then the
# event's from $6 (`staging_params`), its `payload.version` the version assigned.
STAGE_EVENT = staging_sql(
    outbox, first_param=6, rows_from="latest", payload_from={"version": "version"}
)
RECORD_VERSION = f"""
    WITH latest AS (
        INSERT INTO {SCHEMA}.documents AS d (kind, key, version, content_hash, deleted)
        VALUES ($1, $2, 1, $3, false)
        ON CONFLICT (kind, key) DO UPDATE
            SET version = d.version + 1, content_hash = excluded.content_hash,
                deleted = false, updated_at = now()
            WHERE d.content_hash IS DISTINCT FROM excluded.content_hash OR d.deleted
        RETURNING d.version
    ), stored AS (
        INSERT INTO {SCHEMA}.document_versions (kind, key, version, content_hash, document, source)
        SELECT $1, $2, version, $3, $4::json, $5 FROM latest
    ), staged AS (
        {STAGE_EVENT}
    )
    SELECT version FROM latest
"""
CURRENT_VERSION = f"SELECT version FROM {SCHEMA}.documents WHERE kind = $1 AND key = $2"


async def record_version(
    conn: asyncpg.Connection,
    *,
    kind: Kind,
    key: str,
    content_hash: str,
    document_json: str,
    source: str,
    event: Envelope,
) -> Recorded:
    """Store a document and stage its event, unless the latest version has the same content.

    One statement, so one round trip and atomic on its own: the upsert bumps the version
    only when the hash differs or the document had been deleted, and holds the row lock
    until commit, so concurrent writers of one document queue up and each sees the other's
    result. The event's `payload.version` is filled in by the statement from the version
    it assigned (`event` carries a placeholder). Raw asyncpg: this is the ingest's hot path.
    """
    version: int | None = await conn.fetchval(
        RECORD_VERSION,
        kind.value,
        key,
        content_hash,
        document_json,
        source,
        *staging_params(event),
    )
    if version is None:
        current: int = await conn.fetchval(CURRENT_VERSION, kind.value, key)
        return Recorded(version=current, created=False, changed=False)
    return Recorded(version=version, created=version == 1, changed=True)


async def record_deletion(
    session: AsyncSession, *, kind: Kind, key: str, source: str
) -> int | None:
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


async def exists(session: AsyncSession, *, kind: Kind, key: str) -> bool:
    found = await session.scalar(
        select(documents.c.version).where(documents.c.kind == kind, documents.c.key == key)
    )
    return found is not None
