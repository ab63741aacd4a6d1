"""What one delivery attempt came to, and how a server's answer is classified (issue 14,
"Failures").

- ``SENT``: the server took the message; its answer (and id) is kept.
- ``TEMPORARY``: surely not taken (SMTP 4xx, refused connection, a timeout before the
  message was handed over; gateway 5xx): safe to try again.
- ``PERMANENT``: the server refused this message for good (SMTP 5xx, gateway 400): marked
  failed with the server's answer, never retried.
- ``UNKNOWN``: the message was handed over but no answer came (a timeout or a dropped
  connection after SMTP DATA, or after the gateway request was sent). The server may have
  taken it; sending again may deliver it twice, so it is never retried blindly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    SENT = "sent"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DeliveryResult:
    """One attempt's outcome. ``detail`` is the server's answer with the recipient taken
    out (safe to log and to report); ``server_id`` the gateway's message id."""

    outcome: Outcome
    detail: str
    code: int | None = None
    server_id: str | None = None

    @property
    def retryable(self) -> bool:
        return self.outcome is Outcome.TEMPORARY


class SmtpStage(StrEnum):
    """Where in the SMTP dialogue an answer came.

    ``SESSION`` covers the greeting, EHLO, STARTTLS and AUTH: a refusal there is about our
    connection or configuration, not about the message, so it is temporary whatever the
    code (fixing the relay or SMTP_PASSWORD lets the message go). From MAIL on the code
    decides.
    """

    SESSION = "session"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


def classify_smtp_reply(stage: SmtpStage, code: int) -> Outcome:
    """SMTP: 2xx sent, 4xx temporary, 5xx permanent (at MAIL, RCPT and DATA)."""
    if 200 <= code < 300:
        return Outcome.SENT
    if stage is SmtpStage.SESSION or 400 <= code < 500:
        return Outcome.TEMPORARY
    if 500 <= code < 600:
        return Outcome.PERMANENT
    # Not a reply code SMTP defines: do not guess whether it was taken.
    return Outcome.UNKNOWN if stage is SmtpStage.DATA else Outcome.TEMPORARY


def classify_gateway_status(status: int) -> Outcome:
    """The SMS gateway's HTTP answer (arvo-api.md): 200 sent, 400 permanent (an invalid
    number or text), 5xx and 429 temporary.

    401/403 are our configuration (SMS_GATEWAY_TOKEN), not the message: temporary, like
    an SMTP login refusal. Other 4xx answers say the request cannot succeed: permanent.
    """
    if 200 <= status < 300:
        return Outcome.SENT
    if status in (401, 403, 408, 429) or status >= 500:
        return Outcome.TEMPORARY
    return Outcome.PERMANENT


def without_recipient(detail: str, recipient: str, limit: int = 500) -> str:
    """A server's answer fit for logs and reports: the recipient's address or number taken
    out (servers echo it: "550 <x@y>: no such user"), on one line, bounded."""
    hidden = re.sub(re.escape(recipient), "<recipient>", detail, flags=re.IGNORECASE)
    return " ".join(hidden.split())[:limit]
