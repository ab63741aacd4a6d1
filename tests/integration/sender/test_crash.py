"""SIGKILL the sender while it works through many send jobs (issue 14, "never twice"):
after a restart every job's e-mail reached the SMTP server once, none twice.

The sender runs as a process of its own (`python -m services.sender`) with a database
and vhost of its own (the session's in-process sender would take the jobs otherwise);
the SMTP server is the fake on loopback in this process, counting by Message-ID (one per
message key). SENDER_KILL_JOBS sets the number of jobs (default 200; the issue's 1,000:
SENDER_KILL_JOBS=1000).

What a kill can leave: a message inside its handover (SMTP DATA until our commit of its
answer) is the unknown-outcome window: it is never sent again (at most once) and is
reported sent with an "unconfirmed" reason; every other message is sent exactly once. At
most DELIVERY_CONCURRENCY messages can be in that window at the kill. The test logs how
many were, how many of those had arrived, and how long the window is per message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections import Counter

import aio_pika
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from services.sender.store.tables import messages
from tests.fakes.smtp import FakeSmtp
from tests.integration.sender.conftest import TODAY, publish, send_request
from tests.support.infra import create_infra, destroy_infra
from tests.support.polling import eventually
from tests.support.services import ServiceProcess, service_env

JOBS = int(os.environ.get("SENDER_KILL_JOBS", "200"))
CONCURRENCY = 8
log = logging.getLogger(__name__)


async def test_sigkill_during_send_jobs_sends_nothing_twice_and_loses_only_the_window() -> None:
    own = await create_infra()
    engine = create_async_engine(own.database_url)
    try:
        with FakeSmtp() as smtp:
            env = service_env(
                own,
                SMTP_PORT=str(smtp.port),
                SMTP_STARTTLS="off",
                SMTP_LOCAL_HOSTNAME="sender.test",
                SMTP_TIMEOUT_SECONDS="1",
                DELIVERY_LEASE_SECONDS="5",
                DELIVERY_POLL_SECONDS="0.1",
                DELIVERY_CONCURRENCY=str(CONCURRENCY),
                CLOCK_TODAY=TODAY.isoformat(),
                LOG_LEVEL="WARNING",
            )
            first = ServiceProcess("sender", env)
            await first.start()
            requests = [
                send_request(email=f"ohjaaja{n}@example.fi", voimassa_loppupvm=dt.date(2025, 4, 15))
                for n in range(JOBS)
            ]
            connection = await aio_pika.connect(own.amqp_url)
            async with connection:
                channel = await connection.channel(publisher_confirms=True)
                for request in requests:
                    await publish(channel, request)

            await eventually(
                lambda: _async(len(smtp.messages)),
                lambda n: n >= JOBS // 3,
                timeout=120,
                what="a third of the jobs sent",
            )
            first.kill()
            at_kill = len(smtp.messages)

            second = ServiceProcess("sender", env)
            await second.start()
            try:

                async def progress() -> tuple[int, int]:
                    async with engine.connect() as conn:
                        total = await conn.scalar(select(func.count()).select_from(messages))
                        busy = await conn.scalar(
                            select(func.count())
                            .select_from(messages)
                            .where(messages.c.status.in_(("recorded", "sending")))
                        )
                    return int(total or 0), int(busy or 0)

                await eventually(
                    progress,
                    lambda p: p == (JOBS, 0),
                    timeout=60 + JOBS * 0.2,
                    what="every job recorded and settled",
                )
            finally:
                await second.terminate()

        async with engine.connect() as conn:
            rows = (await conn.execute(select(messages.c.recipient, messages.c.status))).all()
            window = func.extract("epoch", messages.c.updated_at - messages.c.sending_since)
            p50, p99 = (
                await conn.execute(
                    select(
                        func.percentile_cont(0.5).within_group(window),
                        func.percentile_cont(0.99).within_group(window),
                    ).where(messages.c.status == "sent")
                )
            ).one()
        received = Counter(address for mail in smtp.messages for address in mail.rcpt_tos)
        by_id = Counter(str(mail.message["Message-ID"]) for mail in smtp.messages)
        status = {row.recipient: row.status for row in rows}
        unknown = [a for a, s in status.items() if s == "unknown"]
        lost = [a for a in unknown if received[a] == 0]
        log.warning(
            "kill test: %d jobs, %d sent before the kill, %d unknown (%d of them not "
            "received); window per message p50 %.1f ms, p99 %.1f ms",
            JOBS,
            at_kill,
            len(unknown),
            len(lost),
            p50 * 1000,
            p99 * 1000,
        )

        assert max(by_id.values()) == 1, "no message twice"
        assert max(received.values()) == 1
        assert set(status.values()) <= {"sent", "unknown"}
        assert len(unknown) <= CONCURRENCY
        for address, state in status.items():
            if state == "sent":
                assert received[address] == 1, address
        assert sum(received.values()) >= JOBS - len(lost)
        assert sum(received.values()) == JOBS - len(lost)
    finally:
        await engine.dispose()
        await destroy_infra(own)


async def _async(value: int) -> int:
    await asyncio.sleep(0)
    return value
