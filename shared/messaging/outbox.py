"""The transactional outbox (architecture.md, "Messages").

An event is written into the service's `outbox` table in the same transaction as the
state change that caused it, so a crash can never keep one without the other. A relay
publishes the rows in id order with publisher confirms and deletes them only after the
broker confirmed. Delivery is at least once (a crash between confirm and delete publishes
a row again); consumers dedupe on `message_id` through their inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge
from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.logging import current_correlation_id
from shared.messaging.broker import Broker, BrokerUnavailable
from shared.messaging.envelope import SCHEMA_VERSION, Envelope

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.01
METRICS_INTERVAL_SECONDS = 1.0
CLEANUP_INTERVAL_SECONDS = 300.0
PUBLISHED = Counter("outbox_published_total", "Events published from the outbox", ["type"])
# Every worker process reports the same table: the live maximum is the true value.
PENDING = Gauge("outbox_pending", "Rows waiting in the outbox", multiprocess_mode="livemax")
OLDEST_AGE = Gauge(
    "outbox_oldest_age_seconds",
    "Age of the oldest row waiting in the outbox",
    multiprocess_mode="livemax",
)


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("message_id", Uuid, nullable=False, unique=True),
        Column("type", Text, nullable=False),
        Column("body", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def build_envelope(event_type: str, payload: BaseModel | dict[str, Any]) -> Envelope:
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    return Envelope(type=event_type, correlation_id=current_correlation_id(), payload=data)


_COLUMNS = ("message_id", "type", "body")


def _row(envelope: Envelope) -> dict[str, Any]:
    """The outbox row of an event: every way of staging one writes these columns."""
    values = (envelope.message_id, envelope.type, envelope.model_dump_json().encode())
    return dict(zip(_COLUMNS, values, strict=True))


async def add_event(
    session: AsyncSession, outbox: Table, event_type: str, payload: BaseModel | dict[str, Any]
) -> Envelope:
    """Stage an event in the caller's transaction; it leaves only if that commits."""
    envelope = build_envelope(event_type, payload)
    await session.execute(insert(outbox).values(_row(envelope)))
    return envelope


async def add_events(
    session: AsyncSession, outbox: Table, events: Sequence[BaseModel]
) -> list[uuid.UUID]:
    """Stage many events (payload models with a `TYPE`) in the caller's transaction, in
    one statement: a dated run that forms thousands of bundles stages their events at
    once. Returns their message ids.

    The payloads are validated models already, so each body is the envelope's JSON with
    the payload's own JSON spliced in (`_body`): one serialisation, no dict round trip."""
    occurred_at = dt.datetime.now(dt.UTC)
    correlation_id = current_correlation_id()
    rows: list[dict[str, Any]] = []
    ids: list[uuid.UUID] = []
    for event in events:
        message_id = uuid.uuid4()
        ids.append(message_id)
        event_type: str = event.TYPE  # type: ignore[attr-defined]
        body = _body(message_id, event_type, occurred_at, correlation_id, event)
        rows.append(dict(zip(_COLUMNS, (message_id, event_type, body), strict=True)))
    if rows:
        await session.execute(insert(outbox), rows)
    return ids


_EMPTY_PAYLOAD = b'"payload":{}}'


def _body(
    message_id: uuid.UUID,
    event_type: str,
    occurred_at: dt.datetime,
    correlation_id: str,
    payload: BaseModel,
) -> bytes:
    """`_row`'s body for a validated payload: the envelope with an empty payload, its
    closing `{}}` replaced by the payload's JSON (the same bytes `Envelope(...)
    .model_dump_json()` gives, as tests/unit check)."""
    head = (
        Envelope.model_construct(
            message_id=message_id,
            type=event_type,
            occurred_at=occurred_at,
            correlation_id=correlation_id,
            schema_version=SCHEMA_VERSION,
            payload={},
        )
        .model_dump_json()
        .encode()
    )
    if not head.endswith(_EMPTY_PAYLOAD):  # the envelope's last field is its payload
        raise AssertionError("the envelope's payload is not its last field")
    return head[: -len(b"{}}")] + payload.__pydantic_serializer__.to_json(payload) + b"}"


def staging_sql(
    outbox: Table,
    *,
    first_param: int,
    rows_from: str,
    payload_from: Mapping[str, str] | None = None,
) -> str:
    """An INSERT that stages one event per row of `rows_from`, to be a CTE of the caller's
    own statement, so a hot path that changes state and stages its event stays one
    statement and one round trip (the ingest's `RECORD_VERSION`).

    The envelope comes from parameters `$first_param`.. in the order `staging_params`
    gives; `payload_from` sets payload fields to expressions over the row (such as the
    version the statement itself assigned). The row written is `_row`'s shape, with the
    body re-serialised by PostgreSQL's jsonb (equal JSON, other whitespace).
    """
    message_id, event_type, envelope = (f"${first_param + i}" for i in range(3))
    body = f"{envelope}::jsonb"
    for field, expression in (payload_from or {}).items():
        if not field.isidentifier():
            raise ValueError(f"payload field {field!r} is not an identifier")
        body = f"jsonb_set({body}, '{{payload,{field}}}', to_jsonb({expression}))"
    return (
        f"INSERT INTO {outbox.fullname} ({', '.join(_COLUMNS)}) "
        f"SELECT {message_id}::uuid, {event_type}, convert_to(({body})::text, 'UTF8') "
        f"FROM {rows_from}"
    )


