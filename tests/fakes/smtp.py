"""Fake mail server: a real SMTP server on loopback (aiosmtpd) that keeps what it receives.

The sender service talks SMTP to it exactly as to a real relay. Tests in the same process
read ``FakeSmtp.messages``; other processes read the JSON view (``create_view_app``) that
the launcher serves on port 8092.

Failure modes for the sender's tests: ``fail_next`` answers MAIL, RCPT or DATA with a given
reply (4xx/5xx) a number of times; ``stall_next`` takes a message but delays the answer to
its data (the unknown-outcome window); ``pause``/``resume`` refuse connections and then
listen again on the same port. With ``tls_context`` it offers STARTTLS; with
``credentials`` it requires AUTH (offered only after STARTTLS, as real relays do).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from fastapi import FastAPI

__all__ = ["FakeSmtp", "ReceivedMail", "Stage", "create_view_app"]

Stage = Literal["mail", "rcpt", "data"]


@dataclass
class ReceivedMail:
    """One message as delivered: SMTP envelope plus the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool = False
    """Whether the message came over a STARTTLS-protected connection."""
    auth_user: str | None = None
    raw: bytes = b""
    """The message as it came over the wire (CRLF line ends)."""
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
    """aiosmtpd handler: answer injected failures, else parse and store every message."""

    def __init__(self, owner: FakeSmtp) -> None:
        self._owner = owner

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if (reply := self._owner._take_fault("mail")) is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if (reply := self._owner._take_fault("rcpt")) is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if (reply := self._owner._take_fault("data")) is not None:
            return reply
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        # Wire format is CRLF; normalise so bodies compare naturally with Python strings.
        message = BytesParser(policy=policy.default).parsebytes(raw.replace(b"\r\n", b"\n"))
        assert isinstance(message, EmailMessage)
        auth = session.auth_data
        self._owner._store(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                tls=session.ssl is not None,
                auth_user=auth.login.decode() if isinstance(auth, LoginPassword) else None,
                raw=raw,
            )
        )
        if (stall := self._owner._take_stall()) is not None:
            # Taken, but the answer comes late: the client's unknown-outcome window.
            await asyncio.sleep(stall)
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

    By default no STARTTLS and no AUTH are offered (the sender uses STARTTLS only where
    offered); ``tls_context`` offers STARTTLS, ``credentials`` (user, password) requires
    AUTH after it.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._requested_port = port
        self._tls_context = tls_context
        self._credentials = credentials
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        self._faults: dict[str, deque[str]] = {"mail": deque(), "rcpt": deque(), "data": deque()}
        self._stalls: deque[float] = deque()
        self._controller: _Controller | None = None

    def start(self) -> None:
        """Start listening; afterwards ``self.port`` is the real port."""
        self._listen(self._requested_port)

    def _listen(self, port: int) -> None:
        if self._controller is not None:
            raise RuntimeError("FakeSmtp already started")
        options: dict[str, Any] = {}
        if self._tls_context is not None:
            options.update(tls_context=self._tls_context, require_starttls=False)
        if self._credentials is not None:
            options.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=True
            )
        controller = _Controller(
            _Handler(self), hostname=self.host, port=port, enable_SMTPUTF8=True, **options
        )
        controller.start()
        self._controller = controller
        self.port = controller.port

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self._credentials is not None
            and (data.login.decode(), data.password.decode()) == self._credentials
        )
        # handled=False: aiosmtpd itself answers a failure with 535.
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def pause(self) -> None:
        """Stop listening but keep the port: connections are refused until ``resume``."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def resume(self) -> None:
        """Listen again on the port it had."""
        self._listen(self.port)

    def fail_next(self, stage: Stage, reply: str, count: int = 1) -> None:
        """Answer the next ``count`` MAIL/RCPT/DATA commands with ``reply``
        (e.g. ``"451 4.3.0 Try again later"`` or ``"550 5.1.1 No such user"``)."""
        with self._lock:
            self._faults[stage].extend([reply] * count)

    def stall_next(self, seconds: float, count: int = 1) -> None:
        """Take the next ``count`` messages but answer their data only after ``seconds``."""
        with self._lock:
            self._stalls.extend([seconds] * count)

    def _take_fault(self, stage: Stage) -> str | None:
        with self._lock:
            faults = self._faults[stage]
            return faults.popleft() if faults else None

    def _take_stall(self) -> float | None:
        with self._lock:
            return self._stalls.popleft() if self._stalls else None

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
        """Forget received messages and injected failures."""
        with self._lock:
            self._messages.clear()
            for faults in self._faults.values():
                faults.clear()
            self._stalls.clear()

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
