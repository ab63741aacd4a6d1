"""Queries of the sender's bundles, messages and their history.

Every change of a message's status is fenced: a worker's claim id must still be on the
row, so a worker whose claim was taken over (its lease ran out) changes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.sender.domain.delivery import WENT_OUT, Status, Verdict
from services.sender.store.tables import message_history, messages, niput, outbox
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import staging_params, staging_sql


@dataclass(frozen=True)
class NippuRecord:
    nippu_id: uuid.UUID
    tunniste: str
    koulutustoimija_oid: str
    linkki: str
    oppilaitokset: tuple[str, ...]
    niputuspvm: dt.date
    voimassa_loppupvm: dt.date
    first_sent_on: dt.date | None = None
    reminder: str | None = None
    reminder_on: dt.date | None = None


@dataclass(frozen=True)
class MessageRecord:
    nippu_id: uuid.UUID
    kind: str
    kanava: str
    resend_number: int
    message_key: str
    status: Status
    recipient: str | None
    subject: str | None
    body: str | None
    detail: str | None = None


@dataclass(frozen=True)
class MessageRef:
    """What an event about a message names."""

    id: int
    nippu_id: uuid.UUID
    message_key: str
    kind: str
    kanava: str
    status: str


@dataclass(frozen=True)
class Claimed:
    """A message claimed for one attempt, with what composing it needs."""

    id: int
    claim_id: uuid.UUID
    nippu_id: uuid.UUID
    kind: str
    kanava: str
    resend_number: int
    message_key: str
    recipient: str | None
    attempts: int
    first_attempt_at: dt.datetime
    oppilaitokset: tuple[str, ...]
    linkki: str
    voimassa_loppupvm: dt.date


@dataclass(frozen=True)
class HistoryRow:
    at: dt.datetime
    status: str
    detail: str | None


@dataclass(frozen=True)
class MessageView:
    message_key: str
    kind: str
    kanava: str
    resend_number: int
    status: str
    recipient: str | None
    attempts: int
    detail: str | None
    sent_at: dt.datetime | None
    personal_data_removed_at: dt.datetime | None
    history: list[HistoryRow]


_REF = (
    messages.c.id,
    messages.c.nippu_id,
    messages.c.message_key,
    messages.c.kind,
    messages.c.kanava,
    messages.c.status,
)


def _ref(row: Any) -> MessageRef:
    return MessageRef(row.id, row.nippu_id, row.message_key, row.kind, row.kanava, row.status)


def _nippu(row: Any) -> NippuRecord:
    return NippuRecord(
        nippu_id=row.nippu_id,
        tunniste=row.tunniste,
        koulutustoimija_oid=row.koulutustoimija_oid,
        linkki=row.linkki,
        oppilaitokset=tuple(row.oppilaitokset),
        niputuspvm=row.niputuspvm,
        voimassa_loppupvm=row.voimassa_loppupvm,
        first_sent_on=row.first_sent_on,
        reminder=row.reminder,
        reminder_on=row.reminder_on,
    )


# --- Bundles -----------------------------------------------------------------------------


async def ensure_nippu(session: AsyncSession, record: NippuRecord) -> NippuRecord:
    """The bundle's row, made by its first `send.requested`: a resend changes nothing of
    it (S4: the same link, validity unchanged)."""
    await session.execute(
        pg_insert(niput)
        .values(
            nippu_id=record.nippu_id,
            tunniste=record.tunniste,
            koulutustoimija_oid=record.koulutustoimija_oid,
            linkki=record.linkki,
            oppilaitokset=list(record.oppilaitokset),
            niputuspvm=record.niputuspvm,
            voimassa_loppupvm=record.voimassa_loppupvm,
        )
        .on_conflict_do_nothing(index_elements=["nippu_id"])
    )
    found = await get_nippu(session, record.nippu_id, lock=False)
    assert found is not None
    return found


async def get_nippu(
    session: AsyncSession, nippu_id: uuid.UUID, *, lock: bool
) -> NippuRecord | None:
    query = select(niput).where(niput.c.nippu_id == nippu_id)
    row = (await session.execute(query.with_for_update() if lock else query)).first()
    return None if row is None else _nippu(row)


async def set_first_sent(session: AsyncSession, nippu_id: uuid.UUID, day: dt.date) -> None:
    await session.execute(
        update(niput)
        .where(niput.c.nippu_id == nippu_id, niput.c.first_sent_on.is_(None))
        .values(first_sent_on=day, updated_at=func.now())
    )


async def reminder_candidates(
    session: AsyncSession, *, first_sent_by: dt.date, window_closed_since: dt.date
) -> list[NippuRecord]:
    """Bundles first sent on or before `first_sent_by` whose reminder is not decided (S3),
    unless their last answer day is before `window_closed_since`."""
    rows = await session.execute(
        select(niput)
        .where(
            niput.c.first_sent_on <= first_sent_by,
            niput.c.reminder.is_(None),
            niput.c.voimassa_loppupvm >= window_closed_since,
        )
        .order_by(niput.c.first_sent_on, niput.c.nippu_id)
    )
    return [_nippu(row) for row in rows]


async def decide_reminder(
    session: AsyncSession,
    nippu_id: uuid.UUID,
    *,
    decision: str,
    day: dt.date,
    voimassa_loppupvm: dt.date,
) -> None:
    await session.execute(
        update(niput)
        .where(niput.c.nippu_id == nippu_id)
        .values(
            reminder=decision,
            reminder_on=day,
            voimassa_loppupvm=voimassa_loppupvm,
            updated_at=func.now(),
        )
    )


async def reminder_recipients(session: AsyncSession, nippu_id: uuid.UUID) -> dict[str, str]:
    """kanava → address of the latest first message or resend that went out on it: the
    reminder goes on the same channels, to the address last used (S3, S4)."""
    rows = await session.execute(
        select(messages.c.kanava, messages.c.recipient)
        .where(
            messages.c.nippu_id == nippu_id,
            messages.c.kind.in_(("initial", "resend")),
            messages.c.status.in_(WENT_OUT),
            messages.c.recipient.is_not(None),
        )
        .order_by(messages.c.kanava, messages.c.resend_number.desc())
        .ext(distinct_on(messages.c.kanava))
    )
    return {row.kanava: row.recipient for row in rows}


# --- Messages ----------------------------------------------------------------------------


async def insert_message(session: AsyncSession, record: MessageRecord) -> MessageRef | None:
    """Record a message under its unique key; None when that key was recorded before."""
    row = (
        await session.execute(
            pg_insert(messages)
            .values(
                nippu_id=record.nippu_id,
                kind=record.kind,
                kanava=record.kanava,
                resend_number=record.resend_number,
                message_key=record.message_key,
                status=record.status,
                recipient=record.recipient,
                subject=record.subject,
                body=record.body,
                detail=record.detail,
            )
            .on_conflict_do_nothing(index_elements=["nippu_id", "kind", "kanava", "resend_number"])
            .returning(*_REF)
        )
    ).first()
    if row is None:
        return None
    ref = _ref(row)
    await add_history(session, ref.id, record.status, record.detail)
    return ref


async def add_history(
    session: AsyncSession, message_id: int, status: str, detail: str | None
) -> None:
    await session.execute(
        insert(message_history).values(message_id=message_id, status=status, detail=detail)
    )


async def claim_due(
    session: AsyncSession, *, claim_id: uuid.UUID, limit: int, lease_seconds: float
) -> list[Claimed]:
    """Claim up to `limit` due messages for one attempt each (SKIP LOCKED: replicas and
    workers share them). A message whose previous claim ran out before its handover is
    due again: nothing of it left us."""
    now = func.now()
    due = (
        select(messages.c.id)
        .where(
            messages.c.status == Status.RECORDED,
            messages.c.next_attempt_at <= now,
            or_(messages.c.claimed_until.is_(None), messages.c.claimed_until < now),
        )
        .order_by(messages.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claimed = (
        update(messages)
        .where(messages.c.id.in_(due))
        .values(
            claim_id=claim_id,
            claimed_until=now + dt.timedelta(seconds=lease_seconds),
            attempts=messages.c.attempts + 1,
            first_attempt_at=func.coalesce(messages.c.first_attempt_at, now),
            updated_at=now,
        )
        .returning(messages.c.id)
        .cte("claimed")
    )
    # The CTE's update is not visible to this statement's reads of `messages` (one
    # snapshot): hence attempts + 1 and the coalesce, as the update set them.
    rows = await session.execute(
        select(
            messages.c.id,
            messages.c.nippu_id,
            messages.c.kind,
            messages.c.kanava,
            messages.c.resend_number,
            messages.c.message_key,
            messages.c.recipient,
            (messages.c.attempts + 1).label("attempts"),
            func.coalesce(messages.c.first_attempt_at, now).label("first_attempt_at"),
            niput.c.oppilaitokset,
            niput.c.linkki,
            niput.c.voimassa_loppupvm,
        )
        .select_from(claimed.join(messages, messages.c.id == claimed.c.id).join(niput))
        .order_by(messages.c.id)
    )
    return [
        Claimed(
            id=row.id,
            claim_id=claim_id,
            nippu_id=row.nippu_id,
            kind=row.kind,
            kanava=row.kanava,
            resend_number=row.resend_number,
            message_key=row.message_key,
            recipient=row.recipient,
            attempts=row.attempts,
            first_attempt_at=row.first_attempt_at,
            oppilaitokset=tuple(row.oppilaitokset),
            linkki=row.linkki,
            voimassa_loppupvm=row.voimassa_loppupvm,
        )
        for row in rows
    ]


async def release_claims(session: AsyncSession, claims: list[tuple[int, uuid.UUID]]) -> None:
    """Unclaim messages whose attempt never started, if the claims are still these."""
    for message_id, claim_id in claims:
        await session.execute(
            update(messages)
            .where(
                messages.c.id == message_id,
                messages.c.claim_id == claim_id,
                messages.c.status == Status.RECORDED,
            )
            .values(claim_id=None, claimed_until=None, updated_at=func.now())
        )


# The delivery's two writes per attempt are single raw statements (one round trip each,
# committed on their own, no SQLAlchemy execution layer): they bound the unknown-outcome
# window and the worker's rate. Statuses are the domain's values.
MARK_SENDING = f"""
    UPDATE {messages.fullname}
    SET status = '{Status.SENDING}', sending_since = now(), updated_at = now()
    WHERE id = $1 AND claim_id = $2 AND status = '{Status.RECORDED}'
    RETURNING id
