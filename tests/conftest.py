"""Session-wide real infrastructure for integration and e2e tests.

Tests are marked by their directory: `tests/integration` → `integration`, `tests/e2e` →
`e2e`. Only a session that selected such tests needs PostgreSQL and RabbitMQ, and it
stops before running anything when either does not answer; `scripts/test tests/unit` (or
`-m "not integration and not e2e"`) runs without them.

Unit tests never touch these fixtures. Integration tests get one fresh PostgreSQL database
and one RabbitMQ vhost for the whole session, dropped at the end; tests keep their data
apart by using their own ids.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.events import EventCapture, capture
from tests.support.infra import (
    HOW_TO_START,
    Infra,
    InfrastructureMissing,
    create_infra,
    destroy_infra,
    missing_test_infra,
)

TESTS = Path(__file__).resolve().parent
# Tests run with the development API clients and fake credentials, which a service refuses
# outside development mode (fail closed); a test of that refusal sets it to false itself.
os.environ.setdefault("DEVELOPMENT_MODE", "true")
# Dated jobs run when a test asks for them (runs API, `Runs.execute`), never because a
# test's frozen clock happens to fall on a bundling day.
os.environ.setdefault("SCHEDULER_ENABLED", "false")
MARKED_DIRECTORIES = {"integration": TESTS / "integration", "e2e": TESTS / "e2e"}
NEEDS_INFRA = tuple(MARKED_DIRECTORIES)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its directory, before `-m` selects (hence tryfirst)."""
    for item in items:
        for marker, directory in MARKED_DIRECTORIES.items():
            if directory in item.path.parents:
                item.add_marker(marker)


def pytest_collection_finish(session: pytest.Session) -> None:
    """When the selected tests need PostgreSQL and RabbitMQ, both must answer: say so once,
    before any test runs, rather than fail test by test."""
    if session.config.option.collectonly:
        return
    if not any(item.get_closest_marker(m) for item in session.items for m in NEEDS_INFRA):
        return
    missing = missing_test_infra()
    if missing:
        pytest.exit(
            "; ".join(missing) + ". The selected tests include integration or e2e tests, "
            f"which need both. {HOW_TO_START} Unit tests alone: scripts/test tests/unit.",
            returncode=3,
        )


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
