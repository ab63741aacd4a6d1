"""The bundler and the real sender together (issue 12 "After Arvo and the sender"): a
linked bundle's `send.requested` is delivered by the sender to the fake SMTP server and
SMS gateway, and the sender's `send.status` makes the bundle and its jaksot `lahetetty`;
a resend to a corrected address goes the same way.

Both services run in a database and vhost of their own: in the session's, the other
tests' bundles would reach this sender and their `send.status` reports would change
those tests' states.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from aio_pika.abc import AbstractChannel

from services.bundler.app import create_service as create_bundler
from services.bundler.settings import BundlerSettings
from services.sender.app import create_service as create_sender
from tests.fakes import sms
from tests.fakes.server import serve
from tests.fakes.smtp import FakeSmtp
from tests.integration.bundler.conftest import (
    TODAY,
    WRITER_TOKEN,
    Student,
    apply,
    jakso,
    jakso_id,
    states,
)
from tests.integration.bundler.flow_support import LINK, form_nippu, linked, tunniste_of
from tests.integration.sender.conftest import SMS_TOKEN, sender_settings
from tests.support.infra import Infra, create_infra, destroy_infra
from tests.support.polling import eventually
from tests.support.services import READER_TOKEN, Running, run_in_process

SMS_MOBILE = "+358401234567"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own_infra() -> AsyncIterator[Infra]:
    infra = await create_infra()
    yield infra
    await destroy_infra(infra)


@pytest.fixture(scope="module")
def smtp() -> Iterator[FakeSmtp]:
    with FakeSmtp() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway() -> AsyncIterator[tuple[str, sms.SmsState]]:
    app = sms.create_app(SMS_TOKEN)
    async with serve(app) as root:
        yield root, app.state.sms


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pair(
    own_infra: Infra,
    api_clients_file: Path,
    smtp: FakeSmtp,
    gateway: tuple[str, sms.SmsState],
) -> AsyncIterator[tuple[Running, Running]]:
    """The bundler and the sender, each as `python -m` would run it, on one day."""
    bundler_settings = BundlerSettings(
        database_url=own_infra.database_url,
        amqp_url=own_infra.amqp_url,
        outbox_poll_seconds=0.2,
        retry_delays_ms=[200, 500, 1000],
        clock_today=TODAY,
        api_clients_file=api_clients_file,
    )
    settings = sender_settings(
        own_infra,
        api_clients_file,
        smtp_port=smtp.port,
        sms_root=gateway[0],
        survey_root="http://127.0.0.1:9",  # reminders are not run here
        clock_today=TODAY,
    )
    async with (
        run_in_process(create_bundler(bundler_settings)) as bundler,
        run_in_process(create_sender(settings)) as sender,
    ):
        bundler.client.headers["authorization"] = f"Bearer {READER_TOKEN}"
        yield bundler, sender


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own_channel(own_infra: Infra) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(own_infra.amqp_url)
    async with connection:
        yield await connection.channel(publisher_confirms=True)


async def nippu(bundler: Running, nippu_id: Any) -> dict[str, Any]:
    response = await bundler.client.get(f"/api/v1/niput/{nippu_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_linked_bundle_is_delivered_and_becomes_lahetetty(
    pair: tuple[Running, Running],
    own_channel: AbstractChannel,
    smtp: FakeSmtp,
    gateway: tuple[str, sms.SmsState],
) -> None:
    bundler, _ = pair
    student = Student()
    await apply(
        bundler,
        own_channel,
        student.opiskeluoikeus(oppilaitos_nimi="Keuda"),
        student.hoks(jakso("a")),
    )
    ids = [await jakso_id(bundler, student.hoks_id, "a")]
    nippu_id = await form_nippu(bundler, ids)
    tunniste = await tunniste_of(bundler, nippu_id)
    await apply(bundler, own_channel, linked(nippu_id, tunniste, ids))

    async def sent_on_both() -> dict[str, Any]:
        return await nippu(bundler, nippu_id)

    shown = await eventually(
        sent_on_both,
        lambda n: (
            {(s["kanava"], s["tila"]) for s in n["lahetykset"]}
            >= {("email", "sent"), ("sms", "sent")}
        ),
        what="both messages reported sent",
    )
    assert (shown["tila"], shown["voimassa_loppupvm"]) == ("lahetetty", "2025-04-18")
    assert (await states(bundler, student.hoks_id))["a"][0] == "lahetetty"

    (mail,) = [m for m in smtp.messages if "olli@perhonen.fi" in m.rcpt_tos]
    assert f"{LINK}{tunniste}?t=e" in mail.text
    assert "Keuda" in mail.text, "S5 names the oppilaitos"
    (text,) = [m for m in gateway[1].messages if m.destination == SMS_MOBILE]
    assert f"{LINK}{tunniste}?t=s" in text.text

    resend = await bundler.client.post(
        f"/api/v1/niput/{nippu_id}/resend",
        json={"sahkoposti": "uusi@perhonen.fi"},
        headers={"authorization": f"Bearer {WRITER_TOKEN}"},
    )
    assert resend.status_code == 202, resend.text

    async def resent() -> list[Any]:
        return [m for m in smtp.messages if "uusi@perhonen.fi" in m.rcpt_tos]

    (again,) = await eventually(resent, lambda found: len(found) == 1, what="resend delivered")
    assert f"{LINK}{tunniste}?t=e" in again.text
    assert len([m for m in gateway[1].messages if m.destination == SMS_MOBILE]) == 1
    shown = await eventually(
        sent_on_both,
        lambda n: ("resend", "sent") in {(s["tyyppi"], s["tila"]) for s in n["lahetykset"]},
        what="the resend reported",
    )
    assert shown["voimassa_loppupvm"] == "2025-04-18", "S4: the validity does not change"
