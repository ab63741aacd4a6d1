"""A consumer applying several messages in one transaction, against the real PostgreSQL and
RabbitMQ: a message that fails is undone alone (its effects and inbox claim) and gets its
retries and dead-lettering while the others of its batch commit (applied again, each in a
savepoint, after the batch's first pass was undone); a batch whose commit
fails is applied one message at a time; nothing is acked before its commit.

Each test fills its queue before the consumer starts. Its first message holds the
consumer's only worker until the broker has delivered all the others, so that they wait
together and are taken as one batch; the handler records the session each message was
applied in, which proves the batch the test is about happened.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest_asyncio
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy import Column, ForeignKey, Integer, Table, Text, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database, service_metadata
from shared.messaging.broker import Broker
from shared.messaging.consumer import Consumer, event_handler
from shared.messaging.envelope import Envelope
from shared.messaging.inbox import inbox_table
from shared.messaging.topology import QueueSpec, declare_queue
from tests.support.infra import Infra
from tests.support.polling import eventually

SCHEMA = "consumer_batches_test"
metadata = service_metadata(SCHEMA)
inbox = inbox_table(metadata)
effects = Table(
    "effects",
    metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("note", Text, nullable=False),
)
# Checked only at commit: a handler that writes a dangling row makes its commit fail.
commit_checked = Table(
    "commit_checked",
    metadata,
    Column(
        "effect",
        Integer,
        ForeignKey(f"{SCHEMA}.effects.n", deferrable=True, initially="DEFERRED"),
        nullable=False,
    ),
)
EVENT_TYPE = "test.batched"
RETRY_DELAYS_MS = [100, 200]
MAX_ATTEMPTS = 3


@dataclass
class Harness:
    """What the handler saw: the calls per note, and the session of each call."""

    db: Database
    amqp_url: str
    sessions: dict[str, list[int]] = field(default_factory=dict)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def calls(self, note: str) -> int:
        return len(self.sessions.get(note, []))

    def batch_of(self, note: str) -> set[str]:
        """The notes whose first call shared the session (the transaction) of `note`'s."""
        first = self.sessions[note][0]
        return {other for other, calls in self.sessions.items() if calls[0] == first}


@pytest_asyncio.fixture(name="h", scope="module", loop_scope="session")
async def harness(infra: Infra) -> AsyncIterator[Harness]:
    db = Database(infra.database_url, pool_size=6)
    async with db.engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        await conn.run_sync(metadata.create_all)
    yield Harness(db, infra.amqp_url)
    await db.dispose()


async def handle(h: Harness, session: AsyncSession, event: Envelope) -> None:
    """By the note's kind: `good` writes its effect; `raises` writes it and then fails;
    `sql` fails in the database (aborting the transaction up to its savepoint); `commit`
    writes a row that fails the commit; `block` writes its effect and waits until
    released; `hold` waits for the gate; `cancelled` is cancelled from within once."""
    note = str(event.payload["note"])
    h.sessions.setdefault(note, []).append(id(session))
    kind = note.split("-", 1)[0]
    if kind == "hold":
        await h.gate.wait()
    if kind == "cancelled" and h.calls(note) == 1:
        raise asyncio.CancelledError("as from a call on a connection that died")
    if kind == "sql":
        await session.execute(text("SELECT 1 / 0"))
    effect = await session.scalar(insert(effects).values(note=note).returning(effects.c.n))
    if kind == "raises":
        raise RuntimeError("the handler failed")
    if kind == "commit":
        await session.execute(insert(commit_checked).values(effect=-1))
    if kind == "block":
        h.entered.set()
        await h.released.wait()
    assert effect is not None


def notes(*kinds: str) -> list[str]:
    return [f"{kind}-{uuid.uuid4().hex[:8]}" for kind in kinds]


