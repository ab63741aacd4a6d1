"""The bundler with the real sender and arvo_adapter (issue 12 "After Arvo and the
sender"), against the fake Arvo, SMTP server and SMS gateway: a TEP run's bundle is
linked by the adapter, its `send.requested` delivered by the sender, the sender's
`send.status` makes the bundle and its jaksot `lahetetty` and Arvo is told (S2); a
resend to a corrected address goes the same way; K4's new kesto reaches Arvo's code.

The services run in a database and vhost of their own: in the session's, the other
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

from services.arvo_adapter.app import create_service as create_adapter
from services.bundler.app import create_service as create_bundler
from services.bundler.settings import BundlerSettings
from services.sender.app import create_service as create_sender
from tests.fakes import arvo, sms
from tests.fakes.server import serve
from tests.fakes.smtp import FakeSmtp
from tests.integration.arvo_adapter.conftest import ARVO_PASSWORD, ARVO_USER, adapter_settings
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
from tests.support.services import ADMIN_TOKEN, READER_TOKEN, Running, run_in_process

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
async def fake_arvo() -> AsyncIterator[tuple[str, arvo.ArvoState]]:
    app = arvo.create_app(ARVO_USER, ARVO_PASSWORD)
    async with serve(app) as root:
        yield root, app.state.arvo


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pair(
    own_infra: Infra,
    api_clients_file: Path,
    smtp: FakeSmtp,
    gateway: tuple[str, sms.SmsState],
    fake_arvo: tuple[str, arvo.ArvoState],
) -> AsyncIterator[tuple[Running, Running]]:
    """The bundler, the sender and the arvo_adapter, each as `python -m` would run it,
    on one day."""
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
    adapter = adapter_settings(fake_arvo[0], own_infra, clock_today=TODAY, db_pool_size=5)
    async with (
        run_in_process(create_bundler(bundler_settings)) as bundler,
        run_in_process(create_sender(settings)) as sender,
        run_in_process(create_adapter(adapter)),
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


async def test_a_tep_run_ends_with_a_sent_bundle_that_arvo_knows_of(
    pair: tuple[Running, Running],
    own_channel: AbstractChannel,
    smtp: FakeSmtp,
    fake_arvo: tuple[str, arvo.ArvoState],
) -> None:
    """The whole flow: events → TEP run of 16.3. → the adapter's codes (kesto 37: `a`
    shares 36 of its 54 days with `b`) and link → the sender's e-mail → `lahetetty` with
    W2's validity from the sending day, PATCHed to Arvo; then `b` moves, K4 PATCHes a's
    code with kesto 54."""
    bundler, _ = pair
    student = Student()
    a = jakso(
        "a",
        alku="2025-01-13",
        loppu="2025-03-07",
        ohjaaja={"nimi": "Maija Mentori", "sahkoposti": "maija@perhonen.fi"},
    )
    b = jakso("b", alku="2025-02-01", loppu="2025-05-29")
    koulutustoimija = "1.2.246.562.10.77777777777"
    await apply(
        bundler,
        own_channel,
        student.opiskeluoikeus(koulutustoimija=koulutustoimija),
        student.hoks(a, b),
    )
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    answer = await bundler.client.post(
        "/api/v1/runs", json={"job": "tep-niputus", "date": "2025-03-16"}, headers=admin
    )
    assert answer.status_code == 202, answer.text

    async def bundles() -> list[dict[str, Any]]:
        response = await bundler.client.get(
            "/api/v1/niput", params={"koulutustoimija": koulutustoimija}
        )
        found: list[dict[str, Any]] = response.json()
        return found

    (shown,) = await eventually(
        bundles,
        lambda found: len(found) == 1 and found[0]["tila"] == "lahetetty",
        what="the bundle linked, sent and reported",
    )
    assert shown["voimassa_loppupvm"] == "2025-04-18", "W2 from the sending day"
    tunniste = shown["tunniste"]
    (mail,) = [m for m in smtp.messages if "maija@perhonen.fi" in m.rcpt_tos]
    assert f"{shown['linkki']}?t=e" in mail.text
    assert (await states(bundler, student.hoks_id))["a"][0] == "lahetetty"

    state = fake_arvo[1]

    async def arvo_bundle() -> arvo.Bundle | None:
        return state.bundles.get(tunniste)

    told = await eventually(
        arvo_bundle,
        lambda bundle: bundle is not None and bundle.tila == "lahetetty",
        what="Arvo told the bundle was sent",
    )
    assert told is not None and told.voimassa_loppupvm == "2025-04-18"
    (code,) = [c for c in state.codes.values() if c.nippu == tunniste]
    assert code.data["kesto"] == 37

    moved = jakso("b", alku="2025-03-10", loppu="2025-05-29")
    await apply(bundler, own_channel, student.hoks(a, moved, version=2))

    async def patches() -> list[dict[str, Any]]:
        return list(code.patches)

    await eventually(
        patches, lambda found: any(p.get("kesto") == 54 for p in found), what="kesto PATCHed"
    )