"""

_FINISH = f"""
    WITH changed AS (
        UPDATE {messages.fullname} SET
            status = $3::text,
            detail = $4::text,
            updated_at = now(),
            next_attempt_at = coalesce($5::timestamptz, next_attempt_at),
            claim_id = CASE WHEN $3::text = '{Status.RECORDED}' THEN NULL ELSE claim_id END,
            claimed_until =
                CASE WHEN $3::text = '{Status.RECORDED}' THEN NULL ELSE claimed_until END,
            sending_since =
                CASE WHEN $3::text = '{Status.RECORDED}' THEN NULL ELSE sending_since END,
            sent_at = CASE WHEN $3::text = '{Status.SENT}' THEN now() ELSE sent_at END,
            server_id = CASE WHEN $3::text = '{Status.SENT}' THEN $6::text ELSE server_id END
        WHERE id = $1 AND claim_id = $2
          AND status IN ('{Status.RECORDED}', '{Status.SENDING}', '{Status.UNKNOWN}')
        RETURNING id, nippu_id
    ), history AS (
        INSERT INTO {message_history.fullname} (message_id, status, detail)
        SELECT id, $3::text, $4::text FROM changed
    ), first_sent AS (
        UPDATE {niput.fullname} SET first_sent_on = $7::date, updated_at = now()
        WHERE $7::date IS NOT NULL AND first_sent_on IS NULL
          AND nippu_id IN (SELECT nippu_id FROM changed)
    ){{staged}}
    SELECT count(*) FROM changed
