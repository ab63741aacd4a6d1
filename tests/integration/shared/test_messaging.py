"""The shared messaging parts against the real PostgreSQL and RabbitMQ: consumers ack after
commit, retry through the delay ladder, dead-letter after the last attempt, and apply a
redelivered message once; the outbox relay publishes what was committed, once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy import Column, Integer, Table, Text, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database, service_metadata
from shared.messaging.broker import Broker
from shared.messaging.consumer import Consumer, MessageRejected, event_handler
from shared.messaging.envelope import Envelope
from shared.messaging.inbox import inbox_table
from shared.messaging.outbox import OutboxRelay, add_event, outbox_table
from shared.messaging.topology import QueueSpec
from tests.support.events import EventCapture
from tests.support.infra import Infra
from tests.support.polling import eventually

SCHEMA = "messaging_test"
metadata = service_metadata(SCHEMA)
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
effects = Table(
    "effects",
    metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("note", Text),
)


@dataclass
class Harness:
    db: Database
    broker: Broker
    attempts: dict[str, int] = field(default_factory=dict)


@pytest_asyncio.fixture(name="h", scope="module", loop_scope="session")
async def harness(infra: Infra) -> AsyncIterator[Harness]:
    db = Database(infra.database_url, pool_size=4)
    async with db.engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        await conn.run_sync(metadata.create_all)
    broker = Broker(infra.amqp_url)
    await broker.connect()
    yield Harness(db, broker)
    await broker.close()
    await db.dispose()


async def count_effects(db: Database, note: str) -> int:
    async with db.transaction() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(effects).where(effects.c.note == note)
            )
            or 0
        )


def envelope(note: str) -> Envelope:
    return Envelope(type="test.happened", correlation_id=f"cid-{note}", payload={"note": note})


@pytest.fixture(name="batch_size", params=[1, 4], ids=["one-by-one", "batched"])
def batch_size_param(request: pytest.FixtureRequest) -> int:
    """Every consumer test runs both ways: a transaction per message, and batches."""
    return int(request.param)


async def start_consumer(
    h: Harness, fail_times: int | None, batch_size: int
) -> tuple[Consumer, QueueSpec]:
    """A consumer whose handler writes an effect row, after failing `fail_times` times
    per note (None: always fails)."""
    spec = QueueSpec(f"test.{uuid.uuid4().hex[:8]}", ("test.happened",))

    async def handle(session: AsyncSession, event: Envelope) -> None:
        note = event.payload["note"]
        h.attempts[note] = h.attempts.get(note, 0) + 1
        if fail_times is None or h.attempts[note] <= fail_times:
            raise RuntimeError(f"transient failure {h.attempts[note]}")
        await session.execute(insert(effects).values(note=note))

    consumer = Consumer(
        h.db,
        h.broker,
        spec,
        event_handler(inbox, {"test.happened": handle}),
        prefetch=4,
        max_attempts=3,
        retry_delays_ms=[100, 200],
        batch_size=batch_size,
    )
    await consumer.start()
    return consumer, spec


async def publish(h: Harness, event: Envelope) -> None:
    await h.broker.publish(
        event.model_dump_json().encode(), event.type, message_id=str(event.message_id)
    )


def unique(note: str) -> str:
    """Each test (and each batch size it runs with) has its own notes."""
    return f"{note}-{uuid.uuid4().hex[:8]}"


async def test_a_failing_message_is_retried_with_delay_and_then_applied(
    h: Harness, batch_size: int
) -> None:
    consumer, _ = await start_consumer(h, fail_times=2, batch_size=batch_size)
    retried = unique("retried")
    try:
        await publish(h, envelope(retried))
        await eventually(
            lambda: count_effects(h.db, retried), lambda n: n == 1, what="effect after retries"
        )
        assert h.attempts[retried] == 3
    finally:
        await consumer.stop()


async def test_a_redelivered_message_is_applied_once(h: Harness, batch_size: int) -> None:
    consumer, _ = await start_consumer(h, fail_times=0, batch_size=batch_size)
    twice, after = unique("twice"), unique("after")
    try:
        event = envelope(twice)
        await publish(h, event)
        await publish(h, event)  # same message_id: a relay that published twice
        await eventually(lambda: count_effects(h.db, twice), lambda n: n == 1, what="effect")
        await publish(h, envelope(after))  # a later message proves the duplicate was handled
        await eventually(lambda: count_effects(h.db, after), lambda n: n == 1, what="effect")
        assert await count_effects(h.db, twice) == 1
        assert h.attempts[twice] == 1, "the inbox stopped the duplicate before the handler"
    finally:
        await consumer.stop()


async def test_after_the_last_attempt_the_message_is_dead_lettered_with_its_error(
    h: Harness, batch_size: int
) -> None:
    consumer, spec = await start_consumer(h, fail_times=None, batch_size=batch_size)
    hopeless = unique("hopeless")
    try:
        event = envelope(hopeless)
        await publish(h, event)
        channel = await h.broker.channel(prefetch=1)
        dlq = await channel.get_queue(spec.dlq)

        async def dead() -> AbstractIncomingMessage | None:
            return await dlq.get(fail=False)

        message = await eventually(dead, lambda m: m is not None, what="message in DLQ")
        assert message is not None
        assert Envelope.model_validate_json(message.body).message_id == event.message_id
        assert "transient failure 3" in str((message.headers or {})["x-error"])
        assert h.attempts[hopeless] == 3
        assert await count_effects(h.db, hopeless) == 0
        await message.ack()
    finally:
        await consumer.stop()


async def test_a_malformed_message_skips_the_retries(h: Harness, batch_size: int) -> None:
    consumer, spec = await start_consumer(h, fail_times=0, batch_size=batch_size)
    try:
        await h.broker.publish(b"not an envelope", "test.happened")
        channel = await h.broker.channel(prefetch=1)
        dlq = await channel.get_queue(spec.dlq)
        message = await eventually(
            lambda: dlq.get(fail=False), lambda m: m is not None, what="message in DLQ"
        )
        assert message is not None
        assert "invalid envelope" in str((message.headers or {})["x-error"])
        await message.ack()
    finally:
        await consumer.stop()


async def test_relay_publishes_committed_events_once_and_never_rolled_back_ones(
    h: Harness, events: EventCapture
) -> None:
    relay = OutboxRelay(h.db, outbox, h.broker, poll_seconds=0.1)
    kept, dropped = f"kept-{uuid.uuid4()}", f"dropped-{uuid.uuid4()}"
    async with h.db.transaction() as session:
        await add_event(session, outbox, "test.relayed", {"note": kept})
    try:
        async with h.db.transaction() as session:
            await add_event(session, outbox, "test.relayed", {"note": dropped})
            raise MessageRejected("roll back")
    except MessageRejected:
        pass
    relay.start()
    try:
        await events.wait_for(lambda e: e["payload"].get("note") == kept)
        await eventually(lambda: pending(h), lambda n: n == 0, what="outbox emptied")
    finally:
        await relay.stop()
    assert len(events.matching(lambda e: e["payload"].get("note") == kept)) == 1
    assert events.matching(lambda e: e["payload"].get("note") == dropped) == []


async def pending(h: Harness) -> int:
    async with h.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(outbox)) or 0)
