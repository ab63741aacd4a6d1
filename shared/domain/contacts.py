"""Instructor contact data: e-mail (C1), phone (C2), the bundle's channels (C3) and
channel-tagged links (C4)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_FINNISH_MOBILE = re.compile(r"\+358(?:4[0-9]|50)[0-9]{4,8}")


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class ContactIssue(StrEnum):
    """Why a channel is not used for a bundle (C3), as listed in the contact-data report."""

    EMAIL_MISMATCH = "email-mismatch"
    NO_EMAIL = "no-email"
    EMAIL_INVALID = "email-invalid"
    PHONE_MISMATCH = "phone-mismatch"
    NO_PHONE = "no-phone"
    PHONE_INVALID = "phone-invalid"


def normalize_email(raw: str | None) -> str | None:
    """C1: trimmed and lower-cased, so addresses compare case-insensitively; blank → None."""
    if raw is None:
        return None
    trimmed = raw.strip()
    return trimmed.lower() if trimmed else None


def is_valid_email(address: str) -> bool:
    """C1: a syntactically valid address (after normalisation), as `email-validator` reads
    it: internationalised domains (`äänekoski.fi`) are valid; no DNS lookup (a pure rule).

    The part before the @ must be ASCII (no SMTPUTF8), and special-use domains (`.test`,
    `.local`...) and IP literals are refused: only what a mail server delivers counts.
    """
    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return False
    return True


def normalize_phone(raw: str | None) -> str | None:
    """C2: a phone number as E.164 (`+358401234567`), or None when blank or not a number.

    Finnish national numbers (leading 0) get +358; `00` is the international prefix;
    digits starting with 358 are taken as a Finnish number whose `+` was left out;
    a trunk 0 kept after +358 is dropped.
    """
    if raw is None:
        return None
    number = _PHONE_SEPARATORS.sub("", raw)
    if number.startswith("00"):
        number = "+" + number[2:]
    elif number.startswith("0"):
        number = "+358" + number[1:]
    elif number.startswith("358"):
        number = "+" + number
    if number.startswith("+3580"):
        number = "+358" + number[5:]  # "+358 (0)40 ...": the trunk 0 written after +358
    return number if _E164.fullmatch(number) else None


def is_finnish_mobile(e164: str) -> bool:
    """C2: only Finnish mobile numbers (+3584x, +35850) are sent SMS."""
    return _FINNISH_MOBILE.fullmatch(e164) is not None


@dataclass(frozen=True)
class JaksoContact:
    """The instructor contact recorded on one jakso, as written in the HOKS."""

    sahkoposti: str | None
    puhelinnumero: str | None


@dataclass(frozen=True)
class BundleContacts:
    """C3: the address and number a bundle uses, and why a channel is not used."""

    sahkoposti: str | None
    puhelinnumero: str | None
    email_issue: ContactIssue | None
    phone_issue: ContactIssue | None

    @property
    def channels(self) -> tuple[Channel, ...]:
        """C4: every usable channel gets the link."""
        usable = (
            (Channel.EMAIL, self.sahkoposti),
            (Channel.SMS, self.puhelinnumero),
        )
        return tuple(channel for channel, value in usable if value is not None)

    @property
    def has_channel(self) -> bool:
        """C3: without any channel the bundle is `ei_kelvollisia_yhteystietoja`."""
        return bool(self.channels)

    @property
    def issues(self) -> tuple[ContactIssue, ...]:
        return tuple(issue for issue in (self.email_issue, self.phone_issue) if issue)


def _choose_email(raw_addresses: Iterable[str | None]) -> tuple[str | None, ContactIssue | None]:
    addresses = {a for a in map(normalize_email, raw_addresses) if a is not None}
    if not addresses:
        return None, ContactIssue.NO_EMAIL
    if len(addresses) > 1:
        return None, ContactIssue.EMAIL_MISMATCH
    (address,) = addresses
    if not is_valid_email(address):
        return None, ContactIssue.EMAIL_INVALID
    return address, None


def _choose_phone(raw_numbers: Iterable[str | None]) -> tuple[str | None, ContactIssue | None]:
    written = [raw.strip() for raw in raw_numbers if raw is not None and raw.strip()]
    if not written:
        return None, ContactIssue.NO_PHONE
    # Numbers compare by their E.164 form; unparseable ones by what was written.
    numbers = {normalize_phone(raw) or raw for raw in written}
    if len(numbers) > 1:
        return None, ContactIssue.PHONE_MISMATCH
    (number,) = numbers
    if not (_E164.fullmatch(number) and is_finnish_mobile(number)):
        return None, ContactIssue.PHONE_INVALID
    return number, None


def choose_contacts(jaksot: Iterable[JaksoContact]) -> BundleContacts:
    """C3: a bundle uses an address (number) only when all its jaksot that have one agree
    on it and it is valid (a Finnish mobile for SMS).

    For one jakso this gives the issues the contact-data report lists as soon as the
    jakso is known.
    """
    contacts = tuple(jaksot)
    email, email_issue = _choose_email(c.sahkoposti for c in contacts)
    phone, phone_issue = _choose_phone(c.puhelinnumero for c in contacts)
    return BundleContacts(email, phone, email_issue, phone_issue)


def link_for_channel(link: str, channel: Channel) -> str:
    """C4: Arvo counts the channel from the link: e-mail links end `?t=e`, SMS `?t=s`."""
    tag = "e" if channel is Channel.EMAIL else "s"
    separator = "&" if urlsplit(link).query else "?"
    return f"{link}{separator}t={tag}"
