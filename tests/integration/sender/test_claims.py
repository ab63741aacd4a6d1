"""Claims, leases and fencing of the delivery (docs/decisions.md, "Sender service"),
step by step with the use cases and no worker running: a database of its own, the fake
SMTP server, leases of a fraction of a second."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from services.sender.app import create_service
from services.sender.domain.delivery import Status
from services.sender.store.messages import mark_sending
from services.sender.usecases import Sender
from shared.service import Service
from tests.fakes.smtp import FakeSmtp
from tests.integration.sender.conftest import (
    RunningSms,
    send_request,
    sender_settings,
    unique_address,
)
from tests.support.infra import BASE_AMQP_URL, BASE_DATABASE_URL, Infra, destroy_infra
from tests.support.polling import eventually

LEASE = 0.3


async def database_only() -> Infra:
    """A fresh database of its own (no broker is used here, so no vhost)."""
    name = f"tp_test_claims_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(BASE_DATABASE_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    url = make_url(BASE_DATABASE_URL).set(database=name).render_as_string(False)
    return Infra(database_url=url, amqp_url=BASE_AMQP_URL, vhost=None)


@pytest_asyncio.fixture
async def idle(
    sender_clients_file: Path, sms_server: RunningSms
) -> AsyncIterator[tuple[Service, Sender, FakeSmtp]]:
    """A sender's use cases on a fresh database, its worker and consumer not started;
    one pooled connection, so a test can take the database away by holding it."""
    own = await database_only()
    try:
        with FakeSmtp() as smtp:
            settings = sender_settings(
                own,
                sender_clients_file,
                smtp_port=smtp.port,
                sms_root=sms_server.root,
                survey_root="http://127.0.0.1:9",
                delivery_lease_seconds=LEASE,
                db_pool_size=1,
                db_pool_timeout_seconds=0.2,
            )
            service = create_service(settings)
            await asyncio.to_thread(service.migrate)
            try:
                yield service, service._provided[Sender], smtp
            finally:
                await service._provided[Sender].ports.aclose()
                await service.db.dispose()
    finally:
        await destroy_infra(own)


async def record(service: Service, sender: Sender, address: str) -> None:
    async with service.db.transaction() as session:
        await sender.record_send_request(
            session, payload=send_request(email=address, voimassa_loppupvm=dt.date(2099, 1, 1))
        )


async def test_a_claim_taken_over_hands_nothing_over(
    idle: tuple[Service, Sender, FakeSmtp],
) -> None:
    service, sender, smtp = idle
    await record(service, sender, unique_address())
    [first] = await sender.claim(10)
    assert await sender.claim(10) == [], "claimed: not due to anyone else"
    await asyncio.sleep(LEASE * 1.5)  # the first worker stalls past its lease
    [second] = await sender.claim(10)
    assert second.id == first.id and second.claim_id != first.claim_id

    assert await sender.deliver(first) is None, "its handover is refused"
    assert smtp.messages == []
    assert await sender.deliver(second) is Status.SENT
    assert len(smtp.messages) == 1


async def test_a_claim_run_out_before_the_handover_is_due_again(
    idle: tuple[Service, Sender, FakeSmtp],
) -> None:
    service, sender, smtp = idle
    await record(service, sender, unique_address())
    [claimed] = await sender.claim(10)  # and the worker dies before its handover
    await asyncio.sleep(LEASE * 1.5)
    assert await sender.expire_stale() == 0, "nothing was being handed over"
    [again] = await sender.claim(10)
    assert again.attempts == claimed.attempts + 1
    assert await sender.deliver(again) is Status.SENT
    assert len(smtp.messages) == 1


async def test_a_message_left_sending_is_unknown_and_never_sent_again(
    idle: tuple[Service, Sender, FakeSmtp],
) -> None:
    service, sender, smtp = idle
    await record(service, sender, unique_address())
    [claimed] = await sender.claim(10)
    async with service.db.driver_connection() as conn:  # the handover began, then a crash
        assert await mark_sending(conn, claimed.id, claimed.claim_id)
    assert await sender.expire_stale() == 0, "within its lease it is its worker's"
    await asyncio.sleep(LEASE * 1.5)

    assert await sender.expire_stale() == 1
    assert await sender.expire_stale() == 0
    assert await sender.claim(10) == []
    assert smtp.messages == []


async def test_a_stopping_worker_gives_unstarted_claims_back(
    idle: tuple[Service, Sender, FakeSmtp],
) -> None:
    service, sender, _ = idle
    for _n in range(3):
        await record(service, sender, unique_address())
    claimed = await sender.claim(10)
    assert len(claimed) == 3
    await sender.release(claimed[1:])
    again = await sender.claim(10)
    assert sorted(c.id for c in again) == sorted(c.id for c in claimed[1:])
    assert await sender.deliver(claimed[0]) is Status.SENT


async def test_no_handover_when_it_cannot_be_recorded(
    idle: tuple[Service, Sender, FakeSmtp],
) -> None:
    """The database away at the handover (its one connection held): nothing is handed
    over, the answer is recorded once the database is back (it is retried), and the
    message is due again."""
    service, sender, smtp = idle
    await record(service, sender, unique_address())
    [claimed] = await sender.claim(10)
    async with service.db.engine.connect() as held:
        await held.exec_driver_sql("SELECT 1")
        attempt = asyncio.create_task(sender.deliver(claimed))
        await asyncio.sleep(0.5)  # the handover's 0.2 s pool wait has run out
        assert smtp.messages == []
    assert await attempt is Status.RECORDED
    again = await eventually(
        lambda: sender.claim(10), lambda found: len(found) == 1, timeout=5, what="due again"
    )
    assert await sender.deliver(again[0]) is Status.SENT
    assert len(smtp.messages) == 1
