"""Consumer of `ehoks.changes` (api.md): `hoks.upsert`, `hoks.delete`, `opiskeluoikeus.upsert`.

These messages come from upstream systems without our envelope, so the inbox cannot dedupe
them; they are idempotent by content instead (an unchanged document or a repeated delete
changes nothing). A message that can never be applied goes to `ehoks.changes.invalid`
with its error, never dropped.
"""

from __future__ import annotations

import logging

import orjson
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.domain.canonical import check_storable
from services.ingest.domain.hoks import parse_hoks
from services.ingest.domain.opiskeluoikeus import parse_opiskeluoikeus
from services.ingest.domain.validation import DocumentInvalid
from services.ingest.usecases import delete_hoks, upsert_hoks, upsert_opiskeluoikeus
from shared.db import Database
from shared.messaging.consumer import MessageHandler, MessageRejected
from shared.messaging.topology import EHOKS_CHANGES

log = logging.getLogger(__name__)

CHANGES_QUEUE = EHOKS_CHANGES
INVALID_QUEUE = "ehoks.changes.invalid"
SOURCE = "queue"


def _hoks_id(message: dict[str, object]) -> int:
    value = message.get("hoks_id")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MessageRejected("hoks_id: must be a positive integer")
    return value


def _storable_json(document: object) -> str:
    raw = orjson.dumps(document)
    check_storable(raw)
    return raw.decode()


def change_handler(db: Database) -> MessageHandler:
    """The handler of `ehoks.changes`; upserts take their own connection because each is
    one self-committing statement (see `record_version`), deletes use the session."""

    async def handle_change(session: AsyncSession, message: AbstractIncomingMessage) -> None:
        try:
            body = orjson.loads(message.body)
        except orjson.JSONDecodeError as exc:
            raise MessageRejected(f"body: invalid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise MessageRejected("body: must be a JSON object")
        kind = body.get("type")
        try:
            if kind == "hoks.upsert":
                hoks_id = _hoks_id(body)
                document = body.get("document")
                parsed = parse_hoks(hoks_id, document)
                async with db.driver_connection() as conn:
                    await upsert_hoks(conn, parsed, document, _storable_json(document), SOURCE)
            elif kind == "hoks.delete":
                await delete_hoks(session, _hoks_id(body), SOURCE)
            elif kind == "opiskeluoikeus.upsert":
                oid = body.get("oid")
                if not isinstance(oid, str) or not oid:
                    raise MessageRejected("oid: must be a non-empty string")
                document = body.get("document")
                study_right = parse_opiskeluoikeus(oid, document)
                async with db.driver_connection() as conn:
                    await upsert_opiskeluoikeus(
                        conn, study_right, document, _storable_json(document), SOURCE
                    )
            else:
                raise MessageRejected(
                    f"type: must be hoks.upsert, hoks.delete or opiskeluoikeus.upsert, not {kind!r}"
                )
        except DocumentInvalid as exc:
            raise MessageRejected(f"document: {exc}") from exc

    return handle_change
