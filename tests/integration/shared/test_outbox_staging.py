"""The two ways of staging an event (shared/messaging/outbox.py) write one row shape:
`add_event` in a session, `staging_sql` as a CTE of a caller's own statement."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import select, text

from shared.db import Database, service_metadata
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import (
    add_event,
    build_envelope,
    outbox_table,
    staging_params,
    staging_sql,
)
from tests.support.infra import Infra

SCHEMA = "outbox_staging_test"
metadata = service_metadata(SCHEMA)
outbox = outbox_table(metadata)
# Stages one event per row of `assigned`, with payload.version taken from the row.
STAGED = f"""
    WITH assigned AS (SELECT version FROM (VALUES (7)) AS v (version) WHERE $1),
    staged AS ({
    staging_sql(outbox, first_param=2, rows_from="assigned", payload_from={"version": "version"})
})
    SELECT count(*) FROM assigned
"""


@pytest_asyncio.fixture(name="db", scope="module", loop_scope="session")
async def database(infra: Infra) -> AsyncIterator[Database]:
    db = Database(infra.database_url, pool_size=2)
    async with db.engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        await conn.run_sync(metadata.create_all)
    yield db
    await db.dispose()


async def stored(db: Database, envelope: Envelope) -> tuple[str, Envelope]:
    async with db.transaction() as session:
        row = (
            await session.execute(
                select(outbox.c.type, outbox.c.body).where(
                    outbox.c.message_id == envelope.message_id
                )
            )
        ).one()
    return row.type, Envelope.model_validate_json(row.body)


async def test_a_staged_row_has_add_events_shape_with_the_statements_value(db: Database) -> None:
    note = str(uuid.uuid4())
    async with db.transaction() as session:
        added = await add_event(session, outbox, "test.staged", {"note": note, "version": 0})
    inline = build_envelope("test.staged", {"note": note, "version": 0})
    async with db.driver_connection() as conn:
        assert await conn.fetchval(STAGED, True, *staging_params(inline)) == 1

    added_type, added_body = await stored(db, added)
    inline_type, inline_body = await stored(db, inline)
    assert added_type == inline_type == "test.staged"
    assert added_body == added
    assert inline_body == inline.model_copy(update={"payload": {"note": note, "version": 7}})


async def test_a_statement_that_assigns_nothing_stages_nothing(db: Database) -> None:
    inline = build_envelope("test.staged", {"version": 0})
    async with db.driver_connection() as conn:
        assert await conn.fetchval(STAGED, False, *staging_params(inline)) == 0
    async with db.transaction() as session:
        found = await session.scalar(
            select(outbox.c.id).where(outbox.c.message_id == inline.message_id)
        )
    assert found is None


def test_payload_fields_must_be_identifiers() -> None:
    with pytest.raises(ValueError, match="not an identifier"):
        staging_sql(outbox, first_param=1, rows_from="x", payload_from={"a}'); --": "1"})
