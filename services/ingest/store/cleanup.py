"""P1 in the ingest: the content of document versions nothing reads any more.

A version is superseded when a later version of the same document exists (a deletion is
a version too, so every content version of a deleted document is superseded by it).
Nothing reads a superseded version's content: "unchanged" compares with `documents`'
hash of the latest version, and a replay publishes the latest version. Once superseded
longer than the retention, its content is removed; its kind, key, number, hash, source
and times stay, so the version history stays whole. The latest version keeps its
content: the bundler may need it again (replay).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.store.tables import document_versions

_successor = document_versions.alias("successor")


async def remove_superseded_content(
    session: AsyncSession,
    *,
    superseded_before: dt.datetime,
    after_id: int,
    batch_size: int,
    now: dt.datetime,
) -> list[int]:
    """One batch of versions whose successor was received before `superseded_before`
    losing their content: at most `batch_size`, ids above `after_id` (a run reads the
    table once however many batches it takes). Their ids; none when nothing is left."""
    batch = (
        select(document_versions.c.id)
        .join(
            _successor,
            and_(
                _successor.c.kind == document_versions.c.kind,
                _successor.c.key == document_versions.c.key,
                _successor.c.version == document_versions.c.version + 1,
            ),
        )
        .where(
            document_versions.c.id > after_id,
            document_versions.c.document.is_not(None),
            _successor.c.received_at < superseded_before,
        )
        .order_by(document_versions.c.id)
        .limit(batch_size)
        .with_for_update(of=document_versions)
        .scalar_subquery()
    )
    result = await session.execute(
        update(document_versions)
        .where(document_versions.c.id.in_(batch))
        .values(document=null(), personal_data_removed_at=now)
        .returning(document_versions.c.id)
    )
    return list(result.scalars().all())
