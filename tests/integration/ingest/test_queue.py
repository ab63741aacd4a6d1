"""The `ehoks.changes` queue (api.md): the same use cases, and nothing silently dropped."""

from __future__ import annotations

import json
from typing import Any

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage

from tests.integration.ingest.conftest import stored_versions
from tests.support.events import EventCapture
from tests.support.examples import EHOKS_EXAMPLES
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.services import Running

EXAMPLE = EHOKS_EXAMPLES / "hoksit.json"


async def send(infra: Infra, body: bytes) -> None:
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key="ehoks.changes",
        )


async def invalid_messages(infra: Infra) -> list[AbstractIncomingMessage]:
    """Drain `ehoks.changes.invalid` (messages are acked: each test reads its own)."""
    got: list[AbstractIncomingMessage] = []
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue("ehoks.changes.invalid")
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            got.append(message)
    return got


async def test_upsert_and_delete_messages_are_applied_once(
    ingest: Running, infra: Infra, events: EventCapture, new_id: Any
) -> None:
    hoks_id = new_id()
    document = json.loads(EXAMPLE.read_text())
    upsert = orjson.dumps({"type": "hoks.upsert", "hoks_id": hoks_id, "document": document})
    await send(infra, upsert)
    await send(infra, upsert)  # a redelivery or an upstream retry
    await events.wait_for(
        lambda e: e["type"] == "hoks.changed" and e["payload"]["hoks_id"] == hoks_id
    )
    await send(infra, orjson.dumps({"type": "hoks.delete", "hoks_id": hoks_id}))
    await events.wait_for(
        lambda e: e["type"] == "hoks.deleted" and e["payload"]["hoks_id"] == hoks_id
    )
    assert await stored_versions(ingest, str(hoks_id)) == 2, "one upsert and one deletion"


@pytest.mark.parametrize(
    ("body", "error_names"),
    [
        (b"{not json", "body"),
        (b'{"type": "hoks.upsert", "hoks_id": "x", "document": {}}', "hoks_id"),
        (b'{"type": "hoks.rename", "hoks_id": 1}', "type"),
        (b'{"type": "opiskeluoikeus.upsert", "document": {}}', "oid"),
        (
            b'{"type": "hoks.upsert", "hoks_id": 5, "document": {"oppija-oid": "1.2.3"}}',
            "opiskeluoikeus-oid",
        ),
    ],
    ids=["malformed-json", "bad-hoks-id", "unknown-type", "missing-oid", "invalid-document"],
)
async def test_invalid_messages_go_to_the_invalid_queue_with_their_error(
    ingest: Running, infra: Infra, body: bytes, error_names: str
) -> None:
    await invalid_messages(infra)
    await send(infra, body)
    found = await eventually(
        lambda: invalid_messages(infra),
        lambda got: len(got) > 0,
        what="message in ehoks.changes.invalid",
    )
    [message] = found
    assert message.body == body, "the original message is kept for replay"
    error = str((message.headers or {})["x-error"])
    assert error_names in error


async def test_a_delete_of_a_hoks_never_stored_is_set_aside_as_http_answers_404(
    ingest: Running, infra: Infra, new_id: Any
) -> None:
    """The consumer and the route share the use case: its "not known" is HTTP's 404 and
    the queue's invalid message, never a silent ack."""
    hoks_id = new_id()
    assert (await ingest.client.delete(f"/api/v1/hoks/{hoks_id}")).status_code == 404
    await invalid_messages(infra)
    body = orjson.dumps({"type": "hoks.delete", "hoks_id": hoks_id})
    await send(infra, body)
    [message] = await eventually(
        lambda: invalid_messages(infra),
        lambda got: len(got) > 0,
        what="message in ehoks.changes.invalid",
    )
    assert message.body == body
    assert f"HOKS {hoks_id} is not known" in str((message.headers or {})["x-error"])
    assert await stored_versions(ingest, str(hoks_id)) == 0
