"""Fixtures that run each fake as a real server on a free loopback port.

Servers live for the whole session (one event loop); their state is reset before each
test so tests stay independent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from tests.fakes import arvo, sms
from tests.fakes.server import serve
from tests.fakes.smtp import FakeSmtp

ARVO_USER = "arvo-test"
ARVO_PASSWORD = "s3cret"
SMS_TOKEN = "test-sms-token"


@dataclass
class RunningArvo:
    """A served fake Arvo: its root URL and direct access to its state."""

    root: str
    state: arvo.ArvoState

    @property
    def api(self) -> str:
        return f"{self.root}/api/"


@dataclass
class RunningSms:
    root: str
    state: sms.SmsState


@pytest_asyncio.fixture(scope="session")
async def arvo_server() -> AsyncIterator[RunningArvo]:
    app = arvo.create_app(ARVO_USER, ARVO_PASSWORD)
    async with serve(app) as root:
        yield RunningArvo(root, app.state.arvo)


@pytest_asyncio.fixture(scope="session")
async def sms_server() -> AsyncIterator[RunningSms]:
    app = sms.create_app(SMS_TOKEN)
    async with serve(app) as root:
        yield RunningSms(root, app.state.sms)


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[FakeSmtp]:
    with FakeSmtp() as server:
        yield server


@pytest_asyncio.fixture
async def arvo_fake(arvo_server: RunningArvo) -> AsyncIterator[RunningArvo]:
    """The session's fake Arvo, reset through its control API (as other processes would)."""
    async with httpx.AsyncClient(base_url=arvo_server.root) as client:
        (await client.post("/_fake/reset")).raise_for_status()
    yield arvo_server


@pytest_asyncio.fixture
async def arvo_client(arvo_fake: RunningArvo) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated client with the API base URL, like the arvo_adapter's."""
    async with httpx.AsyncClient(
        base_url=arvo_fake.api, auth=(ARVO_USER, ARVO_PASSWORD), timeout=10
    ) as client:
        yield client


@pytest_asyncio.fixture
async def control(arvo_fake: RunningArvo) -> AsyncIterator[httpx.AsyncClient]:
    """Unauthenticated client for the fake Arvo's ``/_fake/`` control API."""
    async with httpx.AsyncClient(base_url=arvo_fake.root, timeout=10) as client:
        yield client


@pytest_asyncio.fixture
async def sms_fake(sms_server: RunningSms) -> AsyncIterator[RunningSms]:
    async with httpx.AsyncClient(base_url=sms_server.root) as client:
        (await client.post("/_fake/reset")).raise_for_status()
    yield sms_server


@pytest.fixture
def smtp_fake(smtp_server: FakeSmtp) -> FakeSmtp:
    smtp_server.clear()
    return smtp_server
