"""After a bundle is formed: its link, its channels (C3, C4), its sending status (S1, S2),
its answer (S3), resends (S4) and the jaksot's later states; K4's recomputed kesto and
the cancellation of a bundled jakso (E14) before sending.

Every decision here is a pure function of what is stored and what arrived, so the
consumers can apply events in any order: a bundle's sending status is derived from the
latest status of each of its messages, and a status of lower rank never replaces one of
higher rank (an answered bundle stays answered whatever arrives after).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from services.bundler.domain.eligibility import Syy, Tila
from shared.domain.contacts import (
    BundleContacts,
    ContactIssue,
    JaksoContact,
    choose_contacts,
    is_finnish_mobile,
    is_valid_email,
    normalize_email,
    normalize_phone,
)
from shared.domain.dates import last_answer_day


class NippuTila(StrEnum):
    """A TEP bundle's state: Arvo's bundle statuses (arvo-api.md, PATCH nippu) and the
    bundler's own before and besides them."""

    NIPUTETTU = "niputettu"
    """Formed by a run; waiting for its link (the run may also form it
    `odottaa_lahetysta`: a bundle is linked once it has a link or a linked outcome)."""
    ODOTTAA_LAHETYSTA = "odottaa_lahetysta"
    LAHETETTY = "lahetetty"
    LAHETYS_EPAONNISTUNUT = "lahetys_epaonnistunut"
    BOUNCED = "bounced"
    EI_KELVOLLISIA_YHTEYSTIETOJA = "ei_kelvollisia_yhteystietoja"
    VASTAUSAIKA_LOPPUNUT_ENNEN_LAHETYSTA = "vastausaika_loppunut_ennen_lahetysta"
    VASTAUSAIKA_LOPPUNUT_ENNEN_MUISTUTUSTA = "vastausaika_loppunut_ennen_muistutusta"
    VASTATTU = "vastattu"
    ARVO_EI_KYSELYA = "arvo_ei_kyselya"
    """Arvo had no survey (404): nothing is sent; not an Arvo status."""
    PERUTTU = "peruttu"
    """Every jakso of the bundle was cancelled before sending (E14): nothing is sent."""


#: Statuses that are Arvo's (an `arvo.status_update` may carry them).
ARVO_TILAT = frozenset(
    {
        NippuTila.ODOTTAA_LAHETYSTA,
        NippuTila.LAHETETTY,
        NippuTila.LAHETYS_EPAONNISTUNUT,
        NippuTila.BOUNCED,
        NippuTila.EI_KELVOLLISIA_YHTEYSTIETOJA,
        NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_LAHETYSTA,
        NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_MUISTUTUSTA,
        NippuTila.VASTATTU,
    }
)

#: Where a bundle's life ends: nothing that arrives later moves it.
FINAL_TILAT = frozenset(
    {
        NippuTila.VASTATTU,
        NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_MUISTUTUSTA,
        NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_LAHETYSTA,
        NippuTila.ARVO_EI_KYSELYA,
        NippuTila.PERUTTU,
    }
)

#: The sending statuses, derived again from the messages on every `send.status` (S2).
SENDING_TILAT = frozenset(
    {
        NippuTila.ODOTTAA_LAHETYSTA,
        NippuTila.LAHETETTY,
        NippuTila.LAHETYS_EPAONNISTUNUT,
        NippuTila.BOUNCED,
    }
)


def is_final(tila: str) -> bool:
    return tila in FINAL_TILAT


# --- nippu.linked: the channels (C3, C4) -----------------------------------------------


@dataclass(frozen=True)
class LinkDecision:
    """What a linked bundle becomes: sent to its channels, or `ei_kelvollisia_yhteystietoja`
    with its jaksot `ei_laheteta` / `yhteystieto_puuttuu` (C3)."""

    contacts: BundleContacts

    @property
    def send(self) -> bool:
        return self.contacts.has_channel

    @property
    def tila(self) -> NippuTila:
        return NippuTila.ODOTTAA_LAHETYSTA if self.send else NippuTila.EI_KELVOLLISIA_YHTEYSTIETOJA


def decide_link(jaksot: Iterable[JaksoContact]) -> LinkDecision:
    """C3/C4: the bundle is e-mailed when its jaksot's addresses agree on one valid
    address, texted likewise to one Finnish mobile; both when both are usable."""
    return LinkDecision(choose_contacts(jaksot))


# --- send.status: the bundle's sending status (S1, S2) ---------------------------------


class MessageTila(StrEnum):
    """A message's states as the sender reports them (`send.status` `tila`)."""

    ACCEPTED = "accepted"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    BOUNCED = "bounced"


