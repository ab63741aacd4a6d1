"""The whole topology is declared at every service's start: an event published before its
consumer first runs waits in the consumer's queue; redeclaring with other settings works."""

from __future__ import annotations

from typing import Any

import aio_pika
import orjson

from services.ingest.app import create_service
from shared.messaging.topology import TOPOLOGY, declare_topology
from tests.integration.ingest.conftest import ingest_settings
from tests.integration.ingest.test_http import EHOKS, JSON
from tests.support.infra import Infra, create_infra, destroy_infra
from tests.support.polling import eventually
from tests.support.services import UPSTREAM_TOKEN, run_in_process


async def test_an_event_waits_in_the_queue_of_a_consumer_not_yet_running(new_id: Any) -> None:
    # A vhost of its own: in the session's, other tests' bundlers consume bundler.events.
    own = await create_infra()
    try:
        async with run_in_process(create_service(ingest_settings(own))) as ingest:
            hoks_id = new_id()
            response = await ingest.client.put(
                f"/api/v1/hoks/{hoks_id}",
                content=EHOKS[0].read_bytes(),
                headers={**JSON, "authorization": f"Bearer {UPSTREAM_TOKEN}"},
            )
            assert response.status_code == 201
            await _expect_waiting_event(own, hoks_id)
    finally:
        await destroy_infra(own)


async def _expect_waiting_event(infra: Infra, hoks_id: int) -> None:
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
