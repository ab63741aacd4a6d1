"""The outbox relay against a broker whose sockets stay open but say nothing (issue 11: the
relay used to wait for confirms for ever holding its row locks, and to end silently when
the dead connection cancelled them): it must neither hang nor end; it logs each failed
pass, lets go of its rows, readiness tells operators meanwhile, and the backlog leaves
once the broker speaks again.

How these tests were checked to fail without the fix:
with `OutboxRelay._run` catching only `Exception` and no supervisor (the relay before the
fix) the heartbeat case and the direct CancelledError case fail (the relay task ends);
with `Broker.publish_many` not bounded by the publish timeout the timeout case fails (the
rows stay locked and nothing is logged while the broker is silent).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import func, select, text

from shared.db import Database, service_metadata
from shared.messaging.broker import Broker
from shared.messaging.outbox import OutboxRelay, add_event, outbox_table
from shared.observability import health_router
from tests.fakes.server import serve
from tests.support.events import EventCapture
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.tcp_proxy import TcpProxy

SCHEMA = "relay_faults_test"
metadata = service_metadata(SCHEMA)
outbox = outbox_table(metadata)
RELAY_LOG = "shared.messaging.outbox"


@pytest_asyncio.fixture(name="db", scope="module", loop_scope="session")
async def database(infra: Infra) -> AsyncIterator[Database]:
    db = Database(infra.database_url, pool_size=4)
    async with db.engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        await conn.run_sync(metadata.create_all)
    yield db
    await db.dispose()


def through(proxy: TcpProxy, amqp_url: str, heartbeat: int) -> str:
    """The broker's URL via the proxy; heartbeat 0 turns heartbeats off, so that only the
    publish timeout can notice a silence."""
    rest = amqp_url.split("@", 1)[1].split("/", 1)[1]
    return f"amqp://guest:guest@127.0.0.1:{proxy.port}/{rest}?heartbeat={heartbeat}"


def relay_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == RELAY_LOG and r.levelno >= logging.WARNING
    ]


async def stage(db: Database, note: str) -> uuid.UUID:
    async with db.transaction() as session:
        envelope = await add_event(session, outbox, "test.relayed", {"note": note})
    return envelope.message_id


async def unlocked(db: Database, message_id: uuid.UUID) -> bool:
    """Whether the event's row is in the outbox and free: no relay pass holds it."""
    async with db.transaction() as session:
        row = await session.scalar(
            select(outbox.c.id)
            .where(outbox.c.message_id == message_id)
            .with_for_update(skip_locked=True)
        )
    return row is not None


async def waiting(db: Database, message_id: uuid.UUID) -> int:
    async with db.transaction() as session:
        query = select(func.count()).select_from(outbox).where(outbox.c.message_id == message_id)
        return int(await session.scalar(query) or 0)


# What the relay logs when the pass that waits for confirms fails: at the publish timeout;
# or, with no timeout to end it first, when the connection that missed its heartbeats is
# given up and aiormq cancels the pending confirms (the fault of issue 11).
TIMED_OUT = "broker did not confirm in time; outbox events wait"
CANCELLED = "publish cancelled by the broker connection; outbox events wait"


@pytest.mark.parametrize(
    ("publish_timeout", "heartbeat", "logged"),
    [(1.0, 0, TIMED_OUT), (30.0, 1, CANCELLED)],
    ids=["timeout", "heartbeat"],
)
async def test_relay_outlives_a_silent_broker_and_readiness_reports_it(
    db: Database,
    infra: Infra,
    events: EventCapture,
    caplog: pytest.LogCaptureFixture,
    publish_timeout: float,
    heartbeat: int,
    logged: str,
) -> None:
    caplog.set_level(logging.WARNING, logger=RELAY_LOG)
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    broker = Broker(
        through(proxy, infra.amqp_url, heartbeat),
        connect_timeout=1.0,
        publish_timeout=publish_timeout,
    )
    await broker.connect()
    relay = OutboxRelay(db, outbox, broker, poll_seconds=0.2)
    app = FastAPI()
    app.include_router(health_router(db, broker, relay, outbox_max_age_seconds=0.5))
    relay.start()
    note = f"held-{uuid.uuid4()}"
    try:
        async with serve(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
            proxy.silence()
            message_id = await stage(db, note)
            relay.wake()

            async def ready() -> httpx.Response:
                return await client.get("/health/ready")

            unready = await eventually(
                ready, lambda r: r.status_code == 503, what="readiness reports the backlog"
            )
            assert unready.json()["checks"]["outbox"].startswith("error: oldest event waits")
            # The failed pass is logged and its rows let go, while the broker is still silent.
            await eventually(
                lambda: asyncio.sleep(0, relay_warnings(caplog)),
                lambda found: logged in found,
                timeout=30,
                what="the relay logs its failed pass",
            )
            assert await eventually(
                lambda: unlocked(db, message_id), bool, what="the relay let go of the row"
            )
            assert relay.alive, "the relay must survive the silence"
            proxy.speak()
            await events.wait_for(lambda e: e["payload"].get("note") == note, timeout=30)
            await eventually(lambda: waiting(db, message_id), lambda n: n == 0, what="drained")
            await eventually(ready, lambda r: r.status_code == 200, timeout=30, what="ready again")
            assert relay.alive
    finally:
        proxy.speak()
        await relay.stop()
        await broker.close()
        await proxy.cut()


class CancellingBroker(Broker):
    """The real broker, except that its first publishes end in CancelledError, as when
    aiormq cancels the confirms of a connection that died under them."""

    def __init__(self, url: str, cancellations: int) -> None:
        super().__init__(url)
        self.cancellations = cancellations

    async def publish_many(self, messages: Sequence[tuple[bytes, str, str]]) -> None:
        if self.cancellations > 0:
            self.cancellations -= 1
            raise asyncio.CancelledError("confirms cancelled by a dead connection")
        await super().publish_many(messages)


async def test_a_cancelled_publish_fails_one_pass_and_does_not_end_the_relay_loop(
    db: Database, infra: Infra, events: EventCapture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=RELAY_LOG)
    broker = CancellingBroker(infra.amqp_url, cancellations=2)
    await broker.connect()
    relay = OutboxRelay(db, outbox, broker, poll_seconds=0.1)
    note = f"cancelled-{uuid.uuid4()}"
    message_id = await stage(db, note)
    relay.start()
    try:
        await events.wait_for(lambda e: e["payload"].get("note") == note)
        await eventually(lambda: waiting(db, message_id), lambda n: n == 0, what="drained")
        assert broker.cancellations == 0
        cancelled = "publish cancelled by the broker connection; outbox events wait"
        assert relay_warnings(caplog).count(cancelled) == 2
        assert not [r for r in caplog.records if "restarting" in r.getMessage()], (
            "the relay loop itself carried on; its supervisor had nothing to restart"
        )
        assert relay.alive
    finally:
        await relay.stop()
        await broker.close()
    assert not relay.alive, "stop() still ends the relay"
