"""The adapter killed with SIGKILL at random moments while it links bundles, restarted,
killed again: every bundle still ends with exactly one link and each jakso one live code
(issue 13). Runs the adapter as a process (`python -m services.arvo_adapter`) on a
database and vhost of its own, so the session's in-process adapter takes none of the work.

`ARVO_TEST_KILL_BUNDLES` (default 100; the issue's 500) and `ARVO_TEST_KILLS` (default 4).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest_asyncio
from sqlalchemy import func, select

from services.arvo_adapter.store.tables import calls
from shared.db import Database
from shared.messaging.topology import declare_topology
from tests.integration.arvo_adapter.conftest import (
    ARVO_PASSWORD,
    ARVO_USER,
    FakeArvo,
    nippu_ready,
    publish,
    stored_niput,
    wait_done,
)
from tests.integration.arvo_adapter.exactly_once import check_exactly_once
from tests.support.infra import Infra, create_infra, destroy_infra
from tests.support.polling import eventually
from tests.support.services import ServiceProcess, service_env

KILL_BUNDLES = int(os.environ.get("ARVO_TEST_KILL_BUNDLES", "100"))
KILLS = int(os.environ.get("ARVO_TEST_KILLS", "4"))
RETRY_DELAYS_MS = [200, 500, 1000]


def adapter_env(infra: Infra, fake_arvo: FakeArvo) -> dict[str, str]:
    """The adapter process against the fake Arvo, with the quick timings of these tests."""
    return service_env(
        infra,
        ARVO_URL=f"{fake_arvo.root}/api/",
        ARVO_USER=ARVO_USER,
        ARVO_PASSWORD=ARVO_PASSWORD,
        ARVO_TIMEOUT_SECONDS="2",
        ARVO_CONNECT_TIMEOUT_SECONDS="1",
        ARVO_MAX_ATTEMPTS="3",
        ARVO_BACKOFF_INITIAL_SECONDS="0.01",
        ARVO_BACKOFF_MAX_SECONDS="0.05",
        ARVO_BREAKER_FAILURE_THRESHOLD="50",
        ARVO_WORK_POLL_SECONDS="0.2",
        ARVO_WORK_BACKOFF_INITIAL_SECONDS="0.05",
        ARVO_WORK_BACKOFF_MAX_SECONDS="0.5",
        ARVO_CONCURRENCY="6",
        DB_POOL_SIZE="10",
        RETRY_DELAYS_MS=str(RETRY_DELAYS_MS),
        LOG_LEVEL="WARNING",
    )


async def start(adapter: ServiceProcess) -> None:
    """Start the process; again when PostgreSQL, shared by every test session on the
    machine, turned it away at start-up (too many clients)."""
    for attempt in range(5):
        try:
            await adapter.start()
            return
        except RuntimeError:
            if attempt == 4 or "too many clients" not in adapter.log_path.read_text():
                raise
            await asyncio.sleep(2)


async def until_done(db: Database, ids: list[uuid.UUID], count: int, timeout: float) -> None:
    """Until at least `count` of the bundles are done (a moment in the run to kill at)."""

    async def done() -> int:
        rows = await stored_niput(db, ids)
        return sum(1 for r in rows.values() if r.state == "done")

    await eventually(done, lambda n: n >= count, timeout=timeout, what=f"{count} bundles done")


@pytest_asyncio.fixture
async def own_infra() -> AsyncIterator[Infra]:
    created = await create_infra()
    try:
        yield created
    finally:
        await destroy_infra(created)


async def test_sigkill_at_random_moments_leaves_one_link_per_bundle(
    own_infra: Infra, fake_arvo: FakeArvo
) -> None:
    env = adapter_env(own_infra, fake_arvo)
    rng = random.Random(500)
    sent = [nippu_ready(jaksot=rng.randint(1, 3)) for _ in range(KILL_BUNDLES)]
    ids = [n.nippu_id for n in sent]
    connection = await aio_pika.connect(own_infra.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        # The queue exists before the adapter first starts, as in production.
        await declare_topology(channel, RETRY_DELAYS_MS)
        await publish(channel, *sent)

    db = Database(own_infra.database_url, pool_size=2)
    adapter = ServiceProcess("arvo_adapter", env)
    started = time.perf_counter()
    done_at_kills: list[int] = []
    try:
        # Kills spread over the whole run: each at a random number of bundles done,
        # then a random moment later.
        for threshold in sorted(rng.sample(range(1, KILL_BUNDLES), KILLS)):
            await start(adapter)
            await until_done(db, ids, threshold, timeout=60 + KILL_BUNDLES * 0.5)
            await asyncio.sleep(rng.uniform(0, 0.5))
            adapter.kill()
            rows = await stored_niput(db, ids)
            done_at_kills.append(sum(1 for r in rows.values() if r.state == "done"))
        await start(adapter)
        await wait_done(db, ids, timeout=60 + KILL_BUNDLES * 0.5)
        elapsed = time.perf_counter() - started
        # uvicorn re-raises SIGTERM after its graceful shutdown, hence -15 rather than 0.
        assert await adapter.terminate() in (0, -15)
        checked = await check_exactly_once(db, fake_arvo.state, sent)
    finally:
        if adapter.proc is not None and adapter.proc.poll() is None:
            adapter.kill()
        await db.dispose()
    print(
        f"\nkilled {KILLS} times (done at each kill: {done_at_kills}); {checked}; {elapsed:.1f} s"
    )
    # The kills fell while bundles were being linked, not after all of them.
    assert any(done < KILL_BUNDLES for done in done_at_kills)


async def test_sigterm_lets_bundles_in_flight_finish_so_no_call_is_left_in_doubt(
    own_infra: Infra, fake_arvo: FakeArvo
) -> None:
    """A deploy (SIGTERM) must not make orphans: calls in flight finish before the stop."""
    rng = random.Random(7)
    sent = [nippu_ready(jaksot=rng.randint(1, 3)) for _ in range(60)]
    ids = [n.nippu_id for n in sent]
    connection = await aio_pika.connect(own_infra.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, RETRY_DELAYS_MS)
        await publish(channel, *sent)
    # Each call takes a moment, so calls are in flight whenever the stop comes.
    await fake_arvo.post("latency", {"seconds": 0.2})
    db = Database(own_infra.database_url, pool_size=2)
    adapter = ServiceProcess("arvo_adapter", adapter_env(own_infra, fake_arvo))
    try:
        await start(adapter)
        await until_done(db, ids, 10, timeout=60)
        assert await adapter.terminate() in (0, -15)
        async with db.transaction() as session:
            in_doubt = await session.scalar(
                select(func.count())
                .select_from(calls)
                .where(calls.c.state.in_(("intended", "unknown")))
            )
        assert in_doubt == 0
        rows = await stored_niput(db, ids)
        assert any(r.state == "pending" for r in rows.values())  # stopped mid-run
        await start(adapter)
        await wait_done(db, ids, timeout=90)
        await adapter.terminate()
        checked = await check_exactly_once(db, fake_arvo.state, sent)
        assert checked.orphans == 0
    finally:
        if adapter.proc is not None and adapter.proc.poll() is None:
            adapter.kill()
        await db.dispose()
