"""Queries of the adapter's work: recording it, taking due rows, locking a bundle while
Arvo is called, and writing down each answer.

A bundle (with its changes) or a TPK bundle is worked on by one worker at a time: a
session-level advisory lock held on a connection of its own (`locked`) for as long as the
Arvo calls take. A worker that dies (SIGKILL) loses its connection and with it the lock,
so the next worker takes over at once, with no lease to wait out. The steps in between
are short transactions on that same connection, never one spanning an Arvo call.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Row, Table, delete, func, insert, select, text, union, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.arvo_adapter.store.tables import (
    CALLS_IN_DOUBT,
    NOT_DEAD_LETTERED,
    calls,
    changes,
    jakso_tunnukset,
    niput,
    tpk_niput,
)
from shared.db import Database

# The first key of the two-int advisory locks: the adapter's own space.
LOCK_SPACE = 13_003
IN_DOUBT = ("intended", "unknown")
WorkKind = Literal["nippu", "tpk"]
Rowish = Row[Any]


@dataclass(frozen=True)
class WorkKey:
    kind: WorkKind
    id: uuid.UUID


# --- recording (the consumer's transaction) ------------------------------------------


async def insert_nippu(
    session: AsyncSession,
    *,
    nippu_id: uuid.UUID,
    tunniste: str,
    koulutustoimija_oid: str,
    payload: dict[str, Any],
    jaksot: Sequence[dict[str, Any]],
    message_id: uuid.UUID,
    message_body: bytes,
) -> bool:
    """The bundle and its jaksot, each with the request_id all its attempts will carry;
    False when the bundle was recorded before (a redelivery or a second publication)."""
    inserted = await session.execute(
        pg_insert(niput)
        .values(
            nippu_id=nippu_id,
            tunniste=tunniste,
            koulutustoimija_oid=koulutustoimija_oid,
            payload=payload,
            message_id=message_id,
            message_body=message_body,
        )
        .on_conflict_do_nothing()
        .returning(niput.c.nippu_id)
    )
    if inserted.first() is None:
        return False
    if jaksot:
        await session.execute(
            insert(jakso_tunnukset),
            [{"nippu_id": nippu_id, "request_id": uuid.uuid4(), **j} for j in jaksot],
        )
    return True


async def insert_tpk(
    session: AsyncSession,
    *,
    tpk_nippu_id: uuid.UUID,
    payload: dict[str, Any],
    message_id: uuid.UUID,
    message_body: bytes,
) -> bool:
    inserted = await session.execute(
        pg_insert(tpk_niput)
        .values(
            tpk_nippu_id=tpk_nippu_id,
            request_id=uuid.uuid4(),
            payload=payload,
            message_id=message_id,
            message_body=message_body,
        )
        .on_conflict_do_nothing()
        .returning(tpk_niput.c.tpk_nippu_id)
    )
    return inserted.first() is not None


async def insert_change(
    session: AsyncSession,
    *,
    nippu_id: uuid.UUID,
    kind: str,
    jakso_id: int | None,
    payload: dict[str, Any],
    message_id: uuid.UUID,
    message_body: bytes,
) -> None:
    await session.execute(
        insert(changes).values(
            nippu_id=nippu_id,
            kind=kind,
            jakso_id=jakso_id,
            payload=payload,
            message_id=message_id,
            message_body=message_body,
        )
    )


# --- taking work ----------------------------------------------------------------------


async def due_work(
    session: AsyncSession, *, limit: int, exclude: Sequence[uuid.UUID]
) -> list[WorkKey]:
    """Bundles with due work (the bundle itself or a change of it), then TPK bundles;
    oldest first, without those this process is already working on."""
    now = func.now()
    bundles = union(
        select(niput.c.nippu_id.label("id"), niput.c.next_attempt_at.label("at")).where(
            niput.c.state == "pending", niput.c.next_attempt_at <= now
        ),
        select(changes.c.nippu_id.label("id"), changes.c.next_attempt_at.label("at")).where(
            changes.c.state == "pending", changes.c.next_attempt_at <= now
        ),
    ).subquery()
    query = select(bundles.c.id).order_by(bundles.c.at).limit(limit)
    if exclude:
        query = query.where(bundles.c.id.not_in(exclude))
    keys = [WorkKey("nippu", i) for i in (await session.scalars(query)).unique()]
    room = limit - len(keys)
    if room > 0:
        tpk = (
            select(tpk_niput.c.tpk_nippu_id)
            .where(tpk_niput.c.state == "pending", tpk_niput.c.next_attempt_at <= now)
            .order_by(tpk_niput.c.next_attempt_at)
            .limit(room)
        )
        if exclude:
            tpk = tpk.where(tpk_niput.c.tpk_nippu_id.not_in(exclude))
        keys += [WorkKey("tpk", i) for i in await session.scalars(tpk)]
    return keys


async def due_now(session: AsyncSession, key: uuid.UUID) -> int:
    """Bring a bundle's (or TPK bundle's) waiting work forward; how many rows."""
    count = 0
    for table, column in (
        (niput, niput.c.nippu_id),
        (changes, changes.c.nippu_id),
        (tpk_niput, tpk_niput.c.tpk_nippu_id),
    ):
        result = await session.execute(
            update(table)
            .where(column == key, table.c.state == "pending")
            .values(next_attempt_at=func.now(), updated_at=func.now())
        )
        count += result.rowcount  # type: ignore[attr-defined]
    return count


async def backlog(session: AsyncSession) -> dict[str, int]:
    """Rows waiting for Arvo, for the backlog gauge."""
    counts: dict[str, int] = {}
    for name, table in (("niput", niput), ("tpk_niput", tpk_niput), ("changes", changes)):
        counts[name] = int(
            await session.scalar(
                select(func.count()).select_from(table).where(table.c.state == "pending")
            )
            or 0
        )
    return counts


class Locked:
    """A bundle held by this worker: short transactions on the lock's own connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(bind=self.conn, expire_on_commit=False) as session, session.begin():
            yield session


