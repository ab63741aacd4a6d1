"""The messages as they go out: an e-mail (MIME) and an SMS, built from the texts (S5).

Pure: the caller gives the sending time and the message's key, so a message composed twice
is the same message (a resend of one key keeps its Message-ID). Only the recipient's own
address is personal data in the headers; the subject names no provider (S5's names are in
the body).
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from services.sender.domain.texts import MessageContext, MessageKind, email_text, sms_text
from shared.domain.contacts import (
    Channel,
    is_finnish_mobile,
    is_valid_email,
    link_for_channel,
    normalize_email,
    normalize_phone,
)


class InvalidRecipient(ValueError):
    """C1/C2: the address or number is not one we send to; the message is never sent."""


@dataclass(frozen=True)
class MessageKey:
    """What makes a message unique (issue 14, "never twice"): bundle, kind, channel and
    the resend number (S4; 0 for the first message). The store records it before sending."""

    nippu_id: str
    kind: MessageKind
    channel: Channel
    resend: int = 0

    def __str__(self) -> str:
        return f"{self.nippu_id}/{self.kind}/{self.channel}/{self.resend}"

    def digest(self) -> str:
        """A short stable token of the key: same key, same token, in every process."""
        return hashlib.sha256(str(self).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class MailIdentity:
    """Who the mail is from (settings SMTP_FROM, SMTP_REPLY_TO), and the domain of its
    Message-IDs (default: the From address's domain)."""

    from_address: str
    reply_to: str | None = None
    message_id_domain: str | None = None

    @property
    def id_domain(self) -> str:
        if self.message_id_domain:
            return self.message_id_domain
        _, address = parseaddr(self.from_address)
        _, at, domain = address.rpartition("@")
        return domain if at and domain else "localhost"


@dataclass(frozen=True)
class OutgoingSms:
    """One SMS to one Finnish mobile number (C2); ``client_ref`` is the message key."""

    destination: str
    text: str
    client_ref: str


def message_id(key: MessageKey, identity: MailIdentity) -> str:
    """Deterministic per key, so a resend of the same message carries the same id."""
    return f"<{key.digest()}@{identity.id_domain}>"


def checked_email(raw: str) -> str:
    """C1: the normalised address, or :class:`InvalidRecipient`."""
    address = normalize_email(raw)
    if address is None or not is_valid_email(address):
        raise InvalidRecipient("e-mail address is not valid (C1)")
    return address


def checked_phone(raw: str) -> str:
    """C2: the number in E.164 if it is a Finnish mobile, else :class:`InvalidRecipient`."""
    number = normalize_phone(raw)
    if number is None or not is_finnish_mobile(number):
        raise InvalidRecipient("phone number is not a Finnish mobile number (C2)")
    return number


def compose_email(
    *,
    key: MessageKey,
    context: MessageContext,
    recipient: str,
    identity: MailIdentity,
    sent_at: datetime,
) -> EmailMessage:
    """S5 and C4: a multipart/alternative mail, plain text and the same text as HTML, to the
    recipient only; the link carries ``?t=e`` and the body the last answer day.

    ``sent_at`` must be timezone-aware (the Date header carries its offset).
    """
    if sent_at.tzinfo is None:
        raise ValueError("sent_at must be timezone-aware")
    to = checked_email(recipient)
    text = email_text(key.kind, context)
    message = EmailMessage()
    message["Subject"] = text.subject
    message["From"] = identity.from_address
    if identity.reply_to:
        message["Reply-To"] = identity.reply_to
    message["To"] = Address(addr_spec=to)
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = message_id(key, identity)
    # RFC 3834: out-of-office replies are not sent back to an automatic sender.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text.body, subtype="plain", charset="utf-8")
    message.add_alternative(
        _html(text.subject, text.body, link_for_channel(context.link, Channel.EMAIL)),
        subtype="html",
        charset="utf-8",
    )
    # After the parts: making the alternative moves Content-* headers into the first part.
    message["Content-Language"] = "fi, sv, en"
    return message


def compose_sms(*, key: MessageKey, context: MessageContext, recipient: str) -> OutgoingSms:
    """S5 and C4: the short text, its link with ``?t=s``, to a Finnish mobile (C2)."""
    return OutgoingSms(
        destination=checked_phone(recipient),
        text=sms_text(key.kind, context).text,
        client_ref=str(key),
    )


_SEPARATOR = re.compile(r"\n-{3,}\n")


def _html(subject: str, body: str, link: str) -> str:
    """The plain text as HTML: the same words (one source, S5), paragraphs kept, the
    language sections apart, the link clickable."""
    sections = []
    for section in _SEPARATOR.split(body.strip()):
        paragraphs = [p for p in re.split(r"\n\s*\n", section.strip()) if p.strip()]
        sections.append("\n".join(f"<p>{_html_paragraph(p, link)}</p>" for p in paragraphs))
    content = "\n<hr>\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="fi">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(subject)}</title>\n</head>\n<body>\n{content}\n</body>\n</html>\n"
    )


def _html_paragraph(paragraph: str, link: str) -> str:
    escaped_link = html.escape(link)
    lines = (html.escape(line) for line in paragraph.strip().splitlines())
    anchor = f'<a href="{escaped_link}">{escaped_link}</a>'
    return "<br>\n".join(line.replace(escaped_link, anchor) for line in lines)
