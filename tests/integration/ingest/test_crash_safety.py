"""Nothing lost, nothing twice: a killed process and a broker outage (architecture.md)."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import func, select

from services.ingest.app import create_service
from services.ingest.store.tables import outbox
from shared.db import Database
from tests.integration.ingest.conftest import ingest_settings, pending_outbox
from tests.support.events import EventCapture
from tests.support.examples import EHOKS_EXAMPLES
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.services import UPSTREAM_TOKEN, ServiceProcess, run_in_process, service_env
from tests.support.tcp_proxy import TcpProxy

EXAMPLE = EHOKS_EXAMPLES / "hoksit.json"
AUTH = {"authorization": f"Bearer {UPSTREAM_TOKEN}"}


def changed(hoks_id: int) -> Any:
    return lambda e: e["type"] == "hoks.changed" and e["payload"]["hoks_id"] == hoks_id


async def outbox_rows(infra: Infra) -> int:
    db = Database(infra.database_url, pool_size=1)
    try:
        async with db.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(outbox)) or 0)
    finally:
        await db.dispose()


async def test_sigkill_between_commit_and_publish_publishes_exactly_once(
    infra: Infra, events: EventCapture, new_id: Any
) -> None:
    hoks_id = new_id()
    # The relay is switched off so the process is certainly killed after the commit and
    # before any publish: the window this test is about.
    first = ServiceProcess("ingest", service_env(infra, OUTBOX_RELAY_ENABLED="false"))
    await first.start()
    try:
        async with httpx.AsyncClient(base_url=first.base_url, headers=AUTH) as client:
            response = await client.put(
                f"/api/v1/hoks/{hoks_id}",
                content=EXAMPLE.read_bytes(),
                headers={"content-type": "application/json"},
            )
        assert response.status_code == 201
    finally:
        first.kill()
    assert await outbox_rows(infra) >= 1
    assert events.matching(changed(hoks_id)) == []

    second = ServiceProcess("ingest", service_env(infra))
    await second.start()
    try:
        await events.wait_for(changed(hoks_id))
        await eventually(lambda: outbox_rows(infra), lambda n: n == 0, what="outbox drained")
    finally:
        # uvicorn re-raises SIGTERM after its graceful shutdown, hence -15 rather than 0.
        assert await second.terminate() in (0, -15)
        assert "Application shutdown complete" in second.log_path.read_text()
    assert len(events.matching(changed(hoks_id))) == 1


async def test_requests_are_accepted_while_the_broker_is_away_and_drain_after(
    infra: Infra, events: EventCapture, new_id: Any
) -> None:
    amqp = urlsplit(infra.amqp_url)
    proxy = TcpProxy(amqp.hostname or "127.0.0.1", amqp.port or 5672)
    await proxy.start()
    proxied = urlunsplit(
        amqp._replace(netloc=f"{amqp.username}:{amqp.password}@127.0.0.1:{proxy.port}")
    )
    service = create_service(ingest_settings(infra, amqp_url=proxied))
    async with run_in_process(service) as running:
        running.client.headers.update(AUTH)
        await proxy.cut()
        await eventually(
            lambda: _connected(running.service.broker),
            lambda c: not c,
            what="service noticed the outage",
        )
        ids = [new_id() for _ in range(20)]
        document = json.loads(EXAMPLE.read_text())
        for hoks_id in ids:
            response = await running.client.put(f"/api/v1/hoks/{hoks_id}", json=document)
            assert response.status_code == 201, "writes are accepted during the outage"
        ready = await running.client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["broker"].startswith("error")
        assert await pending_outbox(running) >= len(ids)
        assert all(events.matching(changed(i)) == [] for i in ids)

        await proxy.restore()
        for hoks_id in ids:
            await events.wait_for(changed(hoks_id), timeout=30)
        await eventually(lambda: pending_outbox(running), lambda n: n == 0, what="outbox drained")
    await proxy.cut()
    assert all(len(events.matching(changed(i))) == 1 for i in ids)


async def _connected(broker: Any) -> bool:
    await asyncio.sleep(0)
    return bool(broker.connected)
