"""Fake mail server: a real SMTP server on loopback (aiosmtpd) that keeps what it receives.

The sender service talks SMTP to it exactly as to a real relay. Tests in the same process
read ``FakeSmtp.messages``; other processes read the JSON view (``create_view_app``) that
the launcher serves on port 8092.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI

__all__ = ["FakeSmtp", "ReceivedMail", "create_view_app"]


@dataclass
class ReceivedMail:
    """One message as delivered: SMTP envelope plus the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    received_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def text(self) -> str:
        """The plain-text body ('' if there is none)."""
        return _body(self.message, "plain")

    @property
    def html(self) -> str:
        return _body(self.message, "html")

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.mail_from,
            "to": list(self.rcpt_tos),
            "header_from": str(self.message.get("From", "")),
            "header_to": str(self.message.get("To", "")),
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "received_at": self.received_at,
        }


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else ""


class _Handler:
    """aiosmtpd handler: parse and store every accepted message."""

    def __init__(self, owner: FakeSmtp) -> None:
        self._owner = owner

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        # Wire format is CRLF; normalise so bodies compare naturally with Python strings.
        message = BytesParser(policy=policy.default).parsebytes(raw.replace(b"\r\n", b"\n"))
        assert isinstance(message, EmailMessage)
        self._owner._store(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
            )
        )
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """Controller that supports port 0: learn the real port before aiosmtpd self-connects."""

    def _trigger_server(self) -> None:
        server = self.server
        if self.port == 0 and isinstance(server, asyncio.Server) and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class FakeSmtp:
    """A loopback SMTP server in its own thread; ``port=0`` picks a free port.

    No STARTTLS and no AUTH are offered (the sender uses STARTTLS only where offered).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._requested_port = port
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        self._controller: _Controller | None = None

    def start(self) -> None:
        """Start listening; afterwards ``self.port`` is the real port."""
        if self._controller is not None:
            raise RuntimeError("FakeSmtp already started")
        controller = _Controller(
            _Handler(self),
            hostname=self.host,
            port=self._requested_port,
            enable_SMTPUTF8=True,
        )
        controller.start()
        self._controller = controller
        self.port = controller.port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
            self.port = self._requested_port

    def __enter__(self) -> FakeSmtp:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _store(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._messages.append(mail)

    @property
    def messages(self) -> list[ReceivedMail]:
        """A snapshot copy (the server thread may append meanwhile)."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    async def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMail]:
        """Wait until at least ``count`` messages arrived; mail delivery is asynchronous."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(messages := self.messages) < count:
            if loop.time() > deadline:
                raise TimeoutError(f"expected {count} mails, got {len(messages)}")
            await asyncio.sleep(0.02)
        return messages


def create_view_app(smtp: FakeSmtp) -> FastAPI:
    """HTTP view of what ``smtp`` received, for processes that cannot see its memory."""
    app = FastAPI(title="Fake SMTP view", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.smtp = smtp

    @app.get("/_fake/messages")
    async def messages() -> list[dict[str, Any]]:
        return [m.as_json() for m in smtp.messages]

    @app.post("/_fake/reset")
    async def reset() -> dict[str, bool]:
        smtp.clear()
        return {"ok": True}

    return app
