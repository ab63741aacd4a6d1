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


async def add_event(
    session: AsyncSession, outbox: Table, event_type: str, payload: BaseModel | dict[str, Any]
) -> Envelope:
    """Stage an event in the caller's transaction; it leaves only if that commits."""
    envelope = build_envelope(event_type, payload)
    await session.execute(
        insert(outbox).values(
            message_id=envelope.message_id,
            type=envelope.type,
            body=envelope.model_dump_json().encode(),
        )
    )
    return envelope


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
