"""One robust AMQP connection per process, with a confirming publisher channel.

`connect_robust` reconnects by itself when the broker returns; callers that publish while
it is away get an exception and try again later (the outbox keeps the message meanwhile).
"""

from __future__ import annotations

import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from shared.messaging.topology import declare_exchanges

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker cannot be reached now; the caller keeps its work and tries again."""


class Broker:
    def __init__(self, url: str) -> None:
        self.url = url
        self.connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self.events: AbstractExchange | None = None
        self.dlx: AbstractExchange | None = None

    async def connect(self) -> None:
        """Connect once at start-up; later drops are healed by the robust connection."""
        self.connection = await aio_pika.connect_robust(self.url, reconnect_interval=1.0)
        self._publish_channel = await self.connection.channel(publisher_confirms=True)
        self.events, self.dlx = await declare_exchanges(self._publish_channel)

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
        await target.publish(message, routing_key=routing_key, mandatory=False)

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
            self.connection = None