"""
FINISH_QUIET = _FINISH.format(staged="")
FINISH_REPORTED = _FINISH.format(
    staged=f", staged AS ({staging_sql(outbox, first_param=8, rows_from='changed')})"
)


async def mark_sending(conn: asyncpg.Connection, message_id: int, claim_id: uuid.UUID) -> bool:
    """Open the unknown-outcome window; False when the claim is no longer this worker's."""
    return await conn.fetchval(MARK_SENDING, message_id, claim_id) is not None


async def finish_attempt(
    conn: asyncpg.Connection,
    message_id: int,
    claim_id: uuid.UUID,
    verdict: Verdict,
    *,
    server_id: str | None,
    first_sent_on: dt.date | None,
    event: Envelope | None,
) -> bool:
    """Record an attempt's verdict with its history, the bundle's first send when
    `first_sent_on`, and `event` staged in the outbox, in one statement; False when the
    claim is no longer this worker's. A late answer still settles a message the lease
    had already counted as unknown."""
    if verdict.status is Status.RECORDED and verdict.retry_at is None:
        raise ValueError("a retry needs its due time")
    params: list[object] = [
        message_id,
        claim_id,
        str(verdict.status),
        verdict.detail,
        verdict.retry_at,
        server_id,
        first_sent_on,
    ]
    statement = FINISH_QUIET
    if event is not None:
        statement = FINISH_REPORTED
        params.extend(staging_params(event))
    changed: int = await conn.fetchval(statement, *params)
    return changed == 1


