"""Session-wide real infrastructure for integration and e2e tests.

Unit tests never touch these fixtures. Integration tests get one fresh PostgreSQL database
and one RabbitMQ vhost for the whole session, dropped at the end; tests keep their data
apart by using their own ids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.events import EventCapture, capture
from tests.support.infra import Infra, InfrastructureMissing, create_infra, destroy_infra


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def infra() -> AsyncIterator[Infra]:
    try:
        created = await create_infra()
    except InfrastructureMissing as exc:
        pytest.exit(str(exc), returncode=3)
    try:
        yield created
    finally:
        await destroy_infra(created)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def events(infra: Infra) -> AsyncIterator[EventCapture]:
    watcher, connection = await capture(infra.amqp_url)
    yield watcher
    await connection.close()
