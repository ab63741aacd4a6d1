"""The ingest on a real uvicorn server, against the session's PostgreSQL and RabbitMQ."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from services.ingest.app import create_service
from services.ingest.settings import IngestSettings
from services.ingest.store.tables import document_versions, outbox
from tests.support.infra import Infra
from tests.support.services import UPSTREAM_TOKEN, Running, run_in_process

_ids = itertools.count(random.randint(10**6, 10**9) * 1000)


def ingest_settings(infra: Infra, **overrides: Any) -> IngestSettings:
    values: dict[str, Any] = {
        "database_url": infra.database_url,
        "amqp_url": infra.amqp_url,
        "outbox_poll_seconds": 0.2,
        "retry_delays_ms": [200, 500, 1000],
        "development_mode": True,
    }
    return IngestSettings(**{**values, **overrides})


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ingest(infra: Infra) -> AsyncIterator[Running]:
    async with run_in_process(create_service(ingest_settings(infra))) as running:
        running.client.headers["authorization"] = f"Bearer {UPSTREAM_TOKEN}"
        yield running


@pytest.fixture
def new_id() -> Iterator[Any]:
    """Fresh HOKS ids per test, so tests share the database without seeing each other."""
    yield lambda: next(_ids)


async def stored_versions(running: Running, key: str) -> int:
    async with running.service.db.transaction() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(document_versions)
            .where(document_versions.c.key == key)
        )
    return int(count or 0)


async def pending_outbox(running: Running) -> int:
    async with running.service.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(outbox)) or 0)
