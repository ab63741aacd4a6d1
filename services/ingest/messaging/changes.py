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
from shared.messaging.consumer import MessageRejected
from shared.messaging.topology import QueueSpec

log = logging.getLogger(__name__)

CHANGES_QUEUE = QueueSpec("ehoks.changes", bind_events=False)
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
            await upsert_hoks(
                session, parse_hoks(hoks_id, document), document, _storable_json(document), SOURCE
            )
        elif kind == "hoks.delete":
            await delete_hoks(session, _hoks_id(body), SOURCE)
        elif kind == "opiskeluoikeus.upsert":
            oid = body.get("oid")
            if not isinstance(oid, str) or not oid:
                raise MessageRejected("oid: must be a non-empty string")
            document = body.get("document")
            await upsert_opiskeluoikeus(
                session,
                parse_opiskeluoikeus(oid, document),
                document,
                _storable_json(document),
                SOURCE,
            )
        else:
            raise MessageRejected(
                f"type: must be hoks.upsert, hoks.delete or opiskeluoikeus.upsert, not {kind!r}"
            )
    except DocumentInvalid as exc:
        raise MessageRejected(f"document: {exc}") from exc
