"""Benchmark of the sender service end to end: survey e-mails per second from
`send.requested` on RabbitMQ to a loopback SMTP server (the fake, aiosmtpd, in its own
process), through the real sender process: the consumer records each message, the
delivery worker hands it over (claim, mark sending, SMTP, record the answer and its
`send.status`).

As a baseline measured in the same run against the same server: raw `aiosmtplib.send`
of the same composed messages at the same concurrency (one connection per message, as
the sender does), before and after the sender's round (their mean). Prints both rates
and the ratio. Uses a fresh database and vhost.

    python bench/sender.py --messages 1000 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import aio_pika
import aiosmtplib
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.smtp import EHLO, IDENTITY, run
from services.sender.domain.compose import MessageKey, compose_email
from services.sender.domain.texts import MessageContext, MessageKind
from services.sender.store.tables import messages as messages_table
from shared.domain.contacts import Channel
from shared.events import SendRequested
from shared.messaging.envelope import Envelope
from shared.messaging.topology import declare_exchanges
from tests.support.infra import create_infra, destroy_infra
from tests.support.services import ServiceProcess, service_env

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2025, 3, 17)
LAST_ANSWER_DAY = dt.date(2025, 4, 15)
OPPILAITOKSET = ["Stadin ammatti- ja aikuisopisto", "Keuda"]
#: The fake SMTP server in a process of its own; each line on stdin asks for its count.
SERVE = """
import sys
from tests.fakes.smtp import FakeSmtp
with FakeSmtp() as server:
    print(server.port, flush=True)
    for _ in sys.stdin:
        print(len(server.messages), flush=True)
"""


def requests(count: int) -> list[SendRequested]:
    result = []
    for n in range(count):
        nippu = uuid.uuid4()
        result.append(
            SendRequested(
                nippu_id=nippu,
                tunniste=f"perhosen_paivakoti_2025-03-16_{nippu.hex[:8]}",
                kind="initial",
                linkki=f"https://arvo.example/v/{nippu.hex[:12]}",
                niputuspvm=dt.date(2025, 3, 16),
                voimassa_loppupvm=LAST_ANSWER_DAY,
                koulutustoimija_oid="1.2.246.562.10.346830761110",
                oppilaitokset=OPPILAITOKSET,
                sahkoposti=f"ohjaaja{n}@example.fi",
            )
        )
    return result


def composed(request: SendRequested) -> EmailMessage:
    return compose_email(
        key=MessageKey(str(request.nippu_id), MessageKind.INITIAL, Channel.EMAIL),
        context=MessageContext(tuple(OPPILAITOKSET), request.linkki, LAST_ANSWER_DAY),
        recipient=request.sahkoposti or "",
        identity=IDENTITY,
        sent_at=dt.datetime.now(dt.UTC),
    )


class Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def count(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.communicate(input="", timeout=30)


async def publish_all(amqp_url: str, batch: list[SendRequested]) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        events, _ = await declare_exchanges(channel)

        async def one(request: SendRequested) -> None:
            envelope = Envelope(
                type=SendRequested.TYPE,
                correlation_id=f"bench-{uuid.uuid4().hex[:8]}",
                payload=request.model_dump(mode="json"),
            )
            await events.publish(
                aio_pika.Message(
                    envelope.model_dump_json().encode(),
                    message_id=str(envelope.message_id),
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=SendRequested.TYPE,
            )

        await asyncio.gather(*(one(r) for r in batch))


async def stage_spans(database_url: str) -> tuple[float, float]:
    """Seconds from the first to the last message recorded, and sent (the database's
    commit times): which stage bounds the rate."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        func.extract(
                            "epoch",
                            func.max(messages_table.c.created_at)
                            - func.min(messages_table.c.created_at),
                        ),
                        func.extract(
                            "epoch",
                            func.max(messages_table.c.sent_at) - func.min(messages_table.c.sent_at),
                        ),
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    return float(row[0]), float(row[1])


async def main(args: argparse.Namespace) -> None:
    batch = requests(args.messages)
    messages = [composed(r) for r in batch]
    infra = await create_infra()
    server = Server()
    sender: ServiceProcess | None = None
    try:

        async def raw(message: aiosmtplib.email.EmailMessage) -> bool:  # type: ignore[name-defined]
            await aiosmtplib.send(
                message, hostname="127.0.0.1", port=server.port, timeout=30, local_hostname=EHLO
            )
            return True

        await run(messages[: args.concurrency * 4], args.concurrency, raw)  # warm-up
        before, _ = await run(messages, args.concurrency, raw)

        sender = ServiceProcess(
            "sender",
            service_env(
                infra,
                SMTP_PORT=str(server.port),
                SMTP_STARTTLS="off",
                SMTP_LOCAL_HOSTNAME=EHLO,
                DELIVERY_CONCURRENCY=str(args.concurrency),
                CLOCK_TODAY=TODAY.isoformat(),
                SCHEDULER_ENABLED="false",
                LOG_LEVEL="WARNING",
            ),
        )
        await sender.start()
        start_count = server.count()
        started = time.perf_counter()
        await publish_all(infra.amqp_url, batch)
        published = time.perf_counter() - started
        while server.count() < start_count + args.messages:  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        await sender.terminate()
        sender = None

        stages = await stage_spans(infra.database_url)
        after, _ = await run(messages, args.concurrency, raw)
    finally:
        if sender is not None:
            sender.kill()
        server.close()
        await destroy_infra(infra)

    ours = args.messages / elapsed
    baseline = (before + after) / 2
    print(f"{args.messages} survey e-mails, concurrency {args.concurrency}")
    print(f"published send.requested in:        {published:8.2f} s")
    print(f"sender, send.requested → SMTP:      {ours:8.0f} messages/s")
    print(
        f"baseline raw aiosmtplib.send:       {baseline:8.0f} messages/s "
        f"({before:.0f} before, {after:.0f} after)"
    )
    print(f"ratio sender / baseline:            {ours / baseline:8.2f}")
    recorded, sent = stages
    print(f"stages: recording {recorded:.2f} s, delivering {sent:.2f} s (first to last commit)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
