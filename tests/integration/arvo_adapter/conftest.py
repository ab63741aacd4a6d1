"""The fake Arvo as a real server, Arvo clients configured for quick tests, and the
adapter service in-process, fed through RabbitMQ as the bundler's relay would."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import httpx
import pytest_asyncio
from pydantic import BaseModel
from sqlalchemy import select

from services.arvo_adapter.app import create_service
from services.arvo_adapter.arvo import ArvoClient
from services.arvo_adapter.settings import ArvoAdapterSettings
from services.arvo_adapter.store.tables import niput
from services.arvo_adapter.usecases import ArvoAdapter
from shared.db import Database
from shared.events import NippuJaksoPayload, NippuReady
from shared.messaging.topology import ARVO_ADAPTER_EVENTS, declare_queue
from tests.fakes import arvo
from tests.fakes.server import serve
from tests.support.events import publish as publish_event
from tests.support.infra import Infra
from tests.support.services import READER_TOKEN, Running, run_in_process

ARVO_USER = "adapter"
ARVO_PASSWORD = "pa55-Very-Secret-x9"


@dataclass
class FakeArvo:
    root: str
    state: arvo.ArvoState
    control: httpx.AsyncClient

    async def post(self, path: str, body: dict[str, Any] | None = None) -> None:
        (await self.control.post(f"/_fake/{path}", json=body or {})).raise_for_status()

    async def requests(self) -> list[dict[str, Any]]:
        logged: list[dict[str, Any]] = (await self.control.get("/_fake/state")).json()["requests"]
        return logged


@pytest_asyncio.fixture(scope="session")
async def arvo_served() -> AsyncIterator[tuple[str, arvo.ArvoState]]:
    app = arvo.create_app(ARVO_USER, ARVO_PASSWORD)
    async with serve(app) as root:
        yield root, app.state.arvo


@pytest_asyncio.fixture
async def fake_arvo(arvo_served: tuple[str, arvo.ArvoState]) -> AsyncIterator[FakeArvo]:
    root, state = arvo_served
    async with httpx.AsyncClient(base_url=root, timeout=10) as control:
        fake = FakeArvo(root, state, control)
        await fake.post("reset")
        yield fake


def settings_for(fake: FakeArvo, **overrides: Any) -> ArvoAdapterSettings:
    """Fast retries and short timeouts, so failure tests take fractions of a second."""
    return ArvoAdapterSettings(**{**quick_values(fake.root), **overrides})


def quick_values(root: str) -> dict[str, Any]:
    """The client settings of `settings_for`, for the fake Arvo served at `root`."""
    return {
        "arvo_url": f"{root}/api/",
        "arvo_user": ARVO_USER,
        "arvo_password": ARVO_PASSWORD,
        "arvo_timeout_seconds": 0.4,
        "arvo_connect_timeout_seconds": 0.4,
        "arvo_status_timeout_seconds": 1.0,
        "arvo_max_attempts": 3,
        "arvo_max_total_seconds": 5.0,
        "arvo_backoff_initial_seconds": 0.01,
        "arvo_backoff_max_seconds": 0.05,
        "arvo_breaker_failure_threshold": 50,
        "arvo_breaker_cooldown_seconds": 0.3,
    }


ClientFactory = Callable[..., ArvoClient]


@pytest_asyncio.fixture
async def make_client(fake_arvo: FakeArvo) -> AsyncIterator[ClientFactory]:
    """``make_client(**setting_overrides)``; every client made is closed after the test."""
    made: list[ArvoClient] = []

    def factory(**overrides: Any) -> ArvoClient:
        client = ArvoClient(settings_for(fake_arvo, **overrides))
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()


@pytest_asyncio.fixture
async def client(make_client: ClientFactory) -> ArvoClient:
    return make_client()


# --- The adapter service, fed through RabbitMQ --------------------------------------


def adapter_settings(root: str, infra: Infra, **overrides: Any) -> ArvoAdapterSettings:
    """The adapter against the fake at `root`: quick client, a quick worker."""
    values: dict[str, Any] = {
        **quick_values(root),
        "database_url": infra.database_url,
        "amqp_url": infra.amqp_url,
        "outbox_poll_seconds": 0.1,
        "retry_delays_ms": [200, 500, 1000],
        # PostgreSQL's connections are shared with every other test session on the
        # machine: each bundle in flight holds one (its lock), plus consumer and relay.
        "db_pool_size": 10,
        "arvo_concurrency": 6,
        "arvo_work_poll_seconds": 0.2,
        "arvo_work_backoff_initial_seconds": 0.05,
        "arvo_work_backoff_max_seconds": 0.5,
        # The machine running tests may be busy: an attempt gets 2 s before it counts as
        # a lost answer (fault tests hold answers longer than that).
        "arvo_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return ArvoAdapterSettings(**values)


@pytest_asyncio.fixture(scope="session")
async def adapter_running(
    infra: Infra, arvo_served: tuple[str, arvo.ArvoState]
) -> AsyncIterator[Running]:
    root, _ = arvo_served
    settings = adapter_settings(root, infra)
    # The session's other services (the bundler's niputus tests) publish `nippu.ready`
    # to this vhost before these tests start; that backlog is not theirs to link.
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await declare_queue(channel, ARVO_ADAPTER_EVENTS, settings.retry_delays_ms)
        await queue.purge()
    async with run_in_process(create_service(settings)) as running:
        running.client.headers["authorization"] = f"Bearer {READER_TOKEN}"
        yield running


@pytest_asyncio.fixture
async def adapter(adapter_running: Running, fake_arvo: FakeArvo) -> Running:
    """The session's adapter, with the fake Arvo reset and the breaker closed."""
    adapter_running.service._provided[ArvoAdapter].arvo.breaker.record_success()
    return adapter_running


