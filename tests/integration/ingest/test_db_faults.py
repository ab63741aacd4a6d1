"""Database faults (issue 11): unreachable or silent, a PUT is answered 503 in the error
shape within bounded time, and readiness keeps its 2 s bound."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.engine import make_url

from services.ingest.app import create_service
from tests.integration.ingest.conftest import ingest_settings
from tests.support.examples import EHOKS_EXAMPLES
from tests.support.infra import Infra
from tests.support.services import UPSTREAM_TOKEN, Running, run_in_process
from tests.support.tcp_proxy import TcpProxy

EXAMPLE = EHOKS_EXAMPLES / "hoksit.json"


async def _running_behind_proxy(infra: Infra) -> tuple[TcpProxy, Any]:
    url = make_url(infra.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    settings = ingest_settings(
        infra,
        database_url=url.set(port=proxy.port).render_as_string(hide_password=False),
        db_connect_timeout_seconds=1.0,
        db_statement_timeout_seconds=2.0,
        db_pool_timeout_seconds=1.0,
        db_pool_size=2,
    )
    return proxy, run_in_process(create_service(settings))


async def _put(running: Running, hoks_id: int) -> Any:
    return await running.client.put(
        f"/api/v1/hoks/{hoks_id}",
        content=EXAMPLE.read_bytes(),
        headers={"content-type": "application/json"},
    )


async def test_unreachable_database_is_a_503_in_the_error_shape(infra: Infra, new_id: Any) -> None:
    proxy, context = await _running_behind_proxy(infra)
    async with context as running:
        running.client.headers["authorization"] = f"Bearer {UPSTREAM_TOKEN}"
        assert (await _put(running, new_id())).status_code == 201
        await proxy.cut()
        for _ in range(3):  # pooled connections found dead, then refused connects
            response = await _put(running, new_id())
            assert response.status_code == 503, response.text
            assert set(response.json()) == {"error", "message", "details"}
            assert response.json()["error"] == "unavailable"
        await proxy.restore()
        assert (await _put(running, new_id())).status_code == 201, "recovers on its own"
    await proxy.cut()


async def test_silent_database_is_a_503_within_bounded_time(infra: Infra, new_id: Any) -> None:
    proxy, context = await _running_behind_proxy(infra)
    async with context as running:
        running.client.headers["authorization"] = f"Bearer {UPSTREAM_TOKEN}"
        assert (await _put(running, new_id())).status_code == 201
        proxy.silence()
        loop = asyncio.get_running_loop()
        for _ in range(2):  # a pooled connection's statement, then a new connection's
            start = loop.time()
            response = await _put(running, new_id())
            assert response.status_code == 503, response.text
            assert loop.time() - start < 4.0, "statement timeout 2 s, connect timeout 1 s"
        start = loop.time()
        ready = await running.client.get("/health/ready")
        assert ready.status_code == 503
        assert loop.time() - start < 2.5, "readiness answers within its 2 s bound"
        await proxy.restore()
    await proxy.cut()
