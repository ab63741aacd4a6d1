"""Running our services for tests: in-process on a real uvicorn server, or as processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.service import Service
from shared.settings import REPO_ROOT
from tests.fakes.server import bind_socket, serve
from tests.support.infra import Infra

UPSTREAM_TOKEN = "dev-upstream-token"
READER_TOKEN = "dev-reader-token"
ADMIN_TOKEN = "dev-admin-token"


@dataclass
class Running:
    base_url: str
    service: Service
    client: httpx.AsyncClient


def service_env(infra: Infra, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": infra.database_url,
        "AMQP_URL": infra.amqp_url,
        "OUTBOX_POLL_SECONDS": "0.2",
        "RETRY_DELAYS_MS": "[200, 500, 1000]",
        "DEVELOPMENT_MODE": "true",
        **extra,
    }


@contextlib.asynccontextmanager
async def run_in_process(service: Service) -> AsyncIterator[Running]:
    """Migrate, then serve the app on a free loopback port with its consumers and relay."""
    await asyncio.to_thread(service.migrate)
    app = service.create_app()
    async with serve(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        await _wait_broker(service)
        yield Running(base_url, service, client)


async def _wait_broker(service: Service, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (service.broker.connected and all(c._tag for c in service.consumers)):
        if loop.time() > deadline:
            raise TimeoutError("service did not connect to the broker")
        await asyncio.sleep(0.02)


def free_port() -> int:
    sock = bind_socket()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


class ServiceProcess:
    """`python -m services.<name>` as a child process, for crash and shutdown tests."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.env = {**os.environ, **env, "PORT": str(self.port)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(REPO_ROOT) / ".run" / f"test-{name}-{self.port}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 30.0) -> None:
        self.log_path.parent.mkdir(exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: see {self.log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    ready = await client.get(f"{self.base_url}/health/ready")
                    if ready.status_code == 200:
                        return
                if loop.time() > deadline:
                    raise TimeoutError(f"{self.name} not ready: see {self.log_path}")
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    async def terminate(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.proc.wait, timeout)
