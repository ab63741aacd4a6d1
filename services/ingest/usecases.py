"""The ingest's use cases, the one way in for the HTTP API and the `ehoks.changes` consumer.

Each owns a whole operation: decide (check storable, parse: pure, before any I/O), store
the version and stage its event in the outbox together, then wake the relay. Callers only
translate: a result, or the domain's `DocumentInvalid` or `NotKnown`, into HTTP, or into an acked or
set-aside message. An unchanged document stores nothing and emits nothing, which also
makes redelivered queue messages harmless.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from services.ingest.domain.canonical import check_storable, content_hash
from services.ingest.domain.hoks import hoks_changed, hoks_deleted, parse_hoks
from services.ingest.domain.opiskeluoikeus import opiskeluoikeus_changed, parse_opiskeluoikeus
from services.ingest.store.cleanup import remove_superseded_content
from services.ingest.store.documents import Kind, exists, record_deletion, record_version
from services.ingest.store.documents import Recorded as Accepted
from services.ingest.store.tables import outbox
from shared.clock import HELSINKI
from shared.db import Database
from shared.events import HoksChanged, HoksDeleted, OpiskeluoikeusChanged
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import add_event, build_envelope

__all__ = ["Accepted", "Deleted", "Ingest", "NotKnown"]

# The statement that stores a version writes the version it assigned into the event.
VERSION_PLACEHOLDER = 0


class NotKnown(Exception):
    """The operation names a document never stored (HTTP 404)."""


@dataclass(frozen=True)
class Deleted:
    version: int | None

    @property
    def changed(self) -> bool:
        return self.version is not None


class Ingest:
    """The use cases with what they need; built once per process with its `Service`.

    `max_body_bytes` is the largest document accepted (api.md: 413 beyond), here so that a
    route needs this one dependency: each costs per request.
    """

    def __init__(
        self, *, db: Database, wake_relay: Callable[[], None], max_body_bytes: int
    ) -> None:
        self.db = db
        self.wake_relay = wake_relay
        self.max_body_bytes = max_body_bytes

    async def accept_hoks(
        self, *, hoks_id: int, document: object, raw: bytes, source: str
    ) -> Accepted:
        """Store a HOKS version; `hoks.changed` carries its normalised jaksot (J1), not
        the document. `raw` is the document as received, stored as it is."""
        check_storable(raw)
        parsed = parse_hoks(hoks_id, document)
        event = build_envelope(HoksChanged.TYPE, hoks_changed(parsed, VERSION_PLACEHOLDER))
        return await self._record(Kind.HOKS, str(hoks_id), document, raw, source, event)

    async def accept_opiskeluoikeus(
        self, *, oid: str, document: object, raw: bytes, source: str
    ) -> Accepted:
        """Store a study-right version; `opiskeluoikeus.changed` carries what rules read."""
        check_storable(raw)
        parsed = parse_opiskeluoikeus(oid, document)
        event = build_envelope(
            OpiskeluoikeusChanged.TYPE, opiskeluoikeus_changed(parsed, VERSION_PLACEHOLDER)
        )
        return await self._record(Kind.OPISKELUOIKEUS, parsed.oid, document, raw, source, event)

    async def delete_hoks(self, *, hoks_id: int, source: str) -> Deleted:
        """E14: the bundler cancels the pending surveys of a deleted HOKS's jaksot. Deleting
        one already deleted changes nothing; one never stored is `NotKnown`."""
        key = str(hoks_id)
        async with self.db.transaction() as session:
            version = await record_deletion(session, kind=Kind.HOKS, key=key, source=source)
            if version is None:
                if not await exists(session, kind=Kind.HOKS, key=key):
                    raise NotKnown(f"HOKS {hoks_id} is not known")
                return Deleted(None)
            await add_event(session, outbox, HoksDeleted.TYPE, hoks_deleted(hoks_id, version))
        self.wake_relay()
        return Deleted(version)

    async def remove_personal_data(
        self, *, date: dt.date, retention_days: int, batch_size: int = 500
    ) -> dict[str, int]:
        """P1: the content of every version superseded (or deleted) since before midnight
        starting `date − retention_days` is removed; the latest versions keep theirs.
        Batches of their own transactions; a second run finds nothing to do."""
        day = date - dt.timedelta(days=retention_days)
        superseded_before = dt.datetime.combine(day, dt.time(), HELSINKI)
        removed, after_id = 0, 0
        while True:
            async with self.db.transaction() as session:
                cleaned = await remove_superseded_content(
                    session,
                    superseded_before=superseded_before,
                    after_id=after_id,
                    batch_size=batch_size,
                    now=dt.datetime.now(dt.UTC),
                )
            if not cleaned:
                return {"versions": removed}
            removed += len(cleaned)
            after_id = max(cleaned)

    async def _record(
        self, kind: Kind, key: str, document: object, raw: bytes, source: str, event: Envelope
    ) -> Accepted:
        async with self.db.driver_connection() as conn:
            accepted = await record_version(
                conn,
                kind=kind,
                key=key,
                content_hash=content_hash(document),
                document_json=raw.decode(),
                source=source,
                event=event,
            )
        if accepted.changed:
            self.wake_relay()
        return accepted
