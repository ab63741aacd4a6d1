"""E-mail delivery (issue 14) against a real SMTP server on loopback: the server receives
exactly the composed message, and every failure is classified as the retry needs it."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from datetime import UTC, date, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import SecretStr

from services.sender.delivery.retry import RetryPolicy, deliver_with_retry
from services.sender.delivery.smtp import SmtpClient
from services.sender.domain.compose import MailIdentity, MessageKey, compose_email
from services.sender.domain.outcomes import DeliveryResult, Outcome
from services.sender.domain.texts import MessageContext, MessageKind
from services.sender.settings import SenderSettings, StartTls
from shared.domain.contacts import Channel
from tests.fakes.smtp import FakeSmtp, Stage
from tests.integration.sender.conftest import SMTP_PASSWORD, SMTP_USER, TlsSmtp

RECIPIENT = "ohjaaja@example.fi"
IDENTITY = MailIdentity("Opetushallitus <noreply@opintopolku.fi>", "palaute@opintopolku.fi")
CONTEXT = MessageContext(("Keuda",), "https://arvo.example/v/perhonen", date(2024, 4, 14))
KEY = MessageKey("perhosen_paivakoti_2024-03-16_x1", MessageKind.INITIAL, Channel.EMAIL)
FAST = RetryPolicy(max_seconds=5.0, first_wait=0.02, max_wait=0.1)


def composed(recipient: str = RECIPIENT, key: MessageKey = KEY) -> EmailMessage:
    return compose_email(
        key=key,
        context=CONTEXT,
        recipient=recipient,
        identity=IDENTITY,
        sent_at=datetime(2024, 3, 16, 7, 0, tzinfo=UTC),
    )


def client(port: int, *, timeout: float = 5.0, **options: Any) -> SmtpClient:
    return SmtpClient(
        host="127.0.0.1", port=port, timeout=timeout, local_hostname="sender.test", **options
    )


async def test_server_receives_exactly_the_composed_message(smtp_fake: FakeSmtp) -> None:
    message = composed()
    result = await client(smtp_fake.port).send(message, label=str(KEY))

    assert result.outcome is Outcome.SENT, result
    assert result.code == 250
    [mail] = smtp_fake.messages
    assert mail.mail_from == "noreply@opintopolku.fi"
    assert mail.rcpt_tos == [RECIPIENT]
    assert mail.raw.rstrip(b"\r\n") == message.as_bytes().replace(b"\n", b"\r\n").rstrip(b"\r\n")
    got = mail.message
    for header in ("From", "Reply-To", "To", "Date", "Message-ID", "Subject"):
        assert got[header] == message[header], header
    assert got.get_content_type() == "multipart/alternative"
    assert "https://arvo.example/v/perhonen?t=e" in mail.text
    assert '<a href="https://arvo.example/v/perhonen?t=e">' in mail.html
    assert "14.4.2024" in mail.text and "14.4.2024" in mail.html
    assert all(w in mail.text for w in ("Hyvä työpaikkaohjaaja", "Bästa", "Dear"))
    headers = "\n".join(f"{name}: {value}" for name, value in got.items())
    assert headers.count("@example.fi") == 1, "only the recipient's address in headers"
    assert "Keuda" not in headers


async def test_starttls_and_login_when_offered(tls_smtp: TlsSmtp) -> None:
    sender = client(
        tls_smtp.server.port,
        ca_file=tls_smtp.ca_file,
        username=SMTP_USER,
        password=_secret(SMTP_PASSWORD),
    )
    result = await sender.send(composed(), label=str(KEY))
    assert result.outcome is Outcome.SENT, result
    [mail] = tls_smtp.server.messages
    assert mail.tls and mail.auth_user == SMTP_USER


async def test_starttls_required_but_not_offered_sends_nothing(smtp_fake: FakeSmtp) -> None:
    result = await client(smtp_fake.port, starttls=StartTls.REQUIRED).send(composed(), label="k")
    assert result.outcome is Outcome.TEMPORARY
    assert "STARTTLS" in result.detail
    assert smtp_fake.messages == []


async def test_login_is_never_tried_in_clear_text(tls_smtp: TlsSmtp) -> None:
    """SMTP_STARTTLS=off against a relay that offers AUTH only after STARTTLS: no login."""
    sender = client(
        tls_smtp.server.port,
        starttls=StartTls.OFF,
        username=SMTP_USER,
        password=_secret(SMTP_PASSWORD),
    )
    result = await sender.send(composed(), label="k")
    assert result.outcome is Outcome.TEMPORARY
    assert "AUTH" in result.detail
    assert tls_smtp.server.messages == []


async def test_untrusted_certificate_sends_nothing(tls_smtp: TlsSmtp) -> None:
    sender = client(tls_smtp.server.port, username=SMTP_USER, password=_secret(SMTP_PASSWORD))
    result = await sender.send(composed(), label="k")
    assert result.outcome is Outcome.TEMPORARY
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert tls_smtp.server.messages == []


async def test_password_is_never_logged(
    tls_smtp: TlsSmtp, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong password is a configuration fault (temporary); neither it nor the right one
    reaches a log record, an answer's detail or a repr."""
    wrong = "Wrong-Salasana-77"
    caplog.set_level(logging.DEBUG)
    results = []
    for password in (wrong, SMTP_PASSWORD):
        sender = client(
            tls_smtp.server.port,
            ca_file=tls_smtp.ca_file,
            username=SMTP_USER,
            password=_secret(password),
        )
        results.append(await sender.send(composed(), label="k"))
        assert password not in repr(sender)
    assert [r.outcome for r in results] == [Outcome.TEMPORARY, Outcome.SENT]
    assert results[0].code == 535

    settings = SenderSettings(smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD)
    secrets = {
        wrong,
        SMTP_PASSWORD,
        base64.b64encode(f"\0{SMTP_USER}\0{SMTP_PASSWORD}".encode()).decode(),
        base64.b64encode(SMTP_PASSWORD.encode()).decode(),
    }
    ours = [r for r in caplog.records if not r.name.startswith("mail.log")]
    assert any(r.name == "services.sender.delivery.attempts" for r in ours)
    texts = [repr(settings), *(r.detail for r in results)]
    texts += [f"{r.getMessage()} {r.__dict__}" for r in ours]
    assert not [t for t in texts for s in secrets if s in t]


