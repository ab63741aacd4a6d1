"""The async engine and sessions, and the per-service schema (architecture.md).

Each service owns one PostgreSQL schema; its tables, its Alembic version table, its inbox
and outbox all live there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import asyncpg
import orjson
import sqlalchemy.exc
import tenacity
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# What "the database is unreachable, silent or refusing connections" raises, through
# SQLAlchemy or straight from asyncpg (the ingest's hot path): the HTTP layer answers 503
# (shared/errors.py) and start-up retries (`retry_while_unreachable`).
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,  # refused, reset
    TimeoutError,  # connect or statement timeout (asyncio's is the same class)
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # "connection is closed"
    asyncpg.CannotConnectNowError,  # the server is starting or shutting down
    asyncpg.TooManyConnectionsError,  # max_connections (or a role's limit) reached
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection free within the pool timeout
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


def create_engine(
    url: str,
    pool_size: int = 20,
    *,
    connect_timeout: float = 5.0,
    statement_timeout: float = 10.0,
    pool_timeout: float = 5.0,
) -> AsyncEngine:
    """A fixed pool without pings, every wait bounded.

    No overflow connections opened and closed under load (each costs a connect and type
    introspection): callers beyond the pool wait their turn, at most `pool_timeout`
    seconds, which also bounds the load a replica puts on PostgreSQL. SQLAlchemy 2.1 pings
    each checkout by default, a round trip per use; connections are recycled instead, and
    a dead one fails its statement, which the caller retries like any other failure.
    asyncpg's `timeout` bounds a connect and `command_timeout` every statement, so a
    database that accepts connections but answers nothing fails a request in bounded time
    instead of hanging it (docs/decisions.md, "Runtime").
    """
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        pool_pre_ping=False,
        hide_parameters=True,  # errors end up in logs and x-error headers: no personal data
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={"timeout": connect_timeout, "command_timeout": statement_timeout},
    )


class Database:
    """One engine and session factory per process."""

    def __init__(
        self,
        url: str,
        pool_size: int = 20,
        *,
        connect_timeout: float = 5.0,
        statement_timeout: float = 10.0,
        pool_timeout: float = 5.0,
    ) -> None:
        self.engine = create_engine(
            url,
            pool_size,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
            pool_timeout=pool_timeout,
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._abandoned: set[asyncio.Task[None]] = set()

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

    async def ping(self, within_seconds: float = 1.5) -> None:
        """`SELECT 1` answered within `within_seconds`, else TimeoutError.

        Bounded by not waiting for an abandoned attempt to end: cancelling a connect or a
        statement on a silent socket runs clean-up (rollback, close) that waits on the
        same silence, which made a 2 s readiness probe take 4 s. The abandoned attempt
        ends on its own within the connect and statement timeouts.
        """
        attempt = asyncio.create_task(self._select_one())
        done, _ = await asyncio.wait({attempt}, timeout=within_seconds)
        if attempt in done:
            attempt.result()
            return
        attempt.cancel()
        self._abandoned.add(attempt)
        attempt.add_done_callback(self._forget)
        raise TimeoutError(f"the database did not answer within {within_seconds} s")

    def _forget(self, attempt: asyncio.Task[None]) -> None:
        self._abandoned.discard(attempt)
        if not attempt.cancelled():
            attempt.exception()  # retrieved: it was reported as a timeout already

    async def _select_one(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


class Savepoints:
    """Savepoints in a session's open transaction, issued straight on its asyncpg
    connection: one transaction then applies many messages, each undone alone if it fails.

    One round trip per block: the previous block's savepoint is released and the next one
    set in one simple-protocol query, and the last is released by the commit. SQLAlchemy's
    `begin_nested()` costs several times as much (a round trip for each SAVEPOINT and
    RELEASE, each through its whole execution path), which was most of what applying a
    batch of consumed messages in one transaction is meant to save. The session stays
    usable after a rollback to a savepoint: only the database's transaction state changes,
    which SQLAlchemy Core does not track. Made by `Savepoints.of` after the session has
    executed a statement (the driver's transaction begins with the first one).
    """

    def __init__(self, driver: asyncpg.Connection) -> None:
        self._driver = driver
        self._set = False

    @classmethod
    async def of(cls, session: AsyncSession) -> Savepoints:
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        if not isinstance(driver, asyncpg.Connection) or not driver.is_in_transaction():
            raise RuntimeError("savepoints need the session's transaction to have begun")
        return cls(driver)

    @asynccontextmanager
    async def around(self) -> AsyncIterator[None]:
        """Undo what the block did when it raises (the exception goes on), keep it when it
        returns. What the session does after a block, until the next, is kept with it.
        A cancellation skips the undo: the whole transaction is ending."""
        if self._set:
            await self._driver.execute("RELEASE SAVEPOINT block; SAVEPOINT block")
        else:
            await self._driver.execute("SAVEPOINT block")
            self._set = True
        try:
            yield
        except Exception:
            await self._driver.execute("ROLLBACK TO SAVEPOINT block")
            raise


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc`, or the driver error it wraps, says the database is unavailable.

    SQLAlchemy's asyncpg dialect raises a generic `DBAPIError` for some of the driver's
    errors (too many connections among them), holding the real one as its cause."""
    seen: BaseException | None = exc
    for _ in range(4):  # DBAPIError → the dialect's adapter error → asyncpg's
        if seen is None:
            return False
        if isinstance(seen, UNAVAILABLE_ERRORS):
            return True
        orig = getattr(seen, "orig", None)
        seen = orig if isinstance(orig, BaseException) else seen.__cause__
    return False


def retry_while_unreachable(action: Callable[[], T], *, within_seconds: float, what: str) -> T:
    """Run blocking `action` (migrations at start-up) until the database answers, with
    exponential backoff from 0.5 s to 5 s, one JSON warning line per failed attempt;
    after `within_seconds` the last error is raised (the caller says so and exits)."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_unavailable),
        wait=tenacity.wait_exponential(multiplier=0.5, max=5.0),
        stop=tenacity.stop_before_delay(within_seconds),
        before_sleep=lambda state: log.warning(
            "database not reachable; retrying",
            extra={
                "during": what,
                "attempt": state.attempt_number,
                "error": _error_name(state.outcome.exception() if state.outcome else None),
                "retry_in_s": round(state.next_action.sleep if state.next_action else 0, 2),
            },
        ),
        reraise=True,
    )
    return retrying(action)


def _error_name(exc: BaseException | None) -> str:
    """The error's type and its cause's (SQLAlchemy wraps the driver's), never its text:
    messages can hold statement parameters."""
    if exc is None:
        return "none"
    cause = exc.__cause__
    return type(exc).__name__ + (f" ({type(cause).__name__})" if cause is not None else "")