#: A message's statuses in the order they can happen: a report of lower rank arriving
#: after one of higher rank is history, not news (`failed` and `bounced` are final;
#: a bounce comes after the message was sent, and names the failure more exactly than
#: `failed`). No two ranks tie, so the result never depends on the order of reports.
MESSAGE_RANK = {
    MessageTila.ACCEPTED: 0,
    MessageTila.SENT: 1,
    MessageTila.DELIVERED: 2,
    MessageTila.FAILED: 3,
    MessageTila.BOUNCED: 4,
}


def latest_message_states(reports: Iterable[tuple[str, str]]) -> dict[str, MessageTila]:
    """Each message's current state from its reports `(message_key, tila)` in any order."""
    latest: dict[str, MessageTila] = {}
    for key, raw in reports:
        tila = MessageTila(raw)
        if key not in latest or MESSAGE_RANK[tila] > MESSAGE_RANK[latest[key]]:
            latest[key] = tila
    return latest


def sending_tila(messages: Mapping[str, MessageTila], expected: int) -> NippuTila:
    """S2: a bundle is `lahetetty` as soon as one of its messages went out (and did not
    bounce); it failed only when every expected message failed (`bounced` when one of
    them bounced); otherwise it is still being sent.

    `expected` is the number of channels the bundle was (re)sent to: a failure on one
    channel while the other is still on its way says nothing yet.
    """
    states = list(messages.values())
    if any(s in (MessageTila.SENT, MessageTila.DELIVERED) for s in states):
        return NippuTila.LAHETETTY
    failed = [s for s in states if s in (MessageTila.FAILED, MessageTila.BOUNCED)]
    if failed and len(failed) >= max(expected, 1) and len(failed) == len(states):
        if MessageTila.BOUNCED in failed:
            return NippuTila.BOUNCED
        return NippuTila.LAHETYS_EPAONNISTUNUT
    return NippuTila.ODOTTAA_LAHETYSTA


def next_tila(current: str, proposed: NippuTila) -> NippuTila | None:
    """The bundle's new state, or None when it stays as it is: a final state never moves
    (an answer beats everything; the window closing unanswered beats a late send report),
    and a bundle without usable contacts stays so until a message of a resend to a
    corrected address has an outcome (S4)."""
    if current == proposed:
        return None
    if proposed == NippuTila.VASTATTU:
        return proposed
    if is_final(current):
        return None
    if current == NippuTila.EI_KELVOLLISIA_YHTEYSTIETOJA and proposed == (
        NippuTila.ODOTTAA_LAHETYSTA
    ):
        return None
    return proposed


def validity_on_first_send(niputuspvm: dt.date, sent_on: dt.date) -> dt.date:
    """S2 with W2: 30 days from the first send, never past 60 days from the niputuspvm."""
    return last_answer_day(niputuspvm, sent_on)


# --- The jaksot's later states ----------------------------------------------------------


@dataclass(frozen=True)
class JaksoLater:
    """A jakso's later state (rules.md "Later states"); `syy` None keeps the stored one."""

    tila: Tila
    syy: Syy | None = None


#: Which later state of the jaksot each bundle state gives; sending failures keep the
#: jaksot `niputettu` (their bundle may be resent, S4).
JAKSO_STATE_OF = {
    NippuTila.LAHETETTY: JaksoLater(Tila.LAHETETTY),
    NippuTila.VASTATTU: JaksoLater(Tila.VASTATTU),
    NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_MUISTUTUSTA: JaksoLater(Tila.VASTAUSAIKA_LOPPUNUT),
    NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_LAHETYSTA: JaksoLater(
        Tila.VASTAUSAIKA_LOPPUNUT, Syy.VASTAUSAIKA_UMPEUTUNUT
    ),
    NippuTila.EI_KELVOLLISIA_YHTEYSTIETOJA: JaksoLater(Tila.EI_LAHETETA, Syy.YHTEYSTIETO_PUUTTUU),
    NippuTila.ARVO_EI_KYSELYA: JaksoLater(Tila.EI_LAHETETA, Syy.ARVO_EI_KYSELYA),
}

#: Jaksot in these states follow their bundle; a cancelled one (E14) does not.
_FOLLOWING = frozenset({Tila.NIPUTETTU, Tila.LAHETETTY, Tila.VASTAUSAIKA_LOPPUNUT})


def jakso_follows_bundle(tila: str, syy: str) -> bool:
    """Whether a bundled jakso takes its bundle's later state: it was not cancelled after
    bundling (E14) and has not reached a state that only an answer moves."""
    return tila in _FOLLOWING or syy == Syy.YHTEYSTIETO_PUUTTUU


# --- Cancellation before sending (E14) --------------------------------------------------


