"""One robust AMQP connection per process, with a confirming publisher channel.

`connect_robust` reconnects by itself when the broker returns; callers that publish while
it is away get an exception and try again later (the outbox keeps the message meanwhile).
Connecting and publishing are bounded in time: a broker whose sockets stay open but say
nothing must not hold a caller (and the outbox rows it has locked) for ever.
On every (re)connect the whole topology is declared (`topology.TOPOLOGY`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from shared.messaging.topology import declare_exchanges, declare_topology

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker cannot be reached now; the caller keeps its work and tries again."""


class Broker:
    def __init__(
        self,
        url: str,
        *,
        retry_delays_ms: Sequence[int] = (),
        connect_timeout: float = 10.0,
        publish_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.retry_delays_ms = tuple(retry_delays_ms)
        self.connect_timeout = connect_timeout
        self.publish_timeout = publish_timeout
        self.connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self.events: AbstractExchange | None = None
        self.dlx: AbstractExchange | None = None

    async def connect(self) -> None:
        """Connect once at start-up and declare the whole topology; later drops are healed
        by the robust connection, whose channel redeclares what was declared through it."""
        connection = await aio_pika.connect_robust(
            self.url, reconnect_interval=1.0, timeout=self.connect_timeout
        )
        try:
            channel = await connection.channel(publisher_confirms=True)
            self.events, self.dlx = await declare_exchanges(channel)
            await declare_topology(channel, self.retry_delays_ms)
        except BaseException:
            await connection.close()
            raise
        self.connection, self._publish_channel = connection, channel

    @property
    def connected(self) -> bool:
        return (
            self.connection is not None
            and not self.connection.is_closed
            and self._publish_channel is not None
            and not self._publish_channel.is_closed
        )

    async def channel(self, prefetch: int) -> AbstractChannel:
        if self.connection is None:
            raise BrokerUnavailable("not connected")
        channel = await self.connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    @property
    def publish_channel(self) -> AbstractChannel:
        if self._publish_channel is None:
            raise BrokerUnavailable("not connected")
        return self._publish_channel

    async def publish(
        self,
        body: bytes,
        routing_key: str,
        *,
        exchange: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """Publish one persistent message and wait for the broker's confirm.

        `exchange=None` is the events exchange; `""` the default exchange (straight to a
        queue by name).
        """
        if not self.connected or self.events is None:
            raise BrokerUnavailable("broker connection is down")
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            correlation_id=correlation_id,
            headers=headers or {},
        )
        if exchange is None:
            target = self.events
        elif exchange == "":
            target = self.publish_channel.default_exchange
        else:
            target = await self.publish_channel.get_exchange(exchange, ensure=False)
        await target.publish(
            message, routing_key=routing_key, mandatory=False, timeout=self.publish_timeout
        )

    async def publish_many(self, messages: Sequence[tuple[bytes, str, str]]) -> None:
        """Publish (body, routing key, message id) events to the events exchange, all sent
        at once and their confirms awaited together (pipelined, not one round trip each).
        Raises if any is not confirmed within the publish timeout."""
        if not self.connected or self.events is None:
            raise BrokerUnavailable("broker connection is down")
        events = self.events
        await asyncio.wait_for(
            asyncio.gather(
                *(
                    events.publish(
                        aio_pika.Message(
                            body,
                            content_type="application/json",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            message_id=message_id,
                        ),
                        routing_key=routing_key,
                        mandatory=False,
                    )
                    for body, routing_key, message_id in messages
                )
            ),
            timeout=self.publish_timeout,
        )

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
            self.connection = None
