"""Publishing events as a producer's outbox relay does, and watching what services
publish: an exclusive queue bound to every routing key."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from pydantic import BaseModel

from shared.messaging.envelope import Envelope
from shared.messaging.topology import declare_exchanges


async def publish(
    channel: AbstractChannel,
    payload: BaseModel,
    *,
    message_id: uuid.UUID | None = None,
    occurred_at: dt.datetime | None = None,
) -> uuid.UUID:
    """Publish an event as a producer's outbox relay does (persistent, confirmed);
    `occurred_at` stands for when the producer decided it (default: now)."""
    event_type: str = payload.TYPE  # type: ignore[attr-defined]
    envelope = Envelope(
        type=event_type,
        correlation_id=f"test-{uuid.uuid4().hex[:8]}",
        payload=payload.model_dump(mode="json"),
        **({"message_id": message_id} if message_id else {}),
        **({"occurred_at": occurred_at} if occurred_at else {}),
    )
    events, _ = await declare_exchanges(channel)
    await events.publish(
        aio_pika.Message(
            envelope.model_dump_json().encode(),
            message_id=str(envelope.message_id),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        ),
        routing_key=event_type,
    )
    return envelope.message_id


class EventCapture:
    def __init__(self, connection: AbstractRobustConnection) -> None:
        self.connection = connection
        self.received: list[dict[str, Any]] = []

    async def start(self, routing_key: str = "#") -> None:
        channel = await self.connection.channel()
        events, _ = await declare_exchanges(channel)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(events, routing_key=routing_key)
        await queue.consume(self._on_message, no_ack=True)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.received.append(orjson.loads(message.body))

    def matching(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [e for e in self.received if predicate(e)]

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 15.0
    ) -> list[dict[str, Any]]:
        """Poll until `count` matching events arrived; fail with what did arrive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.matching(predicate)) < count:
            if loop.time() > deadline:
                raise AssertionError(
                    f"expected {count} matching events within {timeout}s, got "
                    f"{len(self.matching(predicate))}; all: {[e['type'] for e in self.received]}"
                )
            await asyncio.sleep(0.02)
        return self.matching(predicate)


async def capture(amqp_url: str) -> tuple[EventCapture, AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(amqp_url)
    watcher = EventCapture(connection)
    await watcher.start()
    return watcher, connection
