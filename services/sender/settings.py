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
    delivery_concurrency: int = 8
    """Messages handed over at once by one process's delivery worker."""
    delivery_batch_size: int = 50
    """Due messages one worker claims per pass."""
    delivery_poll_seconds: float = 1.0
    """How often the worker looks for due messages when nothing woke it."""
    delivery_lease_seconds: float = 150.0
    """How long a claimed message is left to its worker. Must exceed the longest attempt
    (SMTP: about 4 × SMTP_TIMEOUT_SECONDS): a message still `sending` after its lease is
    counted as an unknown outcome (docs/decisions.md), a merely claimed one is retried."""

    sms_callback_token: SecretStr = SecretStr("sms-callback-token")
    """The token the SMS gateway's delivery reports carry (Bearer, or `?token=`)."""

    arvo_adapter_token: SecretStr | None = SecretStr("dev-reader-token")
    """Bearer token of an API client with scope palaute:read at the arvo_adapter (its
    status endpoint asks for one); the default is the development reader's."""
    arvo_adapter_timeout_seconds: float = 10.0

    personal_data_retention_days: int = 30
    """P1: addresses and rendered texts are removed this many days after the window."""

    @property
    def mail_identity(self) -> MailIdentity:
        return MailIdentity(self.smtp_from, self.smtp_reply_to, self.smtp_message_id_domain)

    DEVELOPMENT_DEFAULTS: ClassVar[tuple[str, ...]] = (
        "sms_gateway_token",
        "sms_callback_token",
        "arvo_adapter_token",
    )
