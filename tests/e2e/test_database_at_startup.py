"""Start-up while the database is away (issue 11): retry with backoff in JSON log lines,
then either start when it appears or give up with one clear line and a non-zero exit."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url

from shared.settings import REPO_ROOT
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.services import ServiceProcess, free_port, service_env
from tests.support.tcp_proxy import TcpProxy


def _env(infra: Infra, port: int, within: float) -> dict[str, str]:
    url = make_url(infra.database_url).set(port=port).render_as_string(hide_password=False)
    return service_env(
        infra, DATABASE_URL=url, DB_STARTUP_TIMEOUT_SECONDS=str(within), DEVELOPMENT_MODE="true"
    )


def _lines(process: ServiceProcess) -> list[str]:
    return process.log_path.read_text().splitlines() if process.log_path.exists() else []


@pytest.mark.e2e
async def test_an_unreachable_database_ends_start_up_with_one_clear_line(infra: Infra) -> None:
    process = ServiceProcess("ingest", _env(infra, free_port(), within=3))
    process.log_path.parent.mkdir(exist_ok=True)
    with process.log_path.open("wb") as log:
        began = asyncio.get_running_loop().time()
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.ingest"],
            cwd=REPO_ROOT,
            env=process.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        code = await asyncio.to_thread(proc.wait, 30)
        took = asyncio.get_running_loop().time() - began
    assert code == 1
    assert took < 15, "gives up after DB_STARTUP_TIMEOUT_SECONDS (3 s) plus start-up"
    events = [json.loads(line) for line in _lines(process)]  # JSON lines only, no traceback
    retries = [e for e in events if e["event"] == "database not reachable; retrying"]
    [final] = [e for e in events if e["level"] == "ERROR"]
    assert len(retries) >= 2
    assert final["event"] == "database not reachable; giving up"
    assert events[-1] == final


@pytest.mark.e2e
async def test_start_up_waits_for_a_database_that_appears_within_the_window(
    infra: Infra,
) -> None:
    url = make_url(infra.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.port = free_port()
    process = ServiceProcess("ingest", _env(infra, proxy.port, within=60))
    starting = asyncio.create_task(process.start(timeout=60))
    try:
        await eventually(
            lambda: asyncio.to_thread(_lines, process),
            lambda lines: any("database not reachable; retrying" in line for line in lines),
            what="a retry logged",
        )
        await proxy.start()  # the database appears
        await starting
    finally:
        if process.proc is not None and process.proc.poll() is None:
            await process.terminate()
        await proxy.cut()
