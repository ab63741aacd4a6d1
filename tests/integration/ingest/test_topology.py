"""The whole topology is declared at every service's start: an event published before its
consumer first runs waits in the consumer's queue; redeclaring with other settings works."""

from __future__ import annotations

from typing import Any

import aio_pika
import orjson

from shared.messaging.topology import TOPOLOGY, declare_topology
from tests.integration.ingest.test_http import EHOKS, JSON
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.services import Running


async def test_an_event_waits_in_the_queue_of_a_consumer_not_yet_running(
    ingest: Running, infra: Infra, new_id: Any
) -> None:
    hoks_id = new_id()
    response = await ingest.client.put(
        f"/api/v1/hoks/{hoks_id}", content=EHOKS[0].read_bytes(), headers=JSON
    )
    assert response.status_code == 201
    connection = await aio_pika.connect(infra.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue("bundler.events", ensure=True)
        found: list[dict[str, Any]] = []

        async def take() -> list[dict[str, Any]]:
            while (message := await queue.get(fail=False)) is not None:
                await message.ack()
                event = orjson.loads(message.body)
                if event["payload"].get("hoks_id") == hoks_id:
                    found.append(event)
            return found

        await eventually(take, lambda events: len(events) == 1, what="event in bundler.events")
        assert found[0]["type"] == "hoks.changed"
    finally:
        await connection.close()


async def test_redeclaring_with_other_retry_delays_does_not_fail(infra: Infra) -> None:
    connection = await aio_pika.connect(infra.amqp_url)
    try:
        channel = await connection.channel()
        await declare_topology(channel, [100, 200])
        await declare_topology(channel, [300])
        assert not channel.is_closed
        for spec in TOPOLOGY:
            await channel.get_queue(spec.name, ensure=True)
            await channel.get_queue(spec.dlq, ensure=True)
    finally:
        await connection.close()
