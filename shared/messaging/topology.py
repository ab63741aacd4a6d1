"""Exchanges and queues (architecture.md, "Messages").

One durable topic exchange for events and one dead-letter exchange. Each consumer has a
durable quorum queue bound to the routing keys it needs, a ladder of delay queues for
retries (each dead-letters back into the main queue when its TTL runs out) and a
dead-letter queue for messages that failed every attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

EVENTS_EXCHANGE = "tyoelamapalaute"
DEAD_LETTER_EXCHANGE = "tyoelamapalaute.dlx"


@dataclass(frozen=True)
class QueueSpec:
    """A consumer's queue: its name and the routing keys bound to it on the events exchange.

    `bind_events=False` is for command queues that producers publish to directly through
    the default exchange (for example `ehoks.changes`).
    """

    name: str
    routing_keys: tuple[str, ...] = ()
    bind_events: bool = True

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"

    def retry_queue(self, delay_ms: int) -> str:
        return f"{self.name}.retry.{delay_ms}ms"


async def declare_exchanges(channel: AbstractChannel) -> tuple[AbstractExchange, AbstractExchange]:
    events = await channel.declare_exchange(
        EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    dlx = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    return events, dlx


async def declare_queue(
    channel: AbstractChannel, spec: QueueSpec, retry_delays_ms: list[int]
) -> AbstractQueue:
    """Declare a consumer's queue with its retry ladder and dead-letter queue; idempotent."""
    events, dlx = await declare_exchanges(channel)
    queue = await channel.declare_queue(
        spec.name,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": spec.name,
        },
    )
    if spec.bind_events:
        for key in spec.routing_keys:
            await queue.bind(events, routing_key=key)
    dead = await channel.declare_queue(spec.dlq, durable=True, arguments={"x-queue-type": "quorum"})
    await dead.bind(dlx, routing_key=spec.name)
    for delay in retry_delays_ms:
        await channel.declare_queue(
            spec.retry_queue(delay),
            durable=True,
            arguments={
                "x-message-ttl": delay,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": spec.name,
            },
        )
    return queue