def staging_params(envelope: Envelope) -> tuple[str, str, str]:
    """The parameters `staging_sql` reads, in its order."""
    return str(envelope.message_id), envelope.type, envelope.model_dump_json()


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_age_seconds: float


async def backlog(session: AsyncSession, outbox: Table) -> Backlog:
    """The true count of waiting rows and the age of the oldest (0 when empty)."""
    row = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.extract("epoch", func.now() - func.min(outbox.c.created_at)), 0),
            ).select_from(outbox)
        )
    ).one()
    return Backlog(int(row[0]), float(row[1]))


class OutboxRelay:
    """Publishes committed outbox rows; several replicas share the work with SKIP LOCKED.

    The relay runs until `stop()`: a pass that fails (broker away, a confirm that does not
    come within the publish timeout, confirms cancelled because the connection died) is
    logged and the rows wait for the next pass; a supervisor restarts the loop should
    anything else end it. `alive` tells readiness whether it runs. In its idle time it
    refreshes the backlog metrics and deletes inbox rows older than the retention.
    """

    def __init__(
        self,
        db: Database,
        outbox: Table,
        broker: Broker,
        *,
        poll_seconds: float = 1.0,
        batch_size: int = 200,
        inbox: Table | None = None,
        inbox_retention: dt.timedelta = dt.timedelta(days=14),
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.broker = broker
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.inbox = inbox
        self.inbox_retention = inbox_retention
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._metrics_due = 0.0
        self._cleanup_due = 0.0

    def wake(self) -> None:
        """Called after a commit that added events, so they leave without waiting a poll."""
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._supervise(), name="outbox-relay")

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _cancelled_by_us(self) -> bool:
        task = asyncio.current_task()
        return self._stopping or (task is not None and task.cancelling() > 0)

    async def _supervise(self) -> None:
        """Only `stop()` ends the relay; anything else that ends its loop restarts it."""
        while True:
            try:
                await self._run()
            except asyncio.CancelledError:
                if self._cancelled_by_us():
                    raise
                log.error("outbox relay loop was cancelled from outside; restarting")
            except Exception:
                log.exception("outbox relay loop failed; restarting")
            await asyncio.sleep(self.poll_seconds)

    async def _run(self) -> None:
        while True:
            try:
                while await self.publish_batch() == self.batch_size:
                    pass
                await self._housekeeping()
            except BrokerUnavailable:
                log.warning("broker unavailable; outbox events wait")
            except TimeoutError:
                log.warning("broker did not confirm in time; outbox events wait")
            except asyncio.CancelledError:
                # aiormq cancels pending confirms when the connection dies (for example
                # after missed heartbeats): that is a failed pass, not our stop.
                if self._cancelled_by_us():
                    raise
                log.warning("publish cancelled by the broker connection; outbox events wait")
            except Exception:
                log.warning("outbox relay pass failed; will retry", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
                # Let the commits of a busy moment gather into one batch.
                await asyncio.sleep(COALESCE_SECONDS)
            self._wake.clear()

    async def _housekeeping(self) -> None:
        """Between passes: refresh the backlog gauges, now and then purge the inbox."""
        now = asyncio.get_running_loop().time()
        if now >= self._metrics_due:
            self._metrics_due = now + METRICS_INTERVAL_SECONDS
            async with self.db.transaction() as session:
                found = await backlog(session, self.outbox)
            PENDING.set(found.pending)
            OLDEST_AGE.set(found.oldest_age_seconds)
        if self.inbox is not None and now >= self._cleanup_due:
            self._cleanup_due = now + CLEANUP_INTERVAL_SECONDS
            await self.purge_inbox()

    async def purge_inbox(self) -> int:
        """Delete inbox rows older than the retention: a redelivery comes within minutes,
        a replay (docs/events.md) is deduplicated by versions, not by the inbox."""
        if self.inbox is None:
            return 0
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(self.inbox).where(
                    self.inbox.c.received_at < func.now() - self.inbox_retention
                )
            )
        removed = int(getattr(result, "rowcount", 0) or 0)
        if removed:
            log.info("inbox rows past retention deleted", extra={"rows": removed})
        return removed

    async def publish_batch(self) -> int:
        """Publish up to one batch; returns how many rows were published and removed.

        One statement takes and deletes the oldest unlocked rows; the deletion commits only
        after the broker confirmed every message of the batch (confirms are pipelined), so
        a failure anywhere rolls it back and the rows wait for the next pass.
        """
        taken = (
            select(self.outbox.c.id)
            .order_by(self.outbox.c.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.db.transaction() as session:
            deleted = (
                await session.execute(
                    delete(self.outbox)
                    .where(self.outbox.c.id.in_(taken))
                    .returning(
                        self.outbox.c.id,
                        self.outbox.c.message_id,
                        self.outbox.c.type,
                        self.outbox.c.body,
                    )
                )
            ).all()
            if not deleted:
                return 0
            rows = sorted(deleted, key=lambda row: row.id)
            await self.broker.publish_many(
                [(row.body, row.type, str(row.message_id)) for row in rows]
            )
        for row in rows:
            PUBLISHED.labels(row.type).inc()
        return len(rows)
