"""Message texts (S5): trilingual (fi, sv, en) in one message, naming the provider,
carrying the link and the last answer day, ending with the address source.

The wording lives in Jinja2 templates shipped in `templates/`, not in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from pathlib import Path

import jinja2

from shared.domain.contacts import Channel, link_for_channel

#: S5, arvo-api.md: every message ends with the source of the address.
ADDRESS_SOURCE = "Osoitelähde: Opetushallitus, eHOKS-rekisteri"
#: arvo-api.md: SMS texts are at most 1,000 characters.
SMS_MAX_LENGTH = 1000

TEMPLATES = Path(__file__).parent / "templates"


class MessageKind(StrEnum):
    INITIAL = "initial"
    REMINDER = "reminder"


@dataclass(frozen=True)
class MessageContext:
    """What a TEP message says: who asks, where to answer, and until when."""

    oppilaitokset: tuple[str, ...]
    link: str
    """The bundle's Arvo link without a channel tag (C4 adds it)."""
    last_answer_day: date

    def __post_init__(self) -> None:
        if not any(name.strip() for name in self.oppilaitokset):
            raise ValueError("a message must name the provider (S5)")


@dataclass(frozen=True)
class EmailText:
    subject: str
    body: str


@dataclass(frozen=True)
class SmsText:
    text: str


def _finnish_date(day: date) -> str:
    return f"{day.day}.{day.month}.{day.year}"


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain text, never HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    environment.filters["pvm"] = _finnish_date
    return environment


def _render(
    template: str,
    kind: MessageKind,
    channel: Channel,
    context: MessageContext,
    oppilaitokset: tuple[str, ...],
    abbreviated: bool = False,
) -> str:
    return (
        _environment()
        .get_template(template)
        .render(
            reminder=kind is MessageKind.REMINDER,
            oppilaitokset=", ".join(name.strip() for name in oppilaitokset if name.strip()),
            abbreviated=abbreviated,
            link=link_for_channel(context.link, channel),
            last_answer_day=context.last_answer_day,
            address_source=ADDRESS_SOURCE,
        )
    )


def email_text(kind: MessageKind, context: MessageContext) -> EmailText:
    """S5: the e-mail's subject and body; the link carries `?t=e` (C4)."""
    subject = _render("email_subject.txt.j2", kind, Channel.EMAIL, context, context.oppilaitokset)
    body = _render("email_body.txt.j2", kind, Channel.EMAIL, context, context.oppilaitokset)
    return EmailText(subject.strip(), body.strip() + "\n")


def sms_text(kind: MessageKind, context: MessageContext) -> SmsText:
    """S5: the SMS, at most 1,000 characters; the link carries `?t=s` (C4).

    When many oppilaitos names would make it too long, only the first is named,
    followed by "ym./m.fl./et al.".
    """
    text = _render("sms.txt.j2", kind, Channel.SMS, context, context.oppilaitokset).strip()
    if len(text) > SMS_MAX_LENGTH:
        first = tuple(name for name in context.oppilaitokset if name.strip())[:1]
        text = _render("sms.txt.j2", kind, Channel.SMS, context, first, abbreviated=True).strip()
    if len(text) > SMS_MAX_LENGTH:
        raise ValueError(f"SMS text is {len(text)} characters, at most {SMS_MAX_LENGTH} allowed")
    return SmsText(text)
