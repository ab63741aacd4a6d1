"""The whole system as separate processes, for end-to-end tests: the fakes (`python -m
tests.fakes`) and the four services (`python -m services.<name>`), on free loopback ports,
on a database and RabbitMQ vhost of their own (so dated runs, which are unique per job and
date, never meet another test's), with the schedulers off: dates are driven by runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from demo.driver import Endpoints
from shared.settings import REPO_ROOT
from tests.support.infra import Infra, create_infra, destroy_infra
from tests.support.services import ServiceProcess, free_port, service_env

SERVICES = ("ingest", "bundler", "arvo_adapter", "sender")


@dataclass
class System:
    infra: Infra
    endpoints: Endpoints
    processes: dict[str, ServiceProcess]
    fakes: subprocess.Popen[bytes]
    logs: Path


async def _fakes_ready(urls: list[str], proc: subprocess.Popen[bytes], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        for url in urls:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("the fakes exited; see their log")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        break
                if loop.time() > deadline:
                    raise TimeoutError(f"fake not ready: {url}")
                await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running_system(**extra_env: str) -> AsyncIterator[System]:
    infra = await create_infra()
    logs = Path(REPO_ROOT) / ".run"
    logs.mkdir(exist_ok=True)
    ports = {
        name: free_port()
        for name in ("FAKE_ARVO_PORT", "FAKE_SMS_PORT", "FAKE_SMTP_PORT", "FAKE_SMTP_VIEW_PORT")
    }
    fakes_log = (logs / f"test-fakes-{ports['FAKE_ARVO_PORT']}.log").open("ab")
    fakes = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes"],
        cwd=REPO_ROOT,
        env={**os.environ, **{k: str(v) for k, v in ports.items()}, "DEVELOPMENT_MODE": "true"},
        stdout=fakes_log,
        stderr=subprocess.STDOUT,
    )
    processes: dict[str, ServiceProcess] = {}
    try:
        fake = "http://127.0.0.1"
        await _fakes_ready(
            [
                f"{fake}:{ports['FAKE_ARVO_PORT']}/_fake/state",
                f"{fake}:{ports['FAKE_SMS_PORT']}/_fake/messages",
                f"{fake}:{ports['FAKE_SMTP_VIEW_PORT']}/_fake/messages",
            ],
            fakes,
            timeout=30,
        )
        env = service_env(
            infra,
            SCHEDULER_ENABLED="false",
            ARVO_URL=f"{fake}:{ports['FAKE_ARVO_PORT']}/api/",
            SMS_GATEWAY_URL=f"{fake}:{ports['FAKE_SMS_PORT']}",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(ports["FAKE_SMTP_PORT"]),
            # PostgreSQL's connections are shared with every other test session on the
            # machine (max_connections 100): small pools, bounded prefetch.
            DB_POOL_SIZE="6",
            CONSUMER_PREFETCH="8",
            ARVO_BACKOFF_INITIAL_SECONDS="0.05",
            ARVO_BACKOFF_MAX_SECONDS="0.5",
            **extra_env,
        )
        for name in SERVICES:
            processes[name] = ServiceProcess(name, env)
        processes["sender"].env["ARVO_ADAPTER_URL"] = processes["arvo_adapter"].base_url
        await asyncio.gather(*(p.start(timeout=60) for p in processes.values()))
        endpoints = Endpoints(
            ingest=processes["ingest"].base_url,
            bundler=processes["bundler"].base_url,
            arvo_adapter=processes["arvo_adapter"].base_url,
            sender=processes["sender"].base_url,
            fake_arvo=f"{fake}:{ports['FAKE_ARVO_PORT']}",
            fake_sms=f"{fake}:{ports['FAKE_SMS_PORT']}",
            fake_smtp_view=f"{fake}:{ports['FAKE_SMTP_VIEW_PORT']}",
        )
        yield System(infra, endpoints, processes, fakes, logs)
    finally:
        await asyncio.gather(
            *(p.terminate() for p in processes.values() if p.proc and p.proc.poll() is None),
            return_exceptions=True,
        )
        fakes.terminate()
        await asyncio.to_thread(fakes.wait, 15)
        fakes_log.close()
        await destroy_infra(infra)
