"""E-mail over SMTP (aiosmtplib): one connection and one attempt per message.

STARTTLS when the server offers it (SMTP_STARTTLS), AUTH when SMTP_USER is set, every
step bounded by SMTP_TIMEOUT_SECONDS. The answer is classified by
services.sender.domain.outcomes; nothing is raised for a failed delivery.

The unknown-outcome window: the server takes responsibility for a message when it answers
250 to the data that ends with "." (RFC 5321 §4.1.1.4, the duplicate problem of RFC 1047).
If the connection drops or the answer times out after the message was handed over, we
cannot know whether it was taken, so the result is ``UNKNOWN``, never ``TEMPORARY``.
aiosmtplib sends the DATA command and the message in one call, so the client counts
everything from the DATA command to its final answer as that window: on a healthy relay
a few milliseconds, at most SMTP_TIMEOUT_SECONDS twice (the 354 and the final answer).
Failures before DATA (refused connection, greeting, STARTTLS, AUTH, MAIL, RCPT) leave
nothing at the server and are safe to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Awaitable, Callable
from email.headerregistry import AddressHeader
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import aiosmtplib
from pydantic import SecretStr

from services.sender.delivery.attempts import logged
from services.sender.domain.outcomes import (
    DeliveryResult,
    Outcome,
    SmtpStage,
    classify_smtp_reply,
    without_recipient,
)
from services.sender.settings import SenderSettings, StartTls

Handover = Callable[[], Awaitable[bool]]
"""Called just before the message is handed over (SMTP DATA, the gateway request): the
caller records that the unknown-outcome window opens, and answers False when the message
is no longer its to send (its claim was taken over), so nothing is handed over."""

#: The outcome when the handover was refused: nothing left us, safe to try again.
WITHDRAWN = DeliveryResult(Outcome.TEMPORARY, "not handed over: the claim on it was lost")

_START_TLS: dict[StartTls, bool | None] = {
    StartTls.AUTO: None,  # aiosmtplib: upgrade when EHLO offers STARTTLS
    StartTls.REQUIRED: True,
    StartTls.OFF: False,
}


class SmtpClient:
    """Sends composed messages (services.sender.domain.compose) to one SMTP server."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        timeout: float = 30.0,
        starttls: StartTls = StartTls.AUTO,
        username: str | None = None,
        password: SecretStr | None = None,
        ca_file: Path | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.starttls = starttls
        self._username = username
        self._password = password
        # Built once: loading the CA bundle for every message would cost more than sending.
        self._tls_context = ssl.create_default_context(
            cafile=str(ca_file) if ca_file is not None else None
        )
        self._local_hostname = local_hostname

    @classmethod
    def from_settings(cls, settings: SenderSettings) -> SmtpClient:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            timeout=settings.smtp_timeout_seconds,
            starttls=settings.smtp_starttls,
            username=settings.smtp_user,
            password=settings.smtp_password,
            ca_file=settings.smtp_ca_file,
            local_hostname=settings.smtp_local_hostname,
        )

    def __repr__(self) -> str:
        login = f", user={self._username!r}" if self._username else ""
        return f"SmtpClient({self.host}:{self.port}, starttls={self.starttls}{login})"

    async def _ehlo_name(self) -> str:
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def send(
        self, message: EmailMessage, *, label: str, handover: Handover | None = None
    ) -> DeliveryResult:
        """One attempt to hand ``message`` over; to its To address, from its From address.

        ``label`` names the message in logs (its key, never the recipient); ``handover``
        runs after RCPT was accepted, right before DATA.
        """
        recipient = _single_address(message, "To")
        sender = parseaddr(str(message["From"]))[1]
        attempt = self._attempt(message.as_bytes(), sender, recipient, handover)
        return await logged("email", label, attempt)

    async def _attempt(
        self, data: bytes, sender: str, recipient: str, handover: Handover | None
    ) -> DeliveryResult:
        password = self._password.get_secret_value() if self._password is not None else None
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            start_tls=_START_TLS[self.starttls],
            tls_context=self._tls_context,
            username=self._username,
            password=password if self._username is not None else None,
            local_hostname=await self._ehlo_name(),
        )
        stage = SmtpStage.SESSION
        try:
            await smtp.connect()
            stage = SmtpStage.MAIL
            await smtp.mail(sender)
            stage = SmtpStage.RCPT
            await smtp.rcpt(recipient)
            if handover is not None and not await handover():
                return WITHDRAWN
            stage = SmtpStage.DATA
            answer = await smtp.data(data)
            detail = without_recipient(f"{answer.code} {answer.message}", recipient)
            return DeliveryResult(Outcome.SENT, detail, answer.code)
        except aiosmtplib.SMTPResponseException as exc:
            detail = without_recipient(f"{exc.code} {exc.message}", recipient)
            return DeliveryResult(classify_smtp_reply(stage, exc.code), detail, exc.code)
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected) as exc:
            # After DATA the message may have been taken: the unknown-outcome window.
            outcome = Outcome.UNKNOWN if stage is SmtpStage.DATA else Outcome.TEMPORARY
            return DeliveryResult(outcome, without_recipient(f"{stage}: {exc}", recipient))
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Refused connection, TLS failure, STARTTLS or AUTH not offered: not the message.
            detail = without_recipient(f"{stage}: {type(exc).__name__}: {exc}", recipient)
            return DeliveryResult(
                Outcome.UNKNOWN if stage is SmtpStage.DATA else Outcome.TEMPORARY, detail
            )
        finally:
            await _close(smtp, quit_seconds=min(self.timeout, 5.0))


def _single_address(message: EmailMessage, header: str) -> str:
    value = message[header]
    if not isinstance(value, AddressHeader) or len(value.addresses) != 1:
        raise ValueError(f"the message must have exactly one {header} address")
    return value.addresses[0].addr_spec


async def _close(smtp: aiosmtplib.SMTP, *, quit_seconds: float) -> None:
    """QUIT politely; the message's fate is already known, so any error here is ignored."""
    if not smtp.is_connected:
        return
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
        await smtp.quit(timeout=quit_seconds)
    smtp.close()