@asynccontextmanager
async def locked(db: Database, key: uuid.UUID) -> AsyncIterator[Locked | None]:
    """Hold `key` for this worker, or yield None when another worker holds it."""
    async with db.engine.connect() as conn:
        statement = text("SELECT pg_try_advisory_lock(:space, hashtext(:key))")
        params = {"space": LOCK_SPACE, "key": str(key)}
        got = bool(await conn.scalar(statement, params))
        await conn.commit()
        if not got:
            yield None
            return
        try:
            yield Locked(conn)
        finally:
            try:
                await conn.rollback()
                await conn.execute(
                    text("SELECT pg_advisory_unlock(:space, hashtext(:key))"), params
                )
                await conn.commit()
            except Exception:
                # A broken connection: dropping it releases the lock with the session.
                await conn.invalidate()


# --- reading and writing a bundle's work -----------------------------------------------


async def get_nippu(session: AsyncSession, nippu_id: uuid.UUID) -> Rowish | None:
    return (await session.execute(select(niput).where(niput.c.nippu_id == nippu_id))).first()


async def get_nippu_by_tunniste(session: AsyncSession, tunniste: str) -> Rowish | None:
    return (await session.execute(select(niput).where(niput.c.tunniste == tunniste))).first()


async def jaksot_of(session: AsyncSession, nippu_id: uuid.UUID) -> list[Rowish]:
    rows = await session.execute(
        select(jakso_tunnukset)
        .where(jakso_tunnukset.c.nippu_id == nippu_id)
        .order_by(jakso_tunnukset.c.jakso_id)
    )
    return list(rows)


@dataclass
class JaksoRecord:
    """A jakso's row, kept current in memory while its bundle is worked on."""

    jakso_id: int
    request_id: uuid.UUID
    data: dict[str, Any]
    kesto: int
    state: str
    tunnus: str | None
    ei_kuulu: bool
    cancelled: bool
    code_deleted_at: dt.datetime | None


@dataclass
class BundleWork:
    """Everything a worker needs of a bundle, read in one transaction."""

    nippu: Rowish | None
    jaksot: list[JaksoRecord]
    changes: list[Rowish]
    link_calls_in_doubt: list[int]


