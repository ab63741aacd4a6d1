"""Watching what services publish: an exclusive queue bound to every routing key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from shared.messaging.topology import declare_exchanges


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
