"""The four services start as separate processes (`python -m services.<name>`), migrate their
own schemas, report ready, and stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.infra import Infra
from tests.support.services import ServiceProcess, service_env

SERVICES = ("ingest", "bundler", "arvo_adapter", "sender")


@pytest.mark.e2e
async def test_every_service_starts_migrates_and_stops_on_sigterm(infra: Infra) -> None:
    processes = [ServiceProcess(name, service_env(infra)) for name in SERVICES]
    try:
        await asyncio.gather(*(p.start() for p in processes))
        async with httpx.AsyncClient(timeout=5) as client:
            for process in processes:
                ready = await client.get(f"{process.base_url}/health/ready")
                assert ready.json() == {
                    "status": "ok",
                    "checks": {"database": "ok", "broker": "ok", "outbox": "ok"},
                }, process.name
                openapi = (await client.get(f"{process.base_url}/openapi.json")).json()
                assert process.name in openapi["info"]["title"]
    finally:
        began = asyncio.get_running_loop().time()
        codes = await asyncio.gather(*(p.terminate() for p in processes if p.proc))
        stopped_in = asyncio.get_running_loop().time() - began
    assert stopped_in < 10, "api.md: SIGTERM stops a service gracefully within 10 s"
    # uvicorn re-raises SIGTERM after its graceful shutdown, hence -15 rather than 0.
    assert all(code in (0, -15) for code in codes)
    for process in processes:
        assert "Application shutdown complete" in process.log_path.read_text(), process.name