async def load_bundle(session: AsyncSession, nippu_id: uuid.UUID, link_endpoint: str) -> BundleWork:
    """`nippu.due`: its own backoff has run out (a due change alone does not hurry it)."""
    nippu = (
        await session.execute(
            select(niput, (niput.c.next_attempt_at <= func.now()).label("due")).where(
                niput.c.nippu_id == nippu_id
            )
        )
    ).first()
    jaksot = [
        JaksoRecord(
            jakso_id=r.jakso_id,
            request_id=r.request_id,
            data=r.data,
            kesto=r.kesto,
            state=r.state,
            tunnus=r.tunnus,
            ei_kuulu=r.ei_kuulu,
            cancelled=r.cancelled,
            code_deleted_at=r.code_deleted_at,
        )
        for r in await jaksot_of(session, nippu_id)
    ]
    doubts = (
        await calls_in_doubt(session, subject=nippu_id, endpoint=link_endpoint)
        if nippu is not None and nippu.state == "pending"
        else []
    )
    return BundleWork(nippu, jaksot, await pending_changes(session, nippu_id), doubts)


async def get_jakso(session: AsyncSession, nippu_id: uuid.UUID, jakso_id: int) -> Rowish | None:
    rows = await session.execute(
        select(jakso_tunnukset).where(
            jakso_tunnukset.c.nippu_id == nippu_id, jakso_tunnukset.c.jakso_id == jakso_id
        )
    )
    return rows.first()


async def update_jakso(
    session: AsyncSession, nippu_id: uuid.UUID, jakso_id: int, **values: Any
) -> None:
    await session.execute(
        update(jakso_tunnukset)
        .where(jakso_tunnukset.c.nippu_id == nippu_id, jakso_tunnukset.c.jakso_id == jakso_id)
        .values(**values, updated_at=func.now())
    )


async def mark_code_deleted(session: AsyncSession, nippu_id: uuid.UUID, jakso_id: int) -> None:
    await update_jakso(session, nippu_id, jakso_id, code_deleted_at=func.now())


async def set_tila(session: AsyncSession, nippu_id: uuid.UUID, tila: str) -> None:
    """The sending status last told to Arvo."""
    await session.execute(
        update(niput).where(niput.c.nippu_id == nippu_id).values(tila=tila, updated_at=func.now())
    )


async def applied_status_bodies(session: AsyncSession, nippu_id: uuid.UUID) -> list[bytes]:
    """The messages of the bundle's status updates already applied in Arvo."""
    rows = await session.execute(
        select(changes.c.message_body).where(
            changes.c.nippu_id == nippu_id,
            changes.c.kind == "patch_nippu",
            changes.c.state == "done",
        )
    )
    return [bytes(body) for (body,) in rows]


async def pending_changes(session: AsyncSession, nippu_id: uuid.UUID) -> list[Rowish]:
    rows = await session.execute(
        select(changes)
        .where(changes.c.nippu_id == nippu_id, changes.c.state == "pending")
        .order_by(changes.c.id)
    )
    return list(rows)


async def get_tpk(session: AsyncSession, tpk_nippu_id: uuid.UUID) -> Rowish | None:
    rows = await session.execute(select(tpk_niput).where(tpk_niput.c.tpk_nippu_id == tpk_nippu_id))
    return rows.first()


def _key_of(table: Table) -> Any:
    return next(iter(table.primary_key.columns))


async def finish(session: AsyncSession, table: Table, key: Any, **values: Any) -> None:
    """The row's work is done (`values` are what Arvo answered)."""
    await session.execute(
        update(table)
        .where(_key_of(table) == key)
        .values(state="done", done_at=func.now(), updated_at=func.now(), last_error=None, **values)
    )


async def reject(
    session: AsyncSession, table: Table, key: Any, *, error: str, arvo_errors: dict[str, Any]
) -> None:
    """Arvo said no, and asking again cannot change that: the row waits for a human."""
    await session.execute(
        update(table)
        .where(_key_of(table) == key)
        .values(
            state="rejected",
            last_error=error[:1000],
            arvo_errors=arvo_errors,
            updated_at=func.now(),
        )
    )


async def postpone(
    session: AsyncSession,
    table: Table,
    key: Any,
    *,
    delay_seconds: float,
    error: str,
    count_attempt: bool = True,
) -> None:
    """Try again later; `count_attempt=False` when Arvo was not even asked (circuit open)."""
    await session.execute(
        update(table)
        .where(_key_of(table) == key)
        .values(
            attempts=table.c.attempts + (1 if count_attempt else 0),
            next_attempt_at=func.now() + dt.timedelta(seconds=delay_seconds),
            last_error=error[:1000],
            updated_at=func.now(),
        )
    )


