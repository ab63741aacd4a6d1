"""The fake Arvo as a real server, and Arvo clients configured for quick tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio

from services.arvo_adapter.arvo import ArvoClient
from services.arvo_adapter.settings import ArvoAdapterSettings
from tests.fakes import arvo
from tests.fakes.server import serve

ARVO_USER = "adapter"
ARVO_PASSWORD = "pa55-Very-Secret-x9"


@dataclass
class FakeArvo:
    root: str
    state: arvo.ArvoState
    control: httpx.AsyncClient

    async def post(self, path: str, body: dict[str, Any] | None = None) -> None:
        (await self.control.post(f"/_fake/{path}", json=body or {})).raise_for_status()

    async def requests(self) -> list[dict[str, Any]]:
        logged: list[dict[str, Any]] = (await self.control.get("/_fake/state")).json()["requests"]
        return logged


@pytest_asyncio.fixture(scope="session")
async def arvo_served() -> AsyncIterator[tuple[str, arvo.ArvoState]]:
    app = arvo.create_app(ARVO_USER, ARVO_PASSWORD)
    async with serve(app) as root:
        yield root, app.state.arvo


@pytest_asyncio.fixture
async def fake_arvo(arvo_served: tuple[str, arvo.ArvoState]) -> AsyncIterator[FakeArvo]:
    root, state = arvo_served
    async with httpx.AsyncClient(base_url=root, timeout=10) as control:
        fake = FakeArvo(root, state, control)
        await fake.post("reset")
        yield fake


def settings_for(fake: FakeArvo, **overrides: Any) -> ArvoAdapterSettings:
    """Fast retries and short timeouts, so failure tests take fractions of a second."""
    values: dict[str, Any] = {
        "arvo_url": f"{fake.root}/api/",
        "arvo_user": ARVO_USER,
        "arvo_password": ARVO_PASSWORD,
        "arvo_timeout_seconds": 0.4,
        "arvo_connect_timeout_seconds": 0.4,
        "arvo_status_timeout_seconds": 1.0,
        "arvo_max_attempts": 3,
        "arvo_max_total_seconds": 5.0,
        "arvo_backoff_initial_seconds": 0.01,
        "arvo_backoff_max_seconds": 0.05,
        "arvo_breaker_failure_threshold": 50,
        "arvo_breaker_cooldown_seconds": 0.3,
    }
    values.update(overrides)
    return ArvoAdapterSettings(**values)


ClientFactory = Callable[..., ArvoClient]


@pytest_asyncio.fixture
async def make_client(fake_arvo: FakeArvo) -> AsyncIterator[ClientFactory]:
    """``make_client(**setting_overrides)``; every client made is closed after the test."""
    made: list[ArvoClient] = []

    def factory(**overrides: Any) -> ArvoClient:
        client = ArvoClient(settings_for(fake_arvo, **overrides))
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()


@pytest_asyncio.fixture
async def client(make_client: ClientFactory) -> ArvoClient:
    return make_client()
