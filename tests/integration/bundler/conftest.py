"""The bundler on a real uvicorn server, fed through RabbitMQ as the ingest's relay would.

Events are published to the `tyoelamapalaute` exchange with routing key = type; a test
knows its message was applied (or skipped) when the bundler's inbox holds its id, since
the inbox claim commits with the effect. "Today" is the bundler's frozen clock
(`CLOCK_TODAY`); a test that needs another day sets it with `set_today`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import pytest_asyncio
from pydantic import BaseModel
from sqlalchemy import select

from services.bundler.app import create_service
from services.bundler.settings import BundlerSettings
from services.bundler.store.tables import inbox
from shared.auth import hash_token
from shared.events import (
    HoksChanged,
    HoksDeleted,
    JaksoPayload,
    OhjaajaPayload,
    OpiskeluoikeusChanged,
    OpiskeluoikeusjaksoPayload,
    SuoritusPayload,
    TutkinnonOsaPayload,
)
from tests.support.events import publish as publish
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.services import (
    ADMIN_TOKEN,
    READER_TOKEN,
    UPSTREAM_TOKEN,
    Running,
    run_in_process,
)

d = dt.date.fromisoformat

#: The day of rules.md's E17 example's evaluation: loppu 2025-03-07 is past, its
#: niputuspvm 2025-03-16 too, and W2 leaves time (until 2025-05-14).
TODAY = d("2025-03-20")
KOULUTUSTOIMIJA = "1.2.246.562.10.346830761110"
OTHER_KOULUTUSTOIMIJA = "1.2.246.562.10.99999999999"
SCOPED_TOKEN = "bundler-test-scoped-reader"
WRITER_TOKEN = "bundler-test-writer"
SCOPED_WRITER_TOKEN = "bundler-test-scoped-writer"

_ids = itertools.count(random.randint(10**6, 10**9) * 1000)


@pytest.fixture(scope="session")
def api_clients_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev reader (every provider), a reader of one koulutustoimija, an upstream
    writer, writers (resend) of every provider and of one, and an admin (dated runs)."""
    path = tmp_path_factory.mktemp("bundler") / "clients.json"
    clients = [
        ("reader", READER_TOKEN, ["palaute:read"], ["*"]),
        ("scoped-reader", SCOPED_TOKEN, ["palaute:read"], [KOULUTUSTOIMIJA]),
        ("upstream", UPSTREAM_TOKEN, ["hoks:write"], ["*"]),
        ("admin", ADMIN_TOKEN, ["admin"], ["*"]),
        ("writer", WRITER_TOKEN, ["palaute:write"], ["*"]),
        ("scoped-writer", SCOPED_WRITER_TOKEN, ["palaute:write"], [KOULUTUSTOIMIJA]),
    ]
    path.write_text(
        json.dumps(
            [
                {
                    "client": name,
                    "token_sha256": hash_token(token),
                    "scopes": scopes,
                    "koulutustoimijat": scope,
                }
                for name, token, scopes, scope in clients
            ]
        )
    )
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def bundler(infra: Infra, api_clients_file: Path) -> AsyncIterator[Running]:
    settings = BundlerSettings(
        database_url=infra.database_url,
        amqp_url=infra.amqp_url,
        outbox_poll_seconds=0.2,
        retry_delays_ms=[200, 500, 1000],
        clock_today=TODAY,
        api_clients_file=api_clients_file,
    )
    async with run_in_process(create_service(settings)) as running:
        running.client.headers["authorization"] = f"Bearer {READER_TOKEN}"
        yield running


@pytest.fixture
def set_today(bundler: Running) -> Iterator[Callable[[str], None]]:
    """Freeze the bundler's clock on another day, as restarting it with `CLOCK_TODAY`
    would; back to `TODAY` after the test."""

    def freeze(day: str) -> None:
        bundler.service.clock.frozen = d(day)

    yield freeze
    bundler.service.clock.frozen = TODAY


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def channel(infra: Infra) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        yield await connection.channel(publisher_confirms=True)


def new_id() -> int:
    """Fresh ids per test, so tests share the database without seeing each other."""
    return next(_ids)


# --- Events as the ingest makes them ------------------------------------------------


