"""Exchanges and queues (architecture.md, "Messages"): the whole topology, in one table.

One durable topic exchange for events and one dead-letter exchange. Each consumer has a
durable quorum queue bound to the routing keys it needs, a ladder of delay queues for
retries (each dead-letters back into the main queue when its TTL runs out) and a
dead-letter queue for messages that failed every attempt.

Every service declares all of `TOPOLOGY` when its broker connection opens, not only its
own queues: an event published before its consumer first runs waits in that consumer's
queue instead of going to an exchange with nothing bound (docs/decisions.md).

Queue arguments never change once a queue exists (a redeclare with other arguments fails
with PRECONDITION_FAILED and closes the channel): main queues carry only their type and
their fixed dead-letter target; attempts are counted in our own `x-attempts` header;
retry delays are in the retry queues' names, so new delays are new queues. Anything an
operator may want to tune later on a live queue (a `delivery-limit`, a length limit) is a
RabbitMQ policy, which applies without a redeclare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aiormq.abc import FieldTable

EVENTS_EXCHANGE = "tyoelamapalaute"
DEAD_LETTER_EXCHANGE = "tyoelamapalaute.dlx"


@dataclass(frozen=True)
class QueueSpec:
    """A consumer's queue: its name and the routing keys bound to it on the events exchange.

    `bind_events=False` is for command queues that producers publish to directly through
    the default exchange (for example `ehoks.changes`). `invalid_queue` is where messages
    that can never be applied are set aside, when not the dead-letter queue.
    """

    name: str
    routing_keys: tuple[str, ...] = ()
    bind_events: bool = True
    invalid_queue: str | None = None

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"

    def retry_queue(self, delay_ms: int) -> str:
        return f"{self.name}.retry.{delay_ms}ms"


# The one table of who consumes what (docs/events.md, "Queues"; architecture.md).
EHOKS_CHANGES = QueueSpec("ehoks.changes", bind_events=False, invalid_queue="ehoks.changes.invalid")
BUNDLER_EVENTS = QueueSpec(
    "bundler.events",
    (
        "hoks.changed",
        "hoks.deleted",
        "opiskeluoikeus.changed",
        "nippu.linked",
        "tpk_nippu.linked",
        "send.status",
        "survey.status",
    ),
)
ARVO_ADAPTER_EVENTS = QueueSpec(
    "arvo_adapter.events",
    (
        "nippu.ready",
        "tpk_nippu.ready",
        "arvo.status_update",
        "jakso.kesto_changed",
        "jakso.cancelled",
    ),
)
SENDER_EVENTS = QueueSpec("sender.events", ("send.requested",))
TOPOLOGY: tuple[QueueSpec, ...] = (
    EHOKS_CHANGES,
    BUNDLER_EVENTS,
    ARVO_ADAPTER_EVENTS,
    SENDER_EVENTS,
)

_QUORUM: FieldTable = {"x-queue-type": "quorum"}


async def declare_exchanges(channel: AbstractChannel) -> tuple[AbstractExchange, AbstractExchange]:
    events = await channel.declare_exchange(
        EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    dlx = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    return events, dlx


async def declare_queue(
    channel: AbstractChannel, spec: QueueSpec, retry_delays_ms: Sequence[int]
) -> AbstractQueue:
    """Declare a consumer's queue with its retry ladder and dead-letter queue; idempotent."""
    events, dlx = await declare_exchanges(channel)
    queue = await channel.declare_queue(
        spec.name,
        durable=True,
        arguments={
            **_QUORUM,
            # Fixed for the queue's life: where the broker itself dead-letters (a policy's
            # delivery-limit, a rejected message) is always this queue's DLQ.
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": spec.name,
        },
    )
    if spec.bind_events:
        for key in spec.routing_keys:
            await queue.bind(events, routing_key=key)
    dead = await channel.declare_queue(spec.dlq, durable=True, arguments=_QUORUM)
    await dead.bind(dlx, routing_key=spec.name)
    if spec.invalid_queue is not None:
        await channel.declare_queue(spec.invalid_queue, durable=True, arguments=_QUORUM)
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


async def declare_topology(
    channel: AbstractChannel,
    retry_delays_ms: Sequence[int],
    specs: Sequence[QueueSpec] = TOPOLOGY,
) -> None:
    """Declare every queue of the system with its bindings; idempotent."""
    for spec in specs:
        await declare_queue(channel, spec, retry_delays_ms)
