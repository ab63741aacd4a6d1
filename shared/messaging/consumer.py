"""Consumers: apply messages in a database transaction, then ack.

A failure is retried through the queue's delay ladder (growing delays), and after the
last attempt the message goes to the dead-letter queue with its error. A message that can
never succeed (`MessageRejected`) skips the retries. Acking only after the commit means a
crash redelivers the message; the handler's idempotency (inbox or natural keys) makes
that harmless.

A consumer of our own events (`event_handler`, `batch_size` > 1) applies the messages
that have arrived together in one transaction: their inbox claims in one statement, their
handlers in one savepoint; should a handler fail, that savepoint is undone and the others
applied again each in a savepoint of its own, so a message that fails is undone alone and
gets its retry or dead-lettering while the others commit; all are acked after the commit. One
commit per batch instead of per message is what lets a consumer keep up with the relay
(bench/relay.py). Should the commit itself fail, each message is applied alone, as a
one-message consumer does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database, Savepoints
from shared.logging import correlation_id_var
from shared.messaging.broker import Broker
from shared.messaging.envelope import Envelope
from shared.messaging.inbox import claim, claim_many, release
from shared.messaging.topology import DEAD_LETTER_EXCHANGE, QueueSpec, declare_queue

log = logging.getLogger(__name__)

HANDLED = Counter("messages_handled_total", "Messages consumed", ["queue", "outcome"])
ATTEMPTS_HEADER = "x-attempts"

MessageHandler = Callable[[AsyncSession, AbstractIncomingMessage], Awaitable[None]]
EventHandler = Callable[[AsyncSession, Envelope], Awaitable[None]]


class MessageRejected(Exception):
    """The message is malformed or meaningless: retrying cannot help."""


Payload = TypeVar("Payload", bound=BaseModel)


def payload_of(model: type[Payload], envelope: Envelope) -> Payload:
    """The envelope's payload as `model`; one that fails it can never succeed and is set
    aside at once, the error naming the fields but never their values (payloads hold
    addresses)."""
    try:
        return model.model_validate(envelope.payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise MessageRejected(f"invalid {envelope.type} payload: {errors}") from exc


# What applying one message of a batch came to: None when applied (or already applied
# before), else the exception that undid it.
Outcome = Exception | None


@runtime_checkable
class BatchMessageHandler(Protocol):
    """A message handler that can also apply several messages in one transaction."""

    async def __call__(self, session: AsyncSession, message: AbstractIncomingMessage) -> None:
        """Apply one message; raise to have it retried or set aside."""

    async def apply_batch(
        self, session: AsyncSession, messages: Sequence[AbstractIncomingMessage]
    ) -> list[Outcome]:
        """Apply each message in the session's transaction, one outcome per message in
        order; a message that fails leaves no trace in the transaction. Raises only when
        the transaction itself is lost."""


class Consumer:
    """Consumes one queue. With `batch_size` 1 each delivery is applied in a transaction of
    its own, up to `prefetch` at a time. With more, deliveries are handed to
    `prefetch // batch_size` workers (at least one), each applying what has arrived, up to
    `batch_size` messages, in one transaction; the handler must then be a
    `BatchMessageHandler`."""

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
        batch_size: int = 1,
    ) -> None:
        if batch_size > 1 and not isinstance(handler, BatchMessageHandler):
            raise ValueError("a batch_size above 1 needs a handler that applies batches")
        self.db = db
        self.broker = broker
        self.spec = spec
        self.handler = handler
        self.prefetch = prefetch
        self.max_attempts = max_attempts
        self.retry_delays_ms = retry_delays_ms
        self.rejected_queue = rejected_queue or spec.invalid_queue
        self.after_commit = after_commit
        self.batch_size = max(1, batch_size)
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []

    @property
    def batching(self) -> bool:
        return self.batch_size > 1

    async def start(self) -> None:
        channel = await self.broker.channel(self.prefetch)
        self._queue = await declare_queue(channel, self.spec, self.retry_delays_ms)
        if self.rejected_queue is not None and self.rejected_queue != self.spec.invalid_queue:
            await channel.declare_queue(
                self.rejected_queue, durable=True, arguments={"x-queue-type": "quorum"}
            )
        if self.batching:
            self._workers = [
                asyncio.create_task(self._work(), name=f"consumer-{self.spec.name}-{n}")
                for n in range(max(1, self.prefetch // self.batch_size))
            ]
            self._tag = await self._queue.consume(self._arrive)
        else:
            self._tag = await self._queue.consume(self.process)

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop taking new messages and give in-flight ones time to commit and ack; one
        still running after that is redelivered later, which its idempotency makes safe."""
        if self._queue is not None and self._tag is not None:
            await self._queue.cancel(self._tag)
            self._tag = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=grace_seconds)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    def _began(self, count: int) -> None:
        self._in_flight += count
        self._idle.clear()

    def _ended(self, count: int) -> None:
        self._in_flight -= count
        if self._in_flight == 0:
            self._idle.set()

    async def process(self, message: AbstractIncomingMessage) -> None:
        """One delivery in a transaction of its own."""
        self._began(1)
        try:
            await self._process(message)
        finally:
            self._ended(1)

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

    async def _arrive(self, message: AbstractIncomingMessage) -> None:
        """A delivery, handed to the workers (they ack it after their commit)."""
        self._began(1)
        self._arrived.put_nowait(message)

    async def _work(self) -> None:
        """Apply what has arrived, a batch at a time, until cancelled by `stop()`."""
        while True:
            batch = [await self._arrived.get()]
            # Let deliveries already read from the socket (a task each) reach the buffer.
            await asyncio.sleep(0)
            while len(batch) < self.batch_size and not self._arrived.empty():
                batch.append(self._arrived.get_nowait())
            try:
                await self._apply(batch)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling() > 0:
                    raise  # stop()
                # Cancelled from within (a handler's call on a connection that died): the
                # transaction was rolled back; the worker must live on, as the relay does.
                log.warning(
                    "consumer batch cancelled from within; its messages are retried",
                    extra={"queue": self.spec.name, "messages": len(batch)},
                )
                for message in batch:
                    if not message.processed:  # not already settled one by one
                        with contextlib.suppress(Exception):
                            await self._retry(message, RuntimeError("the batch was cancelled"))
            except Exception:
                # Only acking or setting aside on a lost channel gets here: the broker
                # redelivers what was not acked.
                log.warning("consumer batch could not be settled", exc_info=True)
            finally:
                self._ended(len(batch))

    async def _apply(self, batch: list[AbstractIncomingMessage]) -> None:
        assert isinstance(self.handler, BatchMessageHandler)
        try:
            async with self.db.transaction() as session:
                outcomes = await self.handler.apply_batch(session, batch)
        except Exception as exc:
            if len(batch) == 1:
                await self._settle(batch[0], exc)
                return
            log.warning(
                "consumer batch failed as a whole; applying its messages one by one",
                extra={"queue": self.spec.name, "messages": len(batch), "error": _name(exc)},
            )
            for message in batch:
                await self._process(message)
            return
        if self.after_commit is not None and None in outcomes:
            self.after_commit()
        # The acks leave together (each otherwise waits for the connection's writer).
        await asyncio.gather(*(m.ack() for m, o in zip(batch, outcomes, strict=True) if o is None))
        HANDLED.labels(self.spec.name, "ok").inc(outcomes.count(None))
        for message, outcome in zip(batch, outcomes, strict=True):
            if outcome is not None:
                await self._settle(message, outcome)

    async def _settle(self, message: AbstractIncomingMessage, outcome: Outcome) -> None:
        """After the commit: ack what was applied, retry or set aside what failed."""
        correlation_id_var.set(message.correlation_id)
        if outcome is None:
            await message.ack()
            HANDLED.labels(self.spec.name, "ok").inc()
        elif isinstance(outcome, MessageRejected):
            await self._set_aside(message, str(outcome), self.rejected_queue or self.spec.dlq)
            HANDLED.labels(self.spec.name, "rejected").inc()
        else:
            await self._retry(message, outcome)

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


