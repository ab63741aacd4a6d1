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

from services.ingest.domain.canonical import decode_json
from services.ingest.domain.validation import DocumentInvalid
from services.ingest.usecases import Ingest, NotKnown
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


def _oid(message: dict[str, object]) -> str:
    value = message.get("oid")
    if not isinstance(value, str) or not value:
        raise MessageRejected("oid: must be a non-empty string")
    return value


def change_handler(ingest: Ingest) -> MessageHandler:
    """The handler of `ehoks.changes`: the same use cases as the HTTP API. Each commits on
    its own (an upsert is one self-committing statement), so the consumer's session is
    left unused; a redelivery after the commit changes nothing."""

    async def handle_change(_: AsyncSession, message: AbstractIncomingMessage) -> None:
        try:
            body = decode_json(message.body)
        except DocumentInvalid as exc:
            raise MessageRejected(f"body: {exc}") from exc
        if not isinstance(body, dict):
            raise MessageRejected("body: must be a JSON object")
        kind = body.get("type")
        try:
            if kind == "hoks.upsert":
                document = body.get("document")
                await ingest.accept_hoks(
                    hoks_id=_hoks_id(body),
                    document=document,
                    raw=orjson.dumps(document),
                    source=SOURCE,
                )
            elif kind == "hoks.delete":
                await ingest.delete_hoks(hoks_id=_hoks_id(body), source=SOURCE)
            elif kind == "opiskeluoikeus.upsert":
                document = body.get("document")
                await ingest.accept_opiskeluoikeus(
                    oid=_oid(body), document=document, raw=orjson.dumps(document), source=SOURCE
                )
            else:
                raise MessageRejected(
                    f"type: must be hoks.upsert, hoks.delete or opiskeluoikeus.upsert, not {kind!r}"
                )
        except DocumentInvalid as exc:
            raise MessageRejected(f"document: {exc}") from exc
        except NotKnown as exc:
            raise MessageRejected(f"hoks_id: {exc}") from exc

    return handle_change
