"""sender settings: the SMTP server, the SMS gateway and the arvo_adapter it asks."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import ClassVar

from pydantic import SecretStr

from services.sender.domain.compose import MailIdentity
from shared.settings import ServiceSettings


class StartTls(StrEnum):
    """SMTP_STARTTLS: ``auto`` upgrades when the server offers it, ``required`` refuses to
    send in clear text, ``off`` never upgrades (a local relay)."""

    AUTO = "auto"
    REQUIRED = "required"
    OFF = "off"


class SenderSettings(ServiceSettings):
    port: int = 8004
    arvo_adapter_url: str = "http://127.0.0.1:8003"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_from: str = "noreply@opintopolku.fi"
    """The From header; a bare address or ``Name <address>``."""
    smtp_reply_to: str | None = None
    """The Reply-To header; none when unset."""
    smtp_message_id_domain: str | None = None
    """The right side of Message-IDs; default the From address's domain."""
    smtp_user: str | None = None
    """Log in (AUTH) when set; the password is never logged or shown."""
    smtp_password: SecretStr | None = None
    smtp_starttls: StartTls = StartTls.AUTO
    smtp_ca_file: Path | None = None
    """CA bundle to verify the server's certificate with (default: the system's)."""
    smtp_local_hostname: str | None = None
    """The EHLO name; default this host's FQDN (looked up once)."""
    smtp_timeout_seconds: float = 30.0
    """Per SMTP step: connect, each command, and the message transfer."""

    sms_gateway_url: str = "http://127.0.0.1:8091"
    sms_gateway_token: SecretStr = SecretStr("sms-token")
    sms_sender: str = "OPH"
    sms_timeout_seconds: float = 10.0

    delivery_retry_seconds: float = 300.0
    """How long temporary failures of one message are retried before it counts as failed."""
    delivery_retry_first_wait_seconds: float = 1.0
    delivery_retry_max_wait_seconds: float = 60.0

    @property
    def mail_identity(self) -> MailIdentity:
        return MailIdentity(self.smtp_from, self.smtp_reply_to, self.smtp_message_id_domain)

    DEVELOPMENT_DEFAULTS: ClassVar[tuple[str, ...]] = ("sms_gateway_token",)
