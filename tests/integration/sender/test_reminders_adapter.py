"""The reminder run against the real arvo_adapter (in-process) reading through to the
fake Arvo: the contract of `GET /api/v1/links/{tunniste}/status` as built, with its
palaute:read token. A database and vhost of their own: the session's adapter tests would
otherwise share `arvo_adapter.events` with this adapter."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import pytest_asyncio
from pydantic import SecretStr

from services.arvo_adapter.app import create_service as create_adapter
from services.sender.app import create_service as create_sender
from services.sender.usecases import Sender
from tests.fakes import arvo
from tests.fakes.server import serve
from tests.fakes.smtp import FakeSmtp
from tests.integration.arvo_adapter.conftest import adapter_settings
from tests.integration.sender.conftest import (
    RunningSms,
    publish,
    send_request,
    sender_settings,
    settled,
    unique_address,
)
from tests.support.events import EventCapture, capture
from tests.support.infra import create_infra, destroy_infra
from tests.support.services import READER_TOKEN, Running, run_in_process

DAY = dt.date(2025, 3, 17)


@dataclass
class World:
    sender: Running
    arvo: arvo.ArvoState
    smtp: FakeSmtp
    channel: aio_pika.abc.AbstractChannel
    events: EventCapture


@pytest_asyncio.fixture
async def world(sender_clients_file: Path, sms_server: RunningSms) -> AsyncIterator[World]:
    own = await create_infra()
    try:
        arvo_app = arvo.create_app("arvo", "arvo")
        async with serve(arvo_app) as arvo_root, FakeSmtpContext() as smtp:
            adapter_service = create_adapter(
                adapter_settings(arvo_root, own, arvo_user="arvo", arvo_password="arvo")
            )
            async with run_in_process(adapter_service) as adapter:
                settings = sender_settings(
                    own,
                    sender_clients_file,
                    smtp_port=smtp.port,
                    sms_root=sms_server.root,
                    survey_root=adapter.base_url,
                    arvo_adapter_token=SecretStr(READER_TOKEN),
                    clock_today=DAY,
                )
                async with run_in_process(create_sender(settings)) as sender:
                    watcher, connection = await capture(own.amqp_url)
                    async with connection:
                        channel = await connection.channel(publisher_confirms=True)
                        yield World(sender, arvo_app.state.arvo, smtp, channel, watcher)
    finally:
        await destroy_infra(own)


class FakeSmtpContext:
    """FakeSmtp as an async context manager, to share one `async with`."""

    async def __aenter__(self) -> FakeSmtp:
        self.server = FakeSmtp()
        self.server.start()
        return self.server

    async def __aexit__(self, *exc: object) -> None:
        self.server.stop()


def in_arvo(world: World, tunniste: str, loppu: dt.date) -> None:
    """A bundle link as Arvo holds it after the adapter linked it."""
    world.arvo.bundles[tunniste] = arvo.Bundle(
        tunniste=tunniste,
        request_id=None,
        data={},
        tunnukset=[],
        nippulinkki=f"https://arvo.example/v/{tunniste}",
        voimassa_alkupvm=DAY.isoformat(),
        voimassa_loppupvm=loppu.isoformat(),
        niputuspvm="2025-03-16",
    )


async def test_reminders_ask_the_real_adapter(world: World) -> None:
    loppu = DAY + dt.timedelta(days=29)
    answered, unanswered, unknown = (
        send_request(email=unique_address(), voimassa_loppupvm=loppu) for _ in range(3)
    )
    in_arvo(world, answered.tunniste, loppu)
    in_arvo(world, unanswered.tunniste, loppu)
    world.arvo.bundles[answered.tunniste].vastattu = True
    for request in (answered, unanswered, unknown):
        await publish(world.channel, request)
    for request in (answered, unanswered, unknown):
        await settled(world.sender, request.nippu_id, 1)

    usecases: Sender = world.sender.service._provided[Sender]
    counts = await usecases.reminders(DAY + dt.timedelta(days=5))

    assert counts == {
        "checked": 3,
        "reminded": 1,
        "messages": 1,
        "vastattu": 1,
        "window_closed": 0,
        "unreachable": 1,  # Arvo knows no such link: 404, asked again tomorrow
    }
    found = await settled(world.sender, unanswered.nippu_id, 2)
    assert found[f"{unanswered.nippu_id}/reminder/email/0"] == "sent"
    await world.events.wait_for(
        lambda e: (
            e["type"] == "send.status"
            and e["payload"]["nippu_id"] == str(answered.nippu_id)
            and e["payload"]["nippu_tila"] == "vastattu"
        )
    )
