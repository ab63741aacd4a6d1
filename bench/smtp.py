"""Benchmark of the sender's SMTP client: composed survey e-mails per second to a loopback
SMTP server (the fake, aiosmtpd, in its own process).

As a baseline measured in the same run, against the same server, it sends the same
messages with raw ``aiosmtplib.send`` (one connection per message, as the client does)
and prints the ratio. Rounds alternate client and baseline so drift on a shared machine
hits both; the median round is reported. Composition (texts, MIME) is timed apart.
Figures, not assertions: these machines are noisy.

    python bench/smtp.py --messages 1000 --concurrency 8 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from services.sender.delivery.smtp import SmtpClient
from services.sender.domain.compose import MailIdentity, MessageKey, compose_email
from services.sender.domain.outcomes import Outcome
from services.sender.domain.texts import MessageContext, MessageKind
from shared.domain.contacts import Channel

ROOT = Path(__file__).resolve().parent.parent
EHLO = "bench.local"
IDENTITY = MailIdentity("Opetushallitus <noreply@opintopolku.fi>", "palaute@opintopolku.fi")
SERVE = """
import sys
from tests.fakes.smtp import FakeSmtp
with FakeSmtp() as server:
    print(server.port, flush=True)
    sys.stdin.read()
"""


def compose_all(count: int) -> list[EmailMessage]:
    context = MessageContext(
        ("Stadin ammatti- ja aikuisopisto", "Keuda"),
        "https://arvo.example/v/perhosen_paivakoti",
        date(2024, 4, 14),
    )
    sent_at = datetime(2024, 3, 16, 7, 0, tzinfo=UTC)
    return [
        compose_email(
            key=MessageKey(f"nippu_{n}", MessageKind.INITIAL, Channel.EMAIL),
            context=context,
            recipient=f"ohjaaja{n}@example.fi",
            identity=IDENTITY,
            sent_at=sent_at,
        )
        for n in range(count)
    ]


async def run(
    messages: list[EmailMessage],
    concurrency: int,
    send: Callable[[EmailMessage], Awaitable[bool]],
) -> tuple[float, int]:
    """Messages per second and how many were not sent."""
    limit = asyncio.Semaphore(concurrency)

    async def one(message: EmailMessage) -> bool:
        async with limit:
            return await send(message)

    started = time.perf_counter()
    results = await asyncio.gather(*(one(m) for m in messages))
    elapsed = time.perf_counter() - started
    return len(messages) / elapsed, results.count(False)


async def main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    messages = compose_all(args.messages)
    compose_rate = len(messages) / (time.perf_counter() - started)

    server = subprocess.Popen(
        [sys.executable, "-c", SERVE],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        client = SmtpClient(host="127.0.0.1", port=port, timeout=30, local_hostname=EHLO)

        async def ours(message: EmailMessage) -> bool:
            result = await client.send(message, label="bench")
            return result.outcome is Outcome.SENT

        async def raw(message: EmailMessage) -> bool:
            await aiosmtplib.send(
                message, hostname="127.0.0.1", port=port, timeout=30, local_hostname=EHLO
            )
            return True

        await run(messages[: args.concurrency * 4], args.concurrency, raw)  # warm-up
        rates: dict[str, list[float]] = {"client": [], "baseline": []}
        for _ in range(args.rounds):
            for name, send in (("client", ours), ("baseline", raw)):
                rate, failed = await run(messages, args.concurrency, send)
                if failed:
                    raise SystemExit(f"{name}: {failed} messages not sent")
                rates[name].append(rate)
    finally:
        server.communicate(input="", timeout=30)

    client_rate = statistics.median(rates["client"])
    baseline_rate = statistics.median(rates["baseline"])
    size = statistics.mean(len(m.as_bytes()) for m in messages[:50])
    print(
        f"{args.messages} messages of ~{size / 1024:.1f} KiB, concurrency {args.concurrency}, "
        f"{args.rounds} rounds (median)"
    )
    print(f"compose (texts + MIME):           {compose_rate:8.0f} messages/s")
    print(f"SmtpClient.send:                  {client_rate:8.0f} messages/s")
    print(f"baseline raw aiosmtplib.send:     {baseline_rate:8.0f} messages/s")
    print(f"ratio client / baseline:          {client_rate / baseline_rate:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