def cancels_bundled(stored_tila: str, stored_syy: str, evaluated_tila: Tila, syy: Syy) -> bool:
    """A bundled jakso not yet sent that is now judged `ei_laheteta` (removed, its HOKS
    deleted, its study right ended...) is cancelled: its answer code must go. The window
    closing (E13) is not a cancellation: that is the bundle's fate, not the jakso's."""
    not_sent = stored_tila == Tila.NIPUTETTU or stored_syy == Syy.YHTEYSTIETO_PUUTTUU
    return not_sent and evaluated_tila == Tila.EI_LAHETETA and syy != Syy.VASTAUSAIKA_UMPEUTUNUT


# --- Resend (S4) -------------------------------------------------------------------------


class ResendRefused(Exception):
    """A resend that cannot happen (HTTP 409), with the reason."""


class InvalidAddress(ValueError):
    """A corrected address that can never be used (HTTP 422): `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ResendTarget:
    sahkoposti: str | None
    puhelinnumero: str | None


def corrected_email(raw: str) -> str:
    """C1 for a corrected address: trimmed, lower-cased, syntactically valid."""
    address = normalize_email(raw)
    if address is None or not is_valid_email(address):
        raise InvalidAddress("sahkoposti", "not a valid e-mail address")
    return address


def corrected_phone(raw: str) -> str:
    """C2 for a corrected number: E.164, a Finnish mobile."""
    number = normalize_phone(raw)
    if number is None or not is_finnish_mobile(number):
        raise InvalidAddress("puhelinnumero", "not a Finnish mobile number (+3584x, +35850)")
    return number


def decide_resend(
    *,
    tila: str,
    linkki: str | None,
    voimassa_loppupvm: dt.date,
    today: dt.date,
    stored: ResendTarget,
    sahkoposti: str | None,
    puhelinnumero: str | None,
) -> ResendTarget:
    """S4: the same link again, to the corrected address(es) when given (only those),
    else to the bundle's own; refused after the window closed (its validity never
    changes), before the bundle has a link, or when it ended without a survey."""
    target = ResendTarget(
        corrected_email(sahkoposti) if sahkoposti is not None else None,
        corrected_phone(puhelinnumero) if puhelinnumero is not None else None,
    )
    if linkki is None:
        raise ResendRefused("the bundle has no link yet")
    if tila in (NippuTila.ARVO_EI_KYSELYA, NippuTila.PERUTTU):
        raise ResendRefused(f"the bundle is {tila}: nothing to send")
    if today > voimassa_loppupvm:
        raise ResendRefused("the answer window has closed")
    if target.sahkoposti is None and target.puhelinnumero is None:
        target = stored
    if target.sahkoposti is None and target.puhelinnumero is None:
        raise ResendRefused("the bundle has no usable address: give sahkoposti or puhelinnumero")
    return target


def contact_issues(contact: JaksoContact) -> tuple[ContactIssue, ...]:
    """C3 for one jakso, as the contact-data report lists it as soon as it is known."""
    return choose_contacts([contact]).issues


@dataclass(frozen=True)
class ContactCandidate:
    """A jakso still to be sent, for the contact-data report: `group` is what its coming
    bundle will share (N1 without the tutkinto, which the report need not know)."""

    jakso_id: int
    group: tuple[object, ...]
    contact: JaksoContact
    tunniste_puuttuu: bool


#: J2: a jakso without yksiloiva-tunniste is listed in the contact-data report.
TUNNISTE_PUUTTUU = "tunniste-puuttuu"


def contact_report_issues(candidates: Iterable[ContactCandidate]) -> dict[int, tuple[str, ...]]:
    """C3 and J2 per jakso: its own contact issues (missing, invalid), the mismatches of
    the bundle it is heading for (listed on every jakso of that bundle, so that the
    provider sees them before the niputuspvm), and a missing yksiloiva-tunniste."""
    listed = list(candidates)
    groups: dict[tuple[object, ...], list[ContactCandidate]] = {}
    for c in listed:
        groups.setdefault(c.group, []).append(c)
    mismatches = {
        group: {
            i
            for i in choose_contacts(m.contact for m in members).issues
            if i in (ContactIssue.EMAIL_MISMATCH, ContactIssue.PHONE_MISMATCH)
        }
        for group, members in groups.items()
    }
    result: dict[int, tuple[str, ...]] = {}
    for c in listed:
        own = set(contact_issues(c.contact)) | mismatches[c.group]
        names = sorted(str(i) for i in own)
        if c.tunniste_puuttuu:
            names.append(TUNNISTE_PUUTTUU)
        result[c.jakso_id] = tuple(names)
    return result