async def expire_sending(session: AsyncSession, detail: str) -> list[MessageRef]:
    """Messages left `sending` past their lease (their worker died or hung inside the
    handover): the unknown outcome, never sent again."""
    rows = (
        await session.execute(
            update(messages)
            .where(messages.c.status == Status.SENDING, messages.c.claimed_until < func.now())
            .values(status=Status.UNKNOWN, detail=detail, updated_at=func.now())
            .returning(*_REF)
        )
    ).all()
    refs = [_ref(row) for row in rows]
    for ref in refs:
        await add_history(session, ref.id, Status.UNKNOWN, detail)
    return refs


async def report_delivery(
    session: AsyncSession, server_id: str, status: Status, detail: str | None
) -> tuple[bool, MessageRef | None]:
    """An SMS delivery report: (known, the changed message or None when it already had
    that status)."""
    row = (
        await session.execute(
            select(*_REF).where(messages.c.server_id == server_id).with_for_update()
        )
    ).first()
    if row is None:
        return False, None
    if row.status == status:
        return True, None
    updated = (
        await session.execute(
            update(messages)
            .where(messages.c.id == row.id)
            .values(status=status, detail=detail, updated_at=func.now())
            .returning(*_REF)
        )
    ).one()
    await add_history(session, row.id, status, detail)
    return True, _ref(updated)


async def messages_of(session: AsyncSession, nippu_id: uuid.UUID) -> list[MessageView]:
    rows = (
        await session.execute(
            select(messages).where(messages.c.nippu_id == nippu_id).order_by(messages.c.id)
        )
    ).all()
    history = (
        await session.execute(
            select(message_history)
            .join(messages)
            .where(messages.c.nippu_id == nippu_id)
            .order_by(message_history.c.id)
        )
    ).all()
    by_message: dict[int, list[HistoryRow]] = {}
    for h in history:
        by_message.setdefault(h.message_id, []).append(HistoryRow(h.at, h.status, h.detail))
    return [
        MessageView(
            message_key=row.message_key,
            kind=row.kind,
            kanava=row.kanava,
            resend_number=row.resend_number,
            status=row.status,
            recipient=row.recipient,
            attempts=row.attempts,
            detail=row.detail,
            sent_at=row.sent_at,
            personal_data_removed_at=row.personal_data_removed_at,
            history=by_message.get(row.id, []),
        )
        for row in rows
    ]


async def remove_personal_data(session: AsyncSession, window_closed_before: dt.date) -> int:
    """P1: empty the addresses and rendered texts of messages of bundles whose last answer
    day is before `window_closed_before`; statuses and history stay. Messages still on
    their way are left alone."""
    result = await session.execute(
        update(messages)
        .where(
            messages.c.nippu_id == niput.c.nippu_id,
            niput.c.voimassa_loppupvm < window_closed_before,
            messages.c.personal_data_removed_at.is_(None),
            messages.c.status.not_in((Status.RECORDED, Status.SENDING)),
        )
        .values(
            recipient=None,
            subject=None,
            body=None,
            personal_data_removed_at=func.now(),
            updated_at=func.now(),
        )
        .returning(messages.c.id)
    )
    return len(result.all())
