"""The outbox relay against a broker whose sockets stay open but say nothing: it must
neither hang nor end; readiness tells operators meanwhile, and events leave once the
broker speaks again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import text

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


@pytest_asyncio.fixture(name="db", scope="module", loop_scope="session")
async def database(infra: Infra) -> AsyncIterator[Database]:
    db = Database(infra.database_url, pool_size=4)
    async with db.engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        await conn.run_sync(metadata.create_all)
    yield db
    await db.dispose()


def through(proxy: TcpProxy, amqp_url: str) -> str:
    """The broker's URL via the proxy, with a short heartbeat so a silence is noticed."""
    rest = amqp_url.split("@", 1)[1].split("/", 1)[1]
    return f"amqp://guest:guest@127.0.0.1:{proxy.port}/{rest}?heartbeat=1"


@pytest.mark.parametrize("publish_timeout", [1.0, 30.0], ids=["timeout", "heartbeat"])
async def test_relay_outlives_a_silent_broker_and_readiness_reports_it(
    db: Database, infra: Infra, events: EventCapture, publish_timeout: float
) -> None:
    host, port = "127.0.0.1", 5672
    proxy = TcpProxy(host, port)
    await proxy.start()
    broker = Broker(
        through(proxy, infra.amqp_url), connect_timeout=1.0, publish_timeout=publish_timeout
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
            async with db.transaction() as session:
                await add_event(session, outbox, "test.relayed", {"note": note})
            relay.wake()

            async def ready() -> httpx.Response:
                return await client.get("/health/ready")

            unready = await eventually(
                ready, lambda r: r.status_code == 503, what="readiness reports the backlog"
            )
            assert unready.json()["checks"]["outbox"].startswith("error: oldest event waits")
            # Past the heartbeat limit: the pending confirms are cancelled under the relay.
            await eventually(
                lambda: _true_after_closed(broker), lambda closed: closed, what="connection lost"
            )
            assert relay.alive, "the relay must survive the lost connection"
            proxy.speak()
            await events.wait_for(lambda e: e["payload"].get("note") == note, timeout=30)
            await eventually(ready, lambda r: r.status_code == 200, timeout=30, what="ready again")
            assert relay.alive
    finally:
        proxy.speak()
        await relay.stop()
        await broker.close()
        await proxy.cut()


async def _true_after_closed(broker: Broker) -> bool:
    return not broker.connected
