"""Consumers: apply a message in one database transaction, then ack.

A failure is retried through the queue's delay ladder (growing delays), and after the
last attempt the message goes to the dead-letter queue with its error. A message that can
never succeed (`MessageRejected`) skips the retries. Acking only after the commit means a
crash redelivers the message; the handler's idempotency (inbox or natural keys) makes
that harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.logging import correlation_id_var
from shared.messaging.broker import Broker
from shared.messaging.envelope import Envelope
from shared.messaging.inbox import claim
from shared.messaging.topology import DEAD_LETTER_EXCHANGE, QueueSpec, declare_queue

log = logging.getLogger(__name__)

HANDLED = Counter("messages_handled_total", "Messages consumed", ["queue", "outcome"])
ATTEMPTS_HEADER = "x-attempts"

MessageHandler = Callable[[AsyncSession, AbstractIncomingMessage], Awaitable[None]]
EventHandler = Callable[[AsyncSession, Envelope], Awaitable[None]]


class MessageRejected(Exception):
    """The message is malformed or meaningless: retrying cannot help."""


class Consumer:
    def __init__(
        self,
        db: Database,
        broker: Broker,
        spec: QueueSpec,
        handler: MessageHandler,
        *,
        prefetch: int,
        max_attempts: int,
        retry_delays_ms: list[int],
        rejected_queue: str | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.broker = broker
        self.spec = spec
        self.handler = handler
        self.prefetch = prefetch
        self.max_attempts = max_attempts
        self.retry_delays_ms = retry_delays_ms
        self.rejected_queue = rejected_queue or spec.invalid_queue
        self.after_commit = after_commit
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        channel = await self.broker.channel(self.prefetch)
        self._queue = await declare_queue(channel, self.spec, self.retry_delays_ms)
        if self.rejected_queue is not None and self.rejected_queue != self.spec.invalid_queue:
            await channel.declare_queue(
                self.rejected_queue, durable=True, arguments={"x-queue-type": "quorum"}
            )
        self._tag = await self._queue.consume(self.process)

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop taking new messages and give in-flight ones time to commit and ack; one
        still running after that is redelivered later, which its idempotency makes safe."""
        if self._queue is not None and self._tag is not None:
            await self._queue.cancel(self._tag)
            self._tag = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=grace_seconds)

    async def process(self, message: AbstractIncomingMessage) -> None:
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._process(message)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _process(self, message: AbstractIncomingMessage) -> None:
        correlation_id_var.set(message.correlation_id)
        try:
            async with self.db.transaction() as session:
                await self.handler(session, message)
        except MessageRejected as exc:
            await self._set_aside(message, str(exc), self.rejected_queue or self.spec.dlq)
            HANDLED.labels(self.spec.name, "rejected").inc()
            return
        except Exception as exc:
            await self._retry(message, exc)
            return
        if self.after_commit is not None:
            self.after_commit()
        await message.ack()
        HANDLED.labels(self.spec.name, "ok").inc()

    async def _retry(self, message: AbstractIncomingMessage, exc: Exception) -> None:
        attempts = int((message.headers or {}).get(ATTEMPTS_HEADER, 0) or 0) + 1  # type: ignore[arg-type]
        error = f"{type(exc).__name__}: {exc}"[:1000]
        if attempts >= self.max_attempts:
            await self._set_aside(message, error, self.spec.dlq)
            HANDLED.labels(self.spec.name, "dead_lettered").inc()
            return
        delay = self.retry_delays_ms[min(attempts, len(self.retry_delays_ms)) - 1]
        log.warning(
            "message failed; retrying",
            extra={"queue": self.spec.name, "attempt": attempts, "delay_ms": delay, "error": error},
        )
        try:
            await self.broker.publish(
                message.body,
                self.spec.retry_queue(delay),
                exchange="",
                message_id=message.message_id,
                correlation_id=message.correlation_id,
                headers={
                    **dict(message.headers or {}),
                    ATTEMPTS_HEADER: attempts,
                    "x-last-error": error,
                },
            )
        except Exception:
            log.warning("could not schedule retry; requeueing", exc_info=True)
            await message.nack(requeue=True)
            return
        await message.ack()
        HANDLED.labels(self.spec.name, "retried").inc()

    async def _set_aside(self, message: AbstractIncomingMessage, error: str, queue: str) -> None:
        """Move a message to its dead-letter or invalid queue, with the error attached.

        One log line per message set aside, for operators: the queues and the message id,
        never the body (it may hold personal data); the error names fields, not values.
        """
        headers: dict[str, Any] = {
            **dict(message.headers or {}),
            "x-error": error[:1000],
            "x-original-queue": self.spec.name,
        }
        exchange, routing_key = (
            (DEAD_LETTER_EXCHANGE, self.spec.name) if queue == self.spec.dlq else ("", queue)
        )
        try:
            await self.broker.publish(
                message.body,
                routing_key,
                exchange=exchange,
                message_id=message.message_id,
                correlation_id=message.correlation_id,
                headers=headers,
            )
        except Exception:
            log.warning("could not set message aside; requeueing", exc_info=True)
            await message.nack(requeue=True)
            return
        await message.ack()
        log.error(
            "message dead-lettered" if queue == self.spec.dlq else "message set aside",
            extra={
                "queue": self.spec.name,
                "to_queue": queue,
                "message_id": message.message_id,
                "error": error[:1000],
            },
        )


def event_handler(inbox: Table, handlers: Mapping[str, EventHandler]) -> MessageHandler:
    """Decode the envelope, skip what the inbox has seen, dispatch by `type`."""

    async def handle(session: AsyncSession, message: AbstractIncomingMessage) -> None:
        try:
            envelope = Envelope.model_validate_json(message.body)
        except ValidationError as exc:
            raise MessageRejected(
                f"invalid envelope: {exc.errors(include_url=False, include_input=False)}"
            ) from exc
        correlation_id_var.set(envelope.correlation_id)
        handler = handlers.get(envelope.type)
        if handler is None:
            raise MessageRejected(f"no handler for type {envelope.type!r}")
        if await claim(session, inbox, envelope.message_id, envelope.type):
            await handler(session, envelope)

    return handle