def held(*notes: str) -> list[bytes]:
    """The bodies of `notes`, after a `hold` message that makes them wait together."""
    return [body(note) for note in [f"hold-{uuid.uuid4().hex[:8]}", *notes]]


def body(note: str) -> bytes:
    return (
        Envelope(type=EVENT_TYPE, correlation_id="batch", payload={"note": note})
        .model_dump_json()
        .encode()
    )


async def fill(broker: Broker, bodies: list[bytes]) -> QueueSpec:
    """A fresh queue holding `bodies`, before any consumer takes from it."""
    spec = QueueSpec(f"test.batches.{uuid.uuid4().hex[:8]}", (), bind_events=False)
    channel = await broker.channel(prefetch=1)
    await declare_queue(channel, spec, RETRY_DELAYS_MS)
    for item in bodies:
        await broker.publish(item, spec.name, exchange="")
    await channel.close()
    return spec


async def start(h: Harness, broker: Broker, spec: QueueSpec) -> Consumer:
    """A consumer (one worker, batches up to 16) on `spec`, whose first message, a `hold`,
    keeps the worker until the broker has delivered the rest: they then form one batch."""
    h.gate.clear()
    consumer = Consumer(
        h.db,
        broker,
        spec,
        event_handler(inbox, {EVENT_TYPE: lambda s, e: handle(h, s, e)}),
        prefetch=16,
        max_attempts=MAX_ATTEMPTS,
        retry_delays_ms=RETRY_DELAYS_MS,
        batch_size=16,
    )
    await consumer.start()
    channel = await broker.channel(prefetch=1)  # the consumer's connection: frames in order

    async def ready() -> int:
        queue = await channel.declare_queue(spec.name, passive=True)
        return int(queue.declaration_result.message_count or 0)

    await eventually(ready, lambda n: n == 0, what="every message delivered to the consumer")
    await channel.close()
    h.gate.set()
    return consumer


async def count_effects(db: Database, note: str) -> int:
    async with db.transaction() as session:
        query = select(func.count()).select_from(effects).where(effects.c.note == note)
        return int(await session.scalar(query) or 0)


async def drain(broker: Broker, queue_name: str) -> list[AbstractIncomingMessage]:
    """Every message waiting in the queue now, acked."""
    channel = await broker.channel(prefetch=1)
    queue = await channel.get_queue(queue_name)
    taken = []
    while (message := await queue.get(fail=False)) is not None:
        await message.ack()
        taken.append(message)
    await channel.close()
    return taken


async def dead_lettered(broker: Broker, spec: QueueSpec, count: int) -> dict[str, str]:
    """Wait until `count` messages reached the DLQ; their note (or body) → `x-error`."""
    found: dict[str, str] = {}

    async def collect() -> int:
        for message in await drain(broker, spec.dlq):
            try:
                key = str(Envelope.model_validate_json(message.body).payload["note"])
            except ValueError:
                key = message.body.decode()
            found[key] = str((message.headers or {})["x-error"])
        return len(found)

    await eventually(collect, lambda n: n >= count, what=f"{count} messages in the DLQ")
    return found


async def test_a_failing_message_is_undone_alone_and_dead_lettered_while_its_batch_commits(
    h: Harness,
) -> None:
    good = notes("good", "good", "good", "good")
    raises, sql = notes("raises", "sql")
    bodies = held(good[0], raises, good[1], sql, good[2], good[3])
    bodies.insert(4, b"not an envelope")
    broker = Broker(h.amqp_url)
    await broker.connect()
    spec = await fill(broker, bodies)
    consumer = await start(h, broker, spec)
    try:
        dead = await dead_lettered(broker, spec, 3)
        for failing in (raises, sql):
            assert h.batch_of(failing) & set(good), "the test needs batches with good ones"
        for note in good:
            assert await count_effects(h.db, note) == 1
            # Run again when a failing message after it in its batch undid the first run.
            assert h.calls(note) <= 2
        for note in (raises, sql):
            assert h.calls(note) == MAX_ATTEMPTS, "its handler ran once per delivery"
            assert await count_effects(h.db, note) == 0, "its effect was undone"
        assert "the handler failed" in dead[raises]
        assert "division by zero" in dead[sql]
        assert "invalid envelope" in dead["not an envelope"]
    finally:
        await consumer.stop()
        await broker.close()  # anything not acked goes back to the queue
    checker = Broker(h.amqp_url)
    await checker.connect()
    try:
        assert await drain(checker, spec.name) == [], "every message was acked"
    finally:
        await checker.close()


