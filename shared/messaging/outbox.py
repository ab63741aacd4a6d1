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
import logging
from collections.abc import Mapping
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
from shared.messaging.envelope import Envelope

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.01
PUBLISHED = Counter("outbox_published_total", "Events published from the outbox", ["type"])
# Each worker's relay measures the one outbox: the latest reading of a living one is it.
PENDING = Gauge(
    "outbox_pending",
    "Outbox rows seen waiting at the last relay pass",
    multiprocess_mode="livemostrecent",
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


class OutboxRelay:
    """Publishes committed outbox rows; several replicas share the work with SKIP LOCKED."""

    def __init__(
        self,
        db: Database,
        outbox: Table,
        broker: Broker,
        *,
        poll_seconds: float = 1.0,
        batch_size: int = 200,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.broker = broker
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Called after a commit that added events, so they leave without waiting a poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                while await self.publish_batch() == self.batch_size:
                    pass
            except BrokerUnavailable:
                log.warning("broker unavailable; outbox events wait")
            except Exception:
                log.warning("outbox relay pass failed; will retry", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
                # Let the commits of a busy moment gather into one batch: a pass costs three
                # round trips however few rows it carries.
                await asyncio.sleep(COALESCE_SECONDS)
            self._wake.clear()

    async def publish_batch(self) -> int:
        """Publish up to one batch; returns how many rows were published and removed."""
        async with self.db.transaction() as session:
            rows = (
                await session.execute(
                    select(
                        self.outbox.c.id,
                        self.outbox.c.message_id,
                        self.outbox.c.type,
                        self.outbox.c.body,
                    )
                    .order_by(self.outbox.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            PENDING.set(len(rows))
            if not rows:
                return 0
            await asyncio.gather(
                *(
                    self.broker.publish(row.body, row.type, message_id=str(row.message_id))
                    for row in rows
                )
            )
            await session.execute(
                delete(self.outbox).where(self.outbox.c.id.in_([row.id for row in rows]))
            )
        for row in rows:
            PUBLISHED.labels(row.type).inc()
        return len(rows)
