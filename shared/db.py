"""The async engine and sessions, and the per-service schema (architecture.md).

Each service owns one PostgreSQL schema; its tables, its Alembic version table, its inbox
and outbox all live there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    return MetaData(schema=schema, naming_convention=NAMING)


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def create_engine(url: str, pool_size: int = 20) -> AsyncEngine:
    """A fixed pool without pings.

    No overflow connections opened and closed under load (each costs a connect and type
    introspection): callers beyond the pool wait their turn, which also bounds the load a
    replica puts on PostgreSQL. SQLAlchemy 2.1 pings each checkout by default, a round trip
    per use; connections are recycled instead, and a dead one fails its statement, which
    the caller retries like any other failure.
    """
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_recycle=1800,
        pool_pre_ping=False,
        hide_parameters=True,  # errors end up in logs and x-error headers: no personal data
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
    )


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str, pool_size: int = 20) -> None:
        self.engine = create_engine(url, pool_size)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection's own asyncpg connection, for a hot path that is a single
        statement: it skips SQLAlchemy's execution layer (the ingest's largest cost per
        request), and asyncpg commits a statement run outside a transaction on its own."""
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            yield raw.driver_connection

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
