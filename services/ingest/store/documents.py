"""Recording document versions: the one place that decides "new, changed or the same"."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.store.tables import document_versions, documents


class Kind(StrEnum):
    HOKS = "hoks"
    OPISKELUOIKEUS = "opiskeluoikeus"


@dataclass(frozen=True)
class Recorded:
    version: int
    created: bool
    changed: bool


async def record_version(
    session: AsyncSession,
    kind: Kind,
    key: str,
    content_hash: str,
    document: object,
    source: str,
) -> Recorded:
    """Store a document unless the latest version has the same content.

    One statement decides: the upsert bumps the version only when the hash differs or the
    document had been deleted, and holds the row lock until commit, so concurrent writers
    of one document queue up and each sees the other's result.
    """
    stmt = pg_insert(documents).values(
        kind=kind, key=key, version=1, content_hash=content_hash, deleted=False
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=[documents.c.kind, documents.c.key],
        set_={
            "version": documents.c.version + 1,
            "content_hash": stmt.excluded.content_hash,
            "deleted": False,
            "updated_at": func.now(),
        },
        where=(documents.c.content_hash.is_distinct_from(stmt.excluded.content_hash))
        | documents.c.deleted,
    ).returning(documents.c.version)
    version: int | None = (await session.execute(upsert)).scalar_one_or_none()
    if version is None:
        current = await session.scalar(
            select(documents.c.version).where(documents.c.kind == kind, documents.c.key == key)
        )
        assert current is not None
        return Recorded(version=current, created=False, changed=False)
    await session.execute(
        insert(document_versions).values(
            kind=kind,
            key=key,
            version=version,
            content_hash=content_hash,
            document=document,
            source=source,
        )
    )
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
