"""SMS delivery (issue 14) against the fake SMS gateway over real HTTP: the gateway gets
the body of arvo-api.md, and each answer is classified as the retry needs it."""

from __future__ import annotations

import logging
import socket
from datetime import date

import httpx
import pytest
from pydantic import SecretStr

from services.sender.delivery.retry import RetryPolicy, deliver_with_retry
from services.sender.delivery.sms import SmsGatewayClient
from services.sender.domain.compose import MessageKey, OutgoingSms, compose_sms
from services.sender.domain.outcomes import DeliveryResult, Outcome
from services.sender.domain.texts import ADDRESS_SOURCE, MessageContext, MessageKind
from services.sender.settings import SenderSettings
from shared.domain.contacts import Channel
from tests.integration.sender.conftest import SMS_TOKEN, RunningSms

CONTEXT = MessageContext(("Keuda",), "https://arvo.example/v/perhonen", date(2024, 4, 14))
KEY = MessageKey("perhosen_paivakoti_2024-03-16_x1", MessageKind.INITIAL, Channel.SMS)
NUMBER = "+358401234567"
FAST = RetryPolicy(max_seconds=5.0, first_wait=0.02, max_wait=0.1)


def outgoing(recipient: str = "040 123 4567") -> OutgoingSms:
    return compose_sms(key=KEY, context=CONTEXT, recipient=recipient)


def gateway(url: str, *, token: str = SMS_TOKEN, timeout: float = 5.0) -> SmsGatewayClient:
    return SmsGatewayClient(base_url=url, token=SecretStr(token), timeout=timeout)


async def test_gateway_receives_the_sms(sms_fake: RunningSms) -> None:
    async with gateway(sms_fake.root + "/") as client:
        result = await client.send(outgoing(), label=str(KEY))
    assert result.outcome is Outcome.SENT, result
    [sms] = sms_fake.state.messages
    assert result.server_id == sms.message_id
    assert (sms.sender, sms.destination, sms.client_ref) == ("OPH", NUMBER, str(KEY))
    assert "https://arvo.example/v/perhonen?t=s" in sms.text
    assert "14.4.2024" in sms.text
    assert sms.text.endswith(ADDRESS_SOURCE)


async def test_gateway_400_is_permanent_with_its_answer(sms_fake: RunningSms) -> None:
    """The gateway refuses a number (C2 let it through, the gateway does not): failed for
    good, its answer kept without the number."""
    bad = OutgoingSms(destination="+35840", text="hei", client_ref="k")
    async with gateway(sms_fake.root) as client:
        result = await client.send(bad, label="k")
    assert result.outcome is Outcome.PERMANENT
    assert result.code == 400
    assert "destination: invalid number" in result.detail
    assert "+35840" not in result.detail
    assert sms_fake.state.messages == []


async def test_gateway_500_is_temporary(sms_fake: RunningSms) -> None:
    sms_fake.state.fail_next = 1
    async with gateway(sms_fake.root) as client:
        result = await client.send(outgoing(), label="k")
    assert result.outcome is Outcome.TEMPORARY
    assert result.code == 500
    assert "simulated internal error" in result.detail


async def test_gateway_500_for_a_while_then_sent_once(sms_fake: RunningSms) -> None:
    """The gateway answering 500 for a while: retried with backoff, sent exactly once."""
    async with httpx.AsyncClient(base_url=sms_fake.root) as control:
        (await control.post("/_fake/fail-next", json={"count": 3})).raise_for_status()
    async with gateway(sms_fake.root) as client:
        result = await deliver_with_retry(
            lambda: client.send(outgoing(), label="k"), FAST, label="k"
        )
    assert result.outcome is Outcome.SENT
    assert sms_fake.state.calls == 4
    assert len(sms_fake.state.messages) == 1


async def test_wrong_token_is_temporary_configuration(sms_fake: RunningSms) -> None:
    async with gateway(sms_fake.root, token="wrong-token") as client:
        result = await client.send(outgoing(), label="k")
    assert result.outcome is Outcome.TEMPORARY
    assert result.code == 401


async def test_refused_connection_is_temporary() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with gateway(f"http://127.0.0.1:{port}") as client:
        result = await client.send(outgoing(), label="k")
    assert result.outcome is Outcome.TEMPORARY
    assert "ConnectError" in result.detail


async def test_no_answer_is_unknown_and_not_retried(sms_fake: RunningSms) -> None:
    """The request went out and the gateway took it, but answered too late: unknown."""
    async with httpx.AsyncClient(base_url=sms_fake.root) as control:
        body = {"count": 1, "seconds": 1.0}
        (await control.post("/_fake/delay-next", json=body)).raise_for_status()
    attempts: list[DeliveryResult] = []
    async with gateway(sms_fake.root, timeout=0.3) as client:

        async def attempt() -> DeliveryResult:
            attempts.append(await client.send(outgoing(), label="k"))
            return attempts[-1]

        result = await deliver_with_retry(attempt, FAST, label="k")
    assert result.outcome is Outcome.UNKNOWN
    assert "ReadTimeout" in result.detail
    assert len(attempts) == 1
    assert len(sms_fake.state.messages) == 1


async def test_token_and_number_are_never_logged(
    sms_fake: RunningSms, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sms_fake.state.fail_next = 1
    async with gateway(sms_fake.root) as client:
        results = [await client.send(outgoing(), label="k") for _ in range(2)]
        assert SMS_TOKEN not in repr(client)
    assert [r.outcome for r in results] == [Outcome.TEMPORARY, Outcome.SENT]
    records = [f"{r.getMessage()} {r.__dict__}" for r in caplog.records]
    assert any("delivery attempt" in text and "sms" in text for text in records)
    assert not [t for t in records if SMS_TOKEN in t or NUMBER in t]
    assert SMS_TOKEN not in repr(SenderSettings(sms_gateway_token=SMS_TOKEN))


def test_client_from_settings() -> None:
    settings = SenderSettings(sms_gateway_url="http://gw.example/api", sms_sender="OPH-TEST")
    client = SmsGatewayClient.from_settings(settings)
    assert client.sender == "OPH-TEST"
    assert repr(client) == "SmsGatewayClient(http://gw.example/api/)"