@pytest.mark.parametrize(
    ("stage", "reply", "expected"),
    [
        ("mail", "451 4.3.0 Try again later", Outcome.TEMPORARY),
        ("rcpt", "450 4.2.1 Mailbox busy", Outcome.TEMPORARY),
        ("data", "452 4.3.1 Insufficient storage", Outcome.TEMPORARY),
        ("mail", "553 5.7.1 Sender not allowed", Outcome.PERMANENT),
        ("rcpt", f"550 5.1.1 <{RECIPIENT}>: no such user", Outcome.PERMANENT),
        ("data", "554 5.6.0 Message refused", Outcome.PERMANENT),
    ],
    ids=["mail-451", "rcpt-450", "data-452", "mail-553", "rcpt-550", "data-554"],
)
async def test_server_answers_are_classified(
    smtp_fake: FakeSmtp, stage: Stage, reply: str, expected: Outcome
) -> None:
    smtp_fake.fail_next(stage, reply)
    result = await client(smtp_fake.port).send(composed(), label="k")
    assert result.outcome is expected
    assert result.code == int(reply[:3])
    assert reply[4:9] in result.detail, "the server's answer is kept"
    assert RECIPIENT not in result.detail
    assert smtp_fake.messages == []


async def test_refused_connection_is_temporary() -> None:
    result = await client(_closed_port()).send(composed(), label="k")
    assert result.outcome is Outcome.TEMPORARY
    assert result.code is None


async def test_silent_server_times_out_as_temporary() -> None:
    """Connected, but no greeting within the timeout: nothing was handed over."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        result = await client(port, timeout=0.3).send(composed(), label="k")
    assert result.outcome is Outcome.TEMPORARY
    assert "Timed out" in result.detail


async def test_no_answer_after_data_is_unknown_and_the_server_has_it(smtp_fake: FakeSmtp) -> None:
    """The unknown-outcome window: the message was handed over, the answer timed out. The
    server did take it, which is why such a result must not be retried blindly."""
    smtp_fake.stall_next(1.0)
    attempts = _Counter(client(smtp_fake.port, timeout=0.3))
    result = await deliver_with_retry(attempts.send, FAST, label="k")
    assert result.outcome is Outcome.UNKNOWN
    assert result.code is None
    assert attempts.count == 1
    [mail] = await smtp_fake.wait_for(1)
    assert mail.message["Message-ID"] == composed()["Message-ID"]


async def test_temporary_answers_are_retried_until_sent(smtp_fake: FakeSmtp) -> None:
    smtp_fake.fail_next("mail", "451 4.3.0 Try again later", count=2)
    attempts = _Counter(client(smtp_fake.port))
    result = await deliver_with_retry(attempts.send, FAST, label="k")
    assert result.outcome is Outcome.SENT
    assert attempts.count == 3
    assert len(smtp_fake.messages) == 1


async def test_permanent_answer_is_not_retried(smtp_fake: FakeSmtp) -> None:
    smtp_fake.fail_next("rcpt", "550 5.1.1 no such user")
    attempts = _Counter(client(smtp_fake.port))
    result = await deliver_with_retry(attempts.send, FAST, label="k")
    assert result.outcome is Outcome.PERMANENT
    assert attempts.count == 1


async def test_refused_connections_are_retried_until_the_server_returns() -> None:
    """SMTP refusing connections for a while: the message goes when it listens again."""
    with FakeSmtp() as server:
        server.pause()
        loop = asyncio.get_running_loop()
        loop.call_later(0.4, server.resume)
        attempts = _Counter(client(server.port))
        result = await deliver_with_retry(attempts.send, FAST, label="k")
        assert result.outcome is Outcome.SENT
        assert attempts.count > 1
        assert len(server.messages) == 1


async def test_retries_stop_at_the_configured_time() -> None:
    attempts = _Counter(client(_closed_port()))
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await deliver_with_retry(
        attempts.send, RetryPolicy(max_seconds=0.4, first_wait=0.05, max_wait=0.1), label="k"
    )
    elapsed = loop.time() - started
    assert result.outcome is Outcome.TEMPORARY
    assert attempts.count >= 3
    assert elapsed < 1.0


def test_client_from_settings() -> None:
    settings = SenderSettings(
        smtp_host="relay.example",
        smtp_port=2525,
        smtp_starttls=StartTls.REQUIRED,
        smtp_user=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_timeout_seconds=7,
    )
    sender = SmtpClient.from_settings(settings)
    assert (sender.host, sender.port, sender.timeout) == ("relay.example", 2525, 7)
    assert sender.starttls is StartTls.REQUIRED
    assert SMTP_PASSWORD not in repr(sender) and SMTP_USER in repr(sender)
    assert settings.mail_identity == MailIdentity("noreply@opintopolku.fi")


class _Counter:
    """Counts the attempts the retry policy makes through a client."""

    def __init__(self, sender: SmtpClient) -> None:
        self.sender = sender
        self.count = 0

    async def send(self) -> DeliveryResult:
        self.count += 1
        return await self.sender.send(composed(), label="k")


def _secret(value: str) -> SecretStr:
    return SecretStr(value)


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
