"""The database helpers against the real PostgreSQL: what one writes, the other reads."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.db import Database
from tests.support.infra import Infra


async def test_driver_connection_statements_are_committed(infra: Infra) -> None:
    db = Database(infra.database_url, pool_size=2)
    try:
        async with db.driver_connection() as conn:
            await conn.execute("CREATE TABLE autocommit_probe (n int)")
            await conn.execute("INSERT INTO autocommit_probe VALUES (1)")
        async with db.transaction() as session:
            count = await session.scalar(text("SELECT count(*) FROM autocommit_probe"))
        assert count == 1
    finally:
        async with db.driver_connection() as conn:
            await conn.execute("DROP TABLE IF EXISTS autocommit_probe")
        await db.dispose()


async def test_transaction_rolls_back_on_error(infra: Infra) -> None:
    db = Database(infra.database_url, pool_size=2)
    try:
        async with db.driver_connection() as conn:
            await conn.execute("CREATE TABLE rollback_probe (n int)")
        with pytest.raises(RuntimeError):
            async with db.transaction() as session:
                await session.execute(text("INSERT INTO rollback_probe VALUES (1)"))
                raise RuntimeError("boom")
        async with db.transaction() as session:
            assert await session.scalar(text("SELECT count(*) FROM rollback_probe")) == 0
    finally:
        async with db.driver_connection() as conn:
            await conn.execute("DROP TABLE IF EXISTS rollback_probe")
        await db.dispose()