async def test_a_batch_whose_commit_fails_is_applied_one_message_at_a_time(h: Harness) -> None:
    good = notes("good", "good", "good")
    (failing,) = notes("commit")
    broker = Broker(h.amqp_url)
    await broker.connect()
    spec = await fill(broker, held(good[0], failing, good[1], good[2]))
    consumer = await start(h, broker, spec)
    try:
        dead = await dead_lettered(broker, spec, 1)
        together = h.batch_of(failing) - {failing}
        assert together & set(good), "the test needs a batch with good ones"
        assert "foreign key" in dead[failing]
        for note in good:
            assert await count_effects(h.db, note) == 1
            expected = 2 if note in together else 1
            assert h.calls(note) == expected, "once in the failed batch, once alone"
        assert h.calls(failing) == 1 + MAX_ATTEMPTS
        assert await count_effects(h.db, failing) == 0
    finally:
        await consumer.stop()
        await broker.close()


async def test_nothing_is_acked_before_its_batch_commits(h: Harness) -> None:
    """A consumer that dies while its batch is uncommitted leaves every message of the
    batch to be redelivered, and the next consumer applies each once."""
    first, blocking, last = notes("good", "block", "good")
    h.entered.clear()
    h.released.clear()
    broker = Broker(h.amqp_url)
    await broker.connect()
    spec = await fill(broker, held(first, blocking, last))
    consumer = await start(h, broker, spec)
    try:
        await asyncio.wait_for(h.entered.wait(), timeout=15)
        crashed = h.batch_of(blocking)
        assert len(crashed) > 1, "the test needs a batch of several messages"
        # The crash: the worker dies inside the transaction, then the connection.
        await consumer.stop(grace_seconds=0)
    finally:
        await broker.close()
    for note in crashed:
        assert await count_effects(h.db, note) == 0, "nothing of the batch was committed"
    h.released.set()
    successor = Broker(h.amqp_url)
    await successor.connect()
    consumer = await start(h, successor, spec)
    try:
        for note in (first, blocking, last):
            await eventually(
                lambda note=note: count_effects(h.db, note),  # type: ignore[misc]
                lambda n: n == 1,
                what=f"{note} applied by the next consumer",
            )
        for note in crashed:
            assert h.calls(note) == 2, "redelivered after the crash, applied once"
    finally:
        await consumer.stop()
        await successor.close()


async def test_a_handler_cancelled_from_within_does_not_end_the_consumer(h: Harness) -> None:
    """Only `stop()` ends a consumer's worker; a CancelledError from a handler fails its
    batch, whose messages are retried."""
    good = notes("good", "good")
    (cancelled,) = notes("cancelled")
    broker = Broker(h.amqp_url)
    await broker.connect()
    spec = await fill(broker, held(good[0], cancelled, good[1]))
    consumer = await start(h, broker, spec)
    try:
        for note in (*good, cancelled):
            await eventually(
                lambda note=note: count_effects(h.db, note),  # type: ignore[misc]
                lambda n: n == 1,
                what=f"{note} applied after the cancelled batch",
            )
        later = notes("good")[0]
        await broker.publish(body(later), spec.name, exchange="")
        await eventually(
            lambda: count_effects(h.db, later), lambda n: n == 1, what="the worker lives on"
        )
    finally:
        await consumer.stop()
        await broker.close()