async def attempts_of(session: AsyncSession, table: Table, key: Any) -> int:
    return int(await session.scalar(select(table.c.attempts).where(_key_of(table) == key)) or 0)


async def rejected_not_dead_lettered(
    session: AsyncSession, limit: int
) -> list[tuple[Table, Rowish]]:
    found: list[tuple[Table, Rowish]] = []
    for table in (niput, tpk_niput, changes):
        rows = await session.execute(
            # Literal SQL: the partial indexes' predicate (tables.py), which a bound
            # parameter would not match in a generic plan.
            select(table).where(text(NOT_DEAD_LETTERED)).limit(limit)
        )
        found += [(table, row) for row in rows]
    return found


async def mark_dead_lettered(session: AsyncSession, table: Table, key: Any) -> None:
    await session.execute(
        update(table).where(_key_of(table) == key).values(dead_lettered_at=func.now())
    )


# --- the intent log ---------------------------------------------------------------------


async def intend(
    session: AsyncSession,
    *,
    endpoint: str,
    request_id: uuid.UUID,
    subject: uuid.UUID,
    jakso_id: int | None = None,
) -> int:
    """Write down a creating call before it is made; its id closes it afterwards."""
    call_id = await session.scalar(
        insert(calls)
        .values(endpoint=endpoint, request_id=request_id, subject=subject, jakso_id=jakso_id)
        .returning(calls.c.id)
    )
    assert call_id is not None
    return int(call_id)


async def close_call(session: AsyncSession, call_id: int, state: str) -> None:
    """`answered`: Arvo said what it did; `unknown`: sent, answer lost."""
    await session.execute(
        update(calls).where(calls.c.id == call_id).values(state=state, finished_at=func.now())
    )


async def forget_call(session: AsyncSession, call_id: int) -> None:
    """Arvo surely did nothing (refused, 5xx, never reached): not worth keeping."""
    await session.execute(delete(calls).where(calls.c.id == call_id))


async def calls_in_doubt(session: AsyncSession, *, subject: uuid.UUID, endpoint: str) -> list[int]:
    rows = await session.scalars(
        select(calls.c.id).where(
            calls.c.subject == subject,
            calls.c.endpoint == endpoint,
            calls.c.state.in_(IN_DOUBT),
        )
    )
    return list(rows)


async def mark_reconciled(session: AsyncSession, call_ids: Sequence[int]) -> None:
    await session.execute(
        update(calls)
        .where(calls.c.id.in_(call_ids))
        .values(state="reconciled", finished_at=func.coalesce(calls.c.finished_at, func.now()))
    )


async def request_ids_in_doubt(session: AsyncSession, endpoint: str) -> dict[uuid.UUID, int]:
    """request_id → how many of its calls have an unknown effect (possible orphans)."""
    rows = await session.execute(
        select(calls.c.request_id, func.count())
        .where(calls.c.endpoint == endpoint, calls.c.state.in_(IN_DOUBT))
        .group_by(calls.c.request_id)
    )
    return {request_id: int(count) for request_id, count in rows}


async def calls_left_in_doubt(session: AsyncSession, *, limit: int) -> list[Rowish]:
    """Creating calls whose effect is unknown, newest first: for links the next attempt
    reconciles them; for codes and TPK links they are possible orphans in Arvo."""
    rows = await session.execute(
        select(calls).where(text(CALLS_IN_DOUBT)).order_by(calls.c.id.desc()).limit(limit)
    )
    return list(rows)


async def count_in_doubt(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(calls.c.endpoint, func.count())
        .where(text(CALLS_IN_DOUBT))
        .group_by(calls.c.endpoint)
    )
    return {endpoint: int(count) for endpoint, count in rows}


async def mark_vastattu_reported(session: AsyncSession, tunniste: str) -> Rowish | None:
    """Once per bundle: the row, when this is the first answer seen for it."""
    rows = await session.execute(
        update(niput)
        .where(
            niput.c.tunniste == tunniste,
            niput.c.vastattu_reported_at.is_(None),
        )
        .values(vastattu_reported_at=func.now(), updated_at=func.now())
        .returning(niput.c.nippu_id)
    )
    found: Rowish | None = rows.first()
    return found