def _name(exc: BaseException) -> str:
    """An error's type and its cause's, never its text (it can hold statement values)."""
    cause = exc.__cause__
    return type(exc).__name__ + (f" ({type(cause).__name__})" if cause is not None else "")


class EventDispatcher:
    """Decode the envelope, skip what the inbox has seen, dispatch by `type`: one message
    (`__call__`) or a batch in one transaction (`apply_batch`)."""

    def __init__(self, inbox: Table, handlers: Mapping[str, EventHandler]) -> None:
        self.inbox = inbox
        self.handlers = dict(handlers)

    def _decode(self, message: AbstractIncomingMessage) -> tuple[Envelope, EventHandler]:
        try:
            envelope = Envelope.model_validate_json(message.body)
        except ValidationError as exc:
            raise MessageRejected(
                f"invalid envelope: {exc.errors(include_url=False, include_input=False)}"
            ) from exc
        handler = self.handlers.get(envelope.type)
        if handler is None:
            raise MessageRejected(f"no handler for type {envelope.type!r}")
        return envelope, handler

    async def __call__(self, session: AsyncSession, message: AbstractIncomingMessage) -> None:
        envelope, handler = self._decode(message)
        correlation_id_var.set(envelope.correlation_id)
        if await claim(session, self.inbox, envelope.message_id, envelope.type):
            await handler(session, envelope)

    async def apply_batch(
        self, session: AsyncSession, messages: Sequence[AbstractIncomingMessage]
    ) -> list[Outcome]:
        """The claims of all valid messages in one statement; then the new ones' handlers
        together in one savepoint. Should one raise, that savepoint is rolled back, the
        failing message's claim released, and the others applied again, each in a
        savepoint of its own: the failing handler has run once for its delivery, those
        before it twice (the first run undone), as after a crash before the commit.
        A savepoint per batch rather than per message while nothing fails: each is a
        round trip, which is what a busy consumer waits on most."""
        outcomes: list[Outcome] = [None] * len(messages)
        decoded: list[tuple[int, Envelope, EventHandler]] = []
        for index, message in enumerate(messages):
            try:
                envelope, handler = self._decode(message)
            except MessageRejected as exc:
                outcomes[index] = exc
            else:
                decoded.append((index, envelope, handler))
        claims = [(envelope.message_id, envelope.type) for _, envelope, _ in decoded]
        new = await claim_many(session, self.inbox, claims)
        if not new:
            return outcomes
        todo = []
        for item in decoded:
            if item[1].message_id in new:  # not applied before, nor earlier in this batch
                new.discard(item[1].message_id)
                todo.append(item)
        savepoints = await Savepoints.of(session)
        failed: tuple[int, Envelope, Exception] | None = None
        try:
            async with savepoints.around():
                for index, envelope, handler in todo:
                    correlation_id_var.set(envelope.correlation_id)
                    try:
                        await handler(session, envelope)
                    except Exception as error:
                        failed = (index, envelope, error)
                        raise
            return outcomes
        except Exception:
            if failed is None:
                raise  # the savepoint itself: the transaction is lost
        await release(session, self.inbox, failed[1].message_id)
        outcomes[failed[0]] = failed[2]
        for index, envelope, handler in todo:
            if index == failed[0]:
                continue
            correlation_id_var.set(envelope.correlation_id)
            try:
                async with savepoints.around():
                    await handler(session, envelope)
            except Exception as error:
                await release(session, self.inbox, envelope.message_id)
                outcomes[index] = error
        return outcomes


def event_handler(inbox: Table, handlers: Mapping[str, EventHandler]) -> EventDispatcher:
    """The handler of a queue of our own events, applied once each through `inbox`."""
    return EventDispatcher(inbox, handlers)
