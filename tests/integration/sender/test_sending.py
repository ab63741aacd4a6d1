"""The sender service end to end (issue 14): `send.requested` through RabbitMQ, messages
recorded then handed over by the delivery worker to a real SMTP server on loopback and the
fake SMS gateway over HTTP, `send.status` back through the outbox, the messages API."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import aio_pika
import httpx
import pytest

from services.sender.domain.compose import MailIdentity, MessageKey, message_id
from services.sender.domain.texts import MessageKind
from shared.domain.contacts import Channel
from shared.messaging.envelope import Envelope
from shared.messaging.topology import declare_exchanges
from tests.fakes.smtp import FakeSmtp, ReceivedMail
from tests.integration.sender.conftest import (
    CALLBACK_TOKEN,
    OTHER_KOULUTUSTOIMIJA,
    SCOPED_TOKEN,
    RunningSms,
    messages_api,
    publish,
    send_request,
    settled,
    statuses,
    unique_address,
)
from tests.support.events import EventCapture
from tests.support.polling import eventually
from tests.support.services import ADMIN_TOKEN, Running

#: How long the SMTP server refuses connections (default: until 3 attempts failed).
OUTAGE_SECONDS = float(os.environ.get("SENDER_OUTAGE_SECONDS", "0"))
PHONE = "040 123 4567"
E164 = "+358401234567"
IDENTITY = MailIdentity("Opetushallitus <noreply@opintopolku.fi>", "palaute@opintopolku.fi")


def mails_to(smtp: FakeSmtp, address: str) -> list[ReceivedMail]:
    return [m for m in smtp.messages if address in m.rcpt_tos]


def sms_of(state: Any, nippu_id: uuid.UUID) -> list[Any]:
    return [m for m in state.messages if str(nippu_id) in m.client_ref]


def status_events(events: EventCapture, nippu_id: uuid.UUID) -> list[dict[str, Any]]:
    return events.matching(
        lambda e: e["type"] == "send.status" and e["payload"]["nippu_id"] == str(nippu_id)
    )


async def test_email_and_sms_go_out_once_with_the_expected_content(
    sender: Running,
    channel: aio_pika.abc.AbstractChannel,
    smtp_server: FakeSmtp,
    sms_server: RunningSms,
    events: EventCapture,
) -> None:
    address = unique_address()
    request = send_request(email=f"  {address.upper()} ", phone=PHONE)
    await publish(channel, request)

    found = await settled(sender, request.nippu_id, 2)
    nippu = request.nippu_id
    assert found == {f"{nippu}/initial/email/0": "sent", f"{nippu}/initial/sms/0": "sent"}

    [mail] = mails_to(smtp_server, address)
    assert mail.mail_from == "noreply@opintopolku.fi"
    assert mail.rcpt_tos == [address]
    message = mail.message
    assert message["To"] == address
    assert message["From"] == "Opetushallitus <noreply@opintopolku.fi>"
    assert message["Reply-To"] == "palaute@opintopolku.fi"
    assert message["Date"] and message["Subject"]
    key = MessageKey(str(nippu), MessageKind.INITIAL, Channel.EMAIL)
    assert message["Message-ID"] == message_id(key, IDENTITY)
    assert message.get_content_type() == "multipart/alternative"
    link = f"{request.linkki}?t=e"
    assert link in mail.text and f'<a href="{link}">' in mail.html
    assert "15.4.2025" in mail.text and "15.4.2025" in mail.html
    assert "Keuda" in mail.text
    raw = mail.raw.decode("utf-8", "replace")
    assert raw.count("@example.fi") == 1, "no personal data but the recipient's address"
    assert "4567" not in raw, "the phone number is not in the e-mail"

    [sms] = sms_of(sms_server.state, nippu)
    assert sms.destination == E164
    assert f"{request.linkki}?t=s" in sms.text
    assert "15.4.2025" in sms.text

    reported = await events.wait_for(
        lambda e: (
            e["type"] == "send.status"
            and e["payload"]["nippu_id"] == str(nippu)
            and e["payload"]["tila"] == "sent"
        ),
        count=2,
    )
    assert {e["payload"]["kanava"] for e in reported} == {"email", "sms"}
    tilat = [e["payload"]["tila"] for e in status_events(events, nippu)]
    assert sorted(tilat) == ["accepted", "accepted", "sent", "sent"]


async def test_a_redelivered_or_repeated_job_sends_nothing_again(
    sender: Running, channel: aio_pika.abc.AbstractChannel, smtp_server: FakeSmtp
) -> None:
    address = unique_address()
    request = send_request(email=address)
    first = await publish(channel, request)
    await settled(sender, request.nippu_id, 1)
    await publish(channel, request, message_id=first)  # the same message again
    await publish(channel, request)  # the same job under a new message id
    later = send_request(email=unique_address())  # a marker: consumed after both
    await publish(channel, later)
    await settled(sender, later.nippu_id, 1)

    assert len(mails_to(smtp_server, address)) == 1
    assert await statuses(sender, request.nippu_id) == {
        f"{request.nippu_id}/initial/email/0": "sent"
    }


async def test_an_invalid_address_is_never_sent_and_reported_failed(
    sender: Running,
    channel: aio_pika.abc.AbstractChannel,
    sms_server: RunningSms,
    events: EventCapture,
) -> None:
    request = send_request(email="ei-osoite@", phone="09 123 4567")  # C1, C2 (landline)
    await publish(channel, request)

    found = await settled(sender, request.nippu_id, 2)
    assert set(found.values()) == {"failed"}
    reported = await events.wait_for(
        lambda e: (
            e["type"] == "send.status"
            and e["payload"]["nippu_id"] == str(request.nippu_id)
            and e["payload"]["tila"] == "failed"
        ),
        count=2,
    )
    reasons = sorted(e["payload"]["reason"] for e in reported)
    assert "C1" in reasons[0] and "C2" in reasons[1]
    assert all("ei-osoite" not in r and "123" not in r for r in reasons)
    assert sms_of(sms_server.state, request.nippu_id) == []
    body = (await messages_api(sender, request.nippu_id)).json()
    assert [m["recipient"] for m in body] == [None, None]


async def test_resend_goes_to_the_corrected_address_with_the_same_link(
    sender: Running, channel: aio_pika.abc.AbstractChannel, smtp_server: FakeSmtp
) -> None:
    wrong, corrected = unique_address("vanha"), unique_address("uusi")
    request = send_request(email=wrong)
    await publish(channel, request)
    await settled(sender, request.nippu_id, 1)
    resend = request.model_copy(
        update={"kind": "resend", "resend_number": 1, "sahkoposti": corrected}
    )
    await publish(channel, resend)

    found = await settled(sender, request.nippu_id, 2)
    assert found[f"{request.nippu_id}/resend/email/1"] == "sent"
    [first] = mails_to(smtp_server, wrong)
    [again] = mails_to(smtp_server, corrected)
    assert f"{request.linkki}?t=e" in again.text
    assert again.text == first.text, "the same link and validity (S4)"
    assert again.message["Message-ID"] != first.message["Message-ID"]


async def test_a_permanent_refusal_fails_with_the_servers_answer(
    sender: Running, channel: aio_pika.abc.AbstractChannel, smtp_server: FakeSmtp
) -> None:
    address = unique_address()
    smtp_server.fail_next("rcpt", f"550 5.1.1 <{address}>: no such user")
    request = send_request(email=address)
    await publish(channel, request)

    await settled(sender, request.nippu_id, 1)
    [message] = (await messages_api(sender, request.nippu_id)).json()
    assert message["status"] == "failed"
    assert message["attempts"] == 1
    assert message["detail"].startswith("550 5.1.1 ") and "no such user" in message["detail"]
    assert address not in message["detail"] and "<recipient>" in message["detail"]
    assert [h["status"] for h in message["history"]] == ["recorded", "failed"]
    assert mails_to(smtp_server, address) == []
    metrics = (await sender.client.get("/metrics")).text
    assert 'sender_deliveries_total{kanava="email",status="failed"}' in metrics


async def test_smtp_refusing_connections_for_a_while_loses_nothing(
    sender: Running, channel: aio_pika.abc.AbstractChannel, smtp_server: FakeSmtp
) -> None:
    addresses = [unique_address() for _ in range(5)]
    requests = [send_request(email=a) for a in addresses]
    loop = asyncio.get_running_loop()
    smtp_server.pause()
    paused = loop.time()
    try:
        for request in requests:
            await publish(channel, request)

        async def attempts() -> int:
            response = await messages_api(sender, requests[-1].nippu_id)
            return int(response.json()[0]["attempts"]) if response.status_code == 200 else 0

        await eventually(attempts, lambda n: n >= 3, what="retries while refused")
        # The two minutes with SENDER_OUTAGE_SECONDS=120: the outage itself.
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (loop.time() - paused)))
    finally:
        smtp_server.resume()
    for request in requests:
        assert await settled(sender, request.nippu_id, 1) == {
            f"{request.nippu_id}/initial/email/0": "sent"
        }
    assert [len(mails_to(smtp_server, a)) for a in addresses] == [1] * 5


async def test_the_gateway_answering_500_for_a_while_loses_nothing(
    sender: Running, channel: aio_pika.abc.AbstractChannel, sms_server: RunningSms
) -> None:
    async with httpx.AsyncClient(base_url=sms_server.root) as fake:
        (await fake.post("/_fake/fail-next", json={"count": 6})).raise_for_status()
    requests = [send_request(phone=f"050 {n}{n}{n} 0000") for n in range(3)]
    for request in requests:
        await publish(channel, request)
    for request in requests:
        assert set((await settled(sender, request.nippu_id, 1)).values()) == {"sent"}
        assert len(sms_of(sms_server.state, request.nippu_id)) == 1
    assert sms_server.state.fail_next == 0


async def test_sms_delivery_reports(
    sender: Running,
    channel: aio_pika.abc.AbstractChannel,
    sms_server: RunningSms,
    events: EventCapture,
) -> None:
    request = send_request(phone=PHONE)
    await publish(channel, request)
    await settled(sender, request.nippu_id, 1)
    [sms] = sms_of(sms_server.state, request.nippu_id)
    callback = f"{sender.base_url}/api/v1/sms/delivery-reports?token={CALLBACK_TOKEN}"

    async with httpx.AsyncClient(base_url=sms_server.root) as fake:
        report = {"message_id": sms.message_id, "status": "delivered", "callback_url": callback}
        answer = await fake.post("/_fake/deliver", json=report)
    assert answer.json()["callback_status"] == 200, answer.text
    assert await statuses(sender, request.nippu_id) == {
        f"{request.nippu_id}/initial/sms/0": "delivered"
    }
    await events.wait_for(
        lambda e: (
            e["type"] == "send.status"
            and e["payload"]["nippu_id"] == str(request.nippu_id)
            and e["payload"]["tila"] == "delivered"
        )
    )

    unknown = await sender.client.post(
        "/api/v1/sms/delivery-reports",
        json={"message_id": "no-such-id", "status": "delivered"},
        headers={"authorization": f"Bearer {CALLBACK_TOKEN}"},
    )
    assert unknown.status_code == 404
    for headers in (
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": f"Bearer {ADMIN_TOKEN}"},
    ):
        refused = await sender.client.post(
            "/api/v1/sms/delivery-reports",
            json={"message_id": sms.message_id, "status": "failed"},
            headers=headers,
        )
        assert refused.status_code == 401, headers
    assert await statuses(sender, request.nippu_id) == {
        f"{request.nippu_id}/initial/sms/0": "delivered"
    }


async def test_messages_api_is_provider_scoped(
    sender: Running, channel: aio_pika.abc.AbstractChannel
) -> None:
    request = send_request(email=unique_address(), koulutustoimija=OTHER_KOULUTUSTOIMIJA)
    await publish(channel, request)
    await settled(sender, request.nippu_id, 1)

    assert (await messages_api(sender, request.nippu_id, SCOPED_TOKEN)).status_code == 404
    assert (await messages_api(sender, uuid.uuid4())).status_code == 404
    assert (await messages_api(sender, request.nippu_id, "no-token")).status_code == 401
    [message] = (await messages_api(sender, request.nippu_id)).json()
    assert [h["status"] for h in message["history"]] == ["recorded", "sent"]


async def test_personal_data_cleanup_keeps_statuses(
    sender: Running, channel: aio_pika.abc.AbstractChannel
) -> None:
    request = send_request(email=unique_address(), phone=PHONE)
    await publish(channel, request)
    await settled(sender, request.nippu_id, 2)
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}

    async def cleanup(day: str) -> None:
        run = await sender.client.post(
            "/api/v1/runs", json={"job": "personal-data-cleanup", "date": day}, headers=admin
        )
        assert run.status_code == 202, run.text
        run_id = run.json()["run_id"]
        await eventually(
            lambda: sender.client.get(f"/api/v1/runs/{run_id}", headers=admin),
            lambda r: r.json()["status"] == "done",
            what="cleanup run",
        )

    await cleanup("2025-05-15")  # 30 days after the last answer day: kept
    assert all(m["recipient"] for m in (await messages_api(sender, request.nippu_id)).json())
    await cleanup("2025-05-16")
    body = (await messages_api(sender, request.nippu_id)).json()
    assert [(m["recipient"], m["status"]) for m in body] == [(None, "sent"), (None, "sent")]
    assert all(m["personal_data_removed_at"] and len(m["history"]) == 2 for m in body)


async def test_no_answer_after_the_handover_is_never_sent_again(
    sender: Running,
    channel: aio_pika.abc.AbstractChannel,
    smtp_server: FakeSmtp,
    events: EventCapture,
) -> None:
    """The unknown-outcome window: the server took the data but its answer came after
    SMTP_TIMEOUT_SECONDS (2 s here). At most once: no second attempt, reported as an
    unconfirmed send."""
    address = unique_address()
    smtp_server.stall_next(3.0)
    request = send_request(email=address)
    await publish(channel, request)

    await settled(sender, request.nippu_id, 1)
    [message] = (await messages_api(sender, request.nippu_id)).json()
    assert message["status"] == "unknown"
    assert message["attempts"] == 1
    assert [h["status"] for h in message["history"]] == ["recorded", "unknown"]
    [reported] = await events.wait_for(
        lambda e: (
            e["type"] == "send.status"
            and e["payload"]["nippu_id"] == str(request.nippu_id)
            and e["payload"]["tila"] == "sent"
        )
    )
    assert reported["payload"]["reason"].startswith("unconfirmed:")
    assert len(mails_to(smtp_server, address)) == 1, "taken once, never offered again"


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [("kind", "muistutus", "kind"), ("oppilaitokset", [" "], "oppilaitokset")],
    ids=["unknown-kind", "no-provider-name"],
)
async def test_an_invalid_request_goes_to_the_dlq_naming_fields_not_addresses(
    sender: Running, channel: aio_pika.abc.AbstractChannel, field: str, value: Any, named: str
) -> None:
    payload = send_request(email=unique_address("salainen"), phone=PHONE).model_dump(mode="json")
    payload[field] = value
    envelope = Envelope(type="send.requested", correlation_id="test-invalid", payload=payload)
    events, _ = await declare_exchanges(channel)
    await events.publish(
        aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.message_id)),
        routing_key="send.requested",
    )
    queue = await channel.get_queue("sender.events.dlq")

    async def take() -> aio_pika.abc.AbstractIncomingMessage | None:
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            if message.message_id == str(envelope.message_id):
                return message
        return None

    message = await eventually(take, lambda m: m is not None, what="message in the DLQ")
    assert message is not None
    error = str((message.headers or {})["x-error"])
    assert named in error
    assert "salainen" not in error and "4567" not in error and "muistutus" not in error