def jakso(
    tunniste: str | None = "jakso-1",
    alku: str = "2025-01-13",
    loppu: str | None = "2025-03-07",
    **changes: Any,
) -> JaksoPayload:
    values: dict[str, Any] = {
        "yksiloiva_tunniste": tunniste,
        "path": f"hankittavat-ammat-tutkinnon-osat[0].osaamisen-hankkimistavat[{tunniste}]",
        "tunniste_puuttuu": tunniste is None,
        "hankkimistapa": "koulutussopimus",
        "alku": alku,
        "loppu": loppu,
        "osa_aikaisuus": 100,
        "tyopaikan_nimi": "Perhosen Päiväkoti",
        "tyopaikan_ytunnus": "1234567-8",
        "ohjaaja": OhjaajaPayload(
            nimi="Olli Ohjaaja", sahkoposti="olli@perhonen.fi", puhelinnumero="0401234567"
        ),
        "tutkinnon_osa": TutkinnonOsaPayload(
            kind="ammatillinen", koodi_uri="tutkinnonosat_106945", koodi="106945"
        ),
    }
    return JaksoPayload.model_validate({**values, **changes})


@dataclass
class Student:
    """One student's HOKS and study right, with the versions the ingest would number."""

    hoks_id: int = field(default_factory=new_id)
    oid: str = field(default_factory=lambda: f"1.2.246.562.15.{new_id()}")
    oppija_oid: str = field(default_factory=lambda: f"1.2.246.562.24.{new_id()}")

    def hoks(self, *jaksot: JaksoPayload, version: int = 1, is_tuva: bool = False) -> HoksChanged:
        return HoksChanged(
            hoks_id=self.hoks_id,
            oppija_oid=self.oppija_oid,
            opiskeluoikeus_oid=self.oid,
            version=version,
            is_tuva=is_tuva,
            jaksot=list(jaksot),
        )

    def deleted(self, version: int) -> HoksDeleted:
        return HoksDeleted(hoks_id=self.hoks_id, version=version)

    def opiskeluoikeus(
        self,
        version: int = 1,
        *,
        tilat: tuple[tuple[str, str, str], ...] = (("2023-08-01", "lasna", "1"),),
        suoritustyyppi: str = "ammatillinentutkinto",
        koulutustoimija: str = KOULUTUSTOIMIJA,
        **changes: Any,
    ) -> OpiskeluoikeusChanged:
        values: dict[str, Any] = {
            "oid": self.oid,
            "version": version,
            "koulutustoimija_oid": koulutustoimija,
            "oppilaitos_oid": "1.2.246.562.10.52251087186",
            "tyyppi": "ammatillinenkoulutus",
            "opiskeluoikeusjaksot": [
                OpiskeluoikeusjaksoPayload(alku=d(a), tila=t, opintojen_rahoitus=r)
                for a, t, r in tilat
            ],
            "suoritukset": [SuoritusPayload(tyyppi=suoritustyyppi, tutkinto="351301")],
        }
        return OpiskeluoikeusChanged.model_validate({**values, **changes})


async def wait_seen(bundler: Running, *message_ids: uuid.UUID) -> None:
    """Until the bundler's inbox holds every message (applied or found older)."""

    async def seen() -> int:
        async with bundler.service.db.transaction() as session:
            rows = await session.execute(
                select(inbox.c.message_id).where(inbox.c.message_id.in_(message_ids))
            )
            return len(rows.all())

    await eventually(seen, lambda n: n == len(message_ids), what="messages consumed")


async def apply(
    bundler: Running, channel: aio_pika.abc.AbstractChannel, *payloads: BaseModel
) -> None:
    """Publish events one after the other, each consumed before the next is sent."""
    for payload in payloads:
        await wait_seen(bundler, await publish(channel, payload))


async def jaksot(bundler: Running, hoks_id: int, token: str = READER_TOKEN) -> httpx.Response:
    return await bundler.client.get(
        f"/api/v1/hoks/{hoks_id}/jaksot", headers={"authorization": f"Bearer {token}"}
    )


async def states(bundler: Running, hoks_id: int) -> dict[str, tuple[str, str, str | None]]:
    """yksiloiva_tunniste → (tila, syy, niputuspvm) of a HOKS's jaksot, through the API."""
    response = await jaksot(bundler, hoks_id)
    assert response.status_code == 200, response.text
    return {
        j["yksiloiva_tunniste"]: (j["tila"], j["syy"], j["niputuspvm"]) for j in response.json()
    }


async def history(bundler: Running, jakso_id: int) -> list[dict[str, Any]]:
    response = await bundler.client.get(f"/api/v1/jaksot/{jakso_id}/history")
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


async def jakso_id(bundler: Running, hoks_id: int, tunniste: str) -> int:
    response = await jaksot(bundler, hoks_id)
    (found,) = [j["jakso_id"] for j in response.json() if j["yksiloiva_tunniste"] == tunniste]
    return int(found)
