"""Replay: publish the latest stored version of documents again, for a new or recovered
consumer (docs/events.md, "Replay").

Each event is re-derived from the stored document with the same parse functions and the
stored version number, and staged through the outbox in batches; the running service's
relay publishes them. Consumers ignore versions they already have, so a replay is safe to
repeat. A deleted HOKS replays `hoks.deleted`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, or_, select, tuple_

from services.ingest.domain.hoks import hoks_changed, hoks_deleted, parse_hoks
from services.ingest.domain.opiskeluoikeus import opiskeluoikeus_changed, parse_opiskeluoikeus
from services.ingest.domain.validation import DocumentInvalid
from services.ingest.store.documents import Kind
from services.ingest.store.tables import document_versions, documents, outbox
from shared.db import Database
from shared.events import HoksChanged, HoksDeleted, OpiskeluoikeusChanged
from shared.messaging.outbox import add_event


@dataclass(frozen=True)
class Selection:
    """What to replay: everything, documents changed since a date, or given ids."""

    since: dt.date | None = None
    hoks_ids: Sequence[int] = ()
    oids: Sequence[str] = ()
    everything: bool = False


@dataclass
class Counts:
    by_type: dict[str, int] = field(default_factory=dict)
    unreadable: int = 0

    def add(self, event_type: str) -> None:
        self.by_type[event_type] = self.by_type.get(event_type, 0) + 1


def _where(selection: Selection) -> ColumnElement[bool] | None:
    if selection.everything:
        return None
    parts: list[ColumnElement[bool]] = []
    if selection.since is not None:
        since = dt.datetime.combine(selection.since, dt.time(), dt.UTC)
        parts.append(documents.c.updated_at >= since)
    if selection.hoks_ids:
        parts.append(
            and_(
                documents.c.kind == Kind.HOKS,
                documents.c.key.in_([str(i) for i in selection.hoks_ids]),
            )
        )
    if selection.oids:
        parts.append(
            and_(documents.c.kind == Kind.OPISKELUOIKEUS, documents.c.key.in_(selection.oids))
        )
    if not parts:
        raise ValueError("nothing selected: give --all, --since, --hoks or --opiskeluoikeus")
    return or_(*parts)


async def replay(db: Database, selection: Selection, *, batch_size: int = 500) -> Counts:
    """Stage one event per selected document's latest version; one transaction per batch."""
    condition = _where(selection)
    counts = Counts()
    after: tuple[str, str] = ("", "")
    while True:
        query = (
            select(
                documents.c.kind,
                documents.c.key,
                documents.c.version,
                documents.c.deleted,
                document_versions.c.document,
            )
            .join(
                document_versions,
                and_(
                    document_versions.c.kind == documents.c.kind,
                    document_versions.c.key == documents.c.key,
                    document_versions.c.version == documents.c.version,
                ),
            )
            .where(tuple_(documents.c.kind, documents.c.key) > after)
            .order_by(documents.c.kind, documents.c.key)
            .limit(batch_size)
        )
        if condition is not None:
            query = query.where(condition)
        async with db.transaction() as session:
            rows = (await session.execute(query)).all()
            for row in rows:
                try:
                    if row.kind == Kind.HOKS and row.deleted:
                        payload: HoksChanged | HoksDeleted | OpiskeluoikeusChanged = hoks_deleted(
                            int(row.key), row.version
                        )
                    elif row.kind == Kind.HOKS:
                        parsed = parse_hoks(int(row.key), row.document)
                        payload = hoks_changed(parsed, row.version)
                    elif row.deleted:
                        continue
                    else:
                        study_right = parse_opiskeluoikeus(row.key, row.document)
                        payload = opiskeluoikeus_changed(study_right, row.version)
                except DocumentInvalid:
                    # Stored under older rules that no longer accept it: reported, skipped.
                    counts.unreadable += 1
                    continue
                await add_event(session, outbox, payload.TYPE, payload)
                counts.add(payload.TYPE)
        if len(rows) < batch_size:
            return counts
        after = (rows[-1].kind, rows[-1].key)