def use_cases(running: Running) -> ArvoAdapter:
    found: ArvoAdapter = running.service._provided[ArvoAdapter]
    return found


@pytest_asyncio.fixture(scope="session")
async def channel(infra: Infra) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        yield await connection.channel(publisher_confirms=True)


async def publish(
    channel: aio_pika.abc.AbstractChannel,
    *payloads: BaseModel,
    occurred_at: dt.datetime | None = None,
) -> None:
    """Publish events in order as the bundler's outbox relay does (persistent,
    confirmed); `occurred_at` stands for when the bundler decided them (default: now)."""
    for payload in payloads:
        await publish_event(channel, payload, occurred_at=occurred_at)


KOULUTUSTOIMIJA = "1.2.246.562.10.10000000001"
_jakso_ids = itertools.count(random.randint(10**6, 10**9) * 1000)


def nippu_ready(
    jaksot: int = 2,
    *,
    koulutustoimija: str = KOULUTUSTOIMIJA,
    voimassa_alkupvm: dt.date | None = None,
    voimassa_loppupvm: dt.date | None = None,
    **jakso_changes: Any,
) -> NippuReady:
    """A TEP bundle as the bundler makes it, with fresh ids; dates keep its window open."""
    today = dt.date.today()
    alku = voimassa_alkupvm or today
    loppu = voimassa_loppupvm or alku + dt.timedelta(days=29)
    niputuspvm = alku
    return NippuReady(
        nippu_id=uuid.uuid4(),
        # Normalised workplace name, bundling date, random suffix (N2); the name differs
        # per bundle so the fake sees distinct bundles (its duplicate key ignores the
        # suffix).
        tunniste=f"paivakoti_{uuid.uuid4().hex[:10]}_{niputuspvm.isoformat()}_{uuid.uuid4().hex[:6]}",
        koulutustoimija_oid=koulutustoimija,
        tutkintotunnus="351407",
        tyonantaja="1234567-8",
        tyopaikka="Perhosen Päiväkoti",
        niputuspvm=niputuspvm,
        voimassa_alkupvm=alku,
        voimassa_loppupvm=loppu,
        jaksot=[
            NippuJaksoPayload.model_validate(
                {
                    "jakso_id": next(_jakso_ids),
                    "koulutustoimija_oid": koulutustoimija,
                    "oppilaitos_oid": "1.2.246.562.10.20000000002",
                    "tyonantaja": "1234567-8",
                    "tyopaikka": "Perhosen Päiväkoti",
                    "tyopaikka_normalisoitu": "perhosen_paivakoti",
                    "tutkintotunnus": "351407",
                    "tutkinnon_osa": "106727",
                    "tutkintonimike": ["10024"],
                    "osaamisala": ["1525"],
                    "tyopaikkajakson_alkupvm": alku - dt.timedelta(days=90),
                    "tyopaikkajakson_loppupvm": alku - dt.timedelta(days=2),
                    "rahoituskausi_pvm": alku - dt.timedelta(days=2),
                    "osa_aikaisuus": 80,
                    "sopimustyyppi": "oppisopimus",
                    "oppisopimuksen_perusta": "01",
                    "kesto": 50 + i,
                    **jakso_changes,
                }
            )
            for i in range(jaksot)
        ],
    )


async def stored_niput(
    running: Running | Database, nippu_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    db = running.service.db if isinstance(running, Running) else running
    async with db.transaction() as session:
        rows = await session.execute(select(niput).where(niput.c.nippu_id.in_(nippu_ids)))
        return {row.nippu_id: row for row in rows}


async def wait_done(
    running: Running | Database, nippu_ids: list[uuid.UUID], timeout: float = 30.0
) -> dict[uuid.UUID, Any]:
    """Until every bundle's work is done (or rejected); their rows. A bulk test polls
    twice a second: its polling must not compete with the work it waits for."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await stored_niput(running, nippu_ids)
        if len(found) == len(nippu_ids) and all(r.state != "pending" for r in found.values()):
            return found
        if loop.time() > deadline:
            waiting = sum(1 for r in found.values() if r.state == "pending")
            raise AssertionError(
                f"{len(nippu_ids)} bundles not done within {timeout} s: {len(found)} recorded, "
                f"{waiting} pending"
            )
        await asyncio.sleep(0.5 if len(nippu_ids) > 20 else 0.05)
