"""Benchmark of the outbox relay: events/s from outbox rows to a consumer's inbox.

Stages a backlog of N events in an outbox table (as a busy ingest leaves them), then
times the real `OutboxRelay` publishing them to RabbitMQ and the real `Consumer`
committing each into its inbox, until the inbox holds all N. As a baseline measured in
the same run against the same broker: raw aio-pika publishing the same N messages with
publisher confirms (pipelined) while a raw consumer acks them. The two are measured
alternately, `--rounds` times each, so that a shared machine's changing load falls on
both; prints each round, the medians and their ratio (the relay should reach at least
half the raw rate). Uses a fresh database and vhost.

    python bench/relay.py --events 10000 --rounds 3 [--unbatched]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.db import Database, service_metadata
from shared.messaging.broker import Broker
from shared.messaging.consumer import Consumer, event_handler
from shared.messaging.envelope import Envelope
from shared.messaging.inbox import inbox_table
from shared.messaging.outbox import OutboxRelay, outbox_table
from shared.messaging.topology import QueueSpec
from shared.settings import ServiceSettings
from tests.support.infra import create_infra, destroy_infra

EVENT_TYPE = "bench.happened"
PAYLOAD = {"hoks_id": 1, "version": 1, "note": "x" * 600}  # about a small hoks.changed


def producer_tables() -> tuple[MetaData, Table]:
    metadata = service_metadata("bench_producer")
    return metadata, outbox_table(metadata)


def consumer_tables() -> tuple[MetaData, Table, Table]:
    metadata = service_metadata("bench_consumer")
    effects = Table("effects", metadata, Column("n", Integer, primary_key=True))
    return metadata, inbox_table(metadata), effects


async def create_schemas(db: Database, *metadatas: MetaData) -> None:
    async with db.engine.begin() as conn:
        for metadata in metadatas:
            await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {metadata.schema}"))
            await conn.run_sync(metadata.create_all)


async def stage(db: Database, outbox: Table, count: int) -> None:
    """The backlog: N committed outbox rows, as `add_event` writes them."""
    for start in range(0, count, 1000):
        rows = []
        for _ in range(min(1000, count - start)):
            envelope = Envelope(type=EVENT_TYPE, correlation_id="bench", payload=PAYLOAD)
            rows.append(
                {
                    "message_id": envelope.message_id,
                    "type": envelope.type,
                    "body": envelope.model_dump_json().encode(),
                }
            )
        async with db.transaction() as session:
            await session.execute(insert(outbox), rows)


async def inbox_count(db: Database, inbox: Table) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(inbox)) or 0)


async def through_relay(
    database_url: str, amqp_url: str, count: int, batch_size: int | None = None
) -> float:
    """Events/s through the outbox, the relay and a consumer (`batch_size` None: the
    service's setting; 1: a transaction per message, as before batching)."""
    settings = ServiceSettings(database_url=database_url, amqp_url=amqp_url)
    db = Database(database_url, settings.db_pool_size)
    producer, outbox = producer_tables()
    consumer_md, inbox, _ = consumer_tables()
    await create_schemas(db, producer, consumer_md)
    await stage(db, outbox, count)
    broker = Broker(amqp_url, retry_delays_ms=settings.retry_delays_ms)
    await broker.connect()
    relay = OutboxRelay(
        db,
        outbox,
        broker,
        poll_seconds=settings.outbox_poll_seconds,
        batch_size=settings.outbox_batch_size,
    )

    handled = 0
    all_handled = asyncio.Event()

    async def ignore(session: AsyncSession, envelope: Envelope) -> None:
        """Called for new messages only (the inbox skips duplicates)."""
        nonlocal handled
        handled += 1
        if handled == count:
            all_handled.set()

    consumer = Consumer(
        db,
        broker,
        QueueSpec("bench.relay", (EVENT_TYPE,)),
        event_handler(inbox, {EVENT_TYPE: ignore}),
        prefetch=settings.consumer_prefetch,
        max_attempts=settings.consumer_max_attempts,
        retry_delays_ms=settings.retry_delays_ms,
        batch_size=settings.consumer_batch_size if batch_size is None else batch_size,
    )
    await consumer.start()
    started = time.perf_counter()
    relay.start()
    try:
        await all_handled.wait()
        while await inbox_count(db, inbox) < count:  # noqa: ASYNC110 (the last commits)
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
    finally:
        await relay.stop()
        await consumer.stop()
        await broker.close()
        await db.dispose()
    return count / elapsed


async def raw(amqp_url: str, count: int, prefetch: int) -> float:
    """aio-pika alone: publish with confirms (pipelined) while a consumer acks."""
    connection = await aio_pika.connect(amqp_url)
    try:
        publish_channel = await connection.channel(publisher_confirms=True)
        consume_channel = await connection.channel()
        await consume_channel.set_qos(prefetch_count=prefetch)
        name = f"bench.raw.{uuid.uuid4().hex[:6]}"
        queue = await consume_channel.declare_queue(
            name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        body = Envelope(type=EVENT_TYPE, correlation_id="bench", payload=PAYLOAD)
        data = body.model_dump_json().encode()
        done = asyncio.Event()
        acked = 0

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal acked
            await message.ack()
            acked += 1
            if acked == count:
                done.set()

        await queue.consume(on_message)
        started = time.perf_counter()
        exchange = publish_channel.default_exchange
        for start in range(0, count, 1000):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(data, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        routing_key=name,
                    )
                    for _ in range(min(1000, count - start))
                )
            )
        await done.wait()
        return count / (time.perf_counter() - started)
    finally:
        await connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="raw and relay measured alternately this many times each; medians compared",
    )
    parser.add_argument(
        "--unbatched",
        action="store_true",
        help="in each round also measure the consumer with a transaction per message",
    )
    args = parser.parse_args()
    prefetch = ServiceSettings().consumer_prefetch
    rates: dict[str, list[float]] = {"raw": [], "relay": [], "unbatched": []}
    infra = await create_infra()
    try:
        for _ in range(args.rounds):
            rates["raw"].append(await raw(infra.amqp_url, args.events, prefetch))
            rates["relay"].append(
                await through_relay(infra.database_url, infra.amqp_url, args.events)
            )
            if args.unbatched:
                rates["unbatched"].append(
                    await through_relay(infra.database_url, infra.amqp_url, args.events, 1)
                )
    finally:
        await destroy_infra(infra)
    raw_rate = statistics.median(rates["raw"])
    print(f"events:                                      {args.events} x {args.rounds} rounds")
    print(f"raw aio-pika publish-confirm + consume-ack:  {raw_rate:8.0f} messages/s (median)")
    for name, label in (("relay", "Consumer inbox"), ("unbatched", "one per transaction")):
        if not rates[name]:
            continue
        ratios = [r / b for r, b in zip(rates[name], rates["raw"], strict=True)]
        rounds = ", ".join(
            f"{r:.0f}/{b:.0f}={r / b:.2f}" for r, b in zip(rates[name], rates["raw"], strict=True)
        )
        print(f"outbox -> relay -> RabbitMQ -> {label}: {statistics.median(rates[name]):.0f}/s")
        print(f"  rounds (relay/raw): {rounds}")
        print(
            f"  ratio relay/raw: {statistics.median(rates[name]) / raw_rate:.2f} (of medians), "
            f"{statistics.median(ratios):.2f} (median of rounds)"
        )


if __name__ == "__main__":
    asyncio.run(main())
