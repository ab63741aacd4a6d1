"""After a bundle is formed (services/bundler/domain/flow.py): channels (C3, C4), the
sending status (S2) in any order of reports, S3's final states, resends (S4), E14's
cancellation and the contact-data report (C3, J2)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.bundler.domain.eligibility import Syy, Tila
from services.bundler.domain.flow import (
    ContactCandidate,
    InvalidAddress,
    MessageTila,
    NippuTila,
    ResendRefused,
    ResendTarget,
    cancels_bundled,
    contact_report_issues,
    decide_link,
    decide_resend,
    jakso_follows_bundle,
    latest_message_states,
    next_tila,
    sending_tila,
    validity_on_first_send,
)
from shared.domain.contacts import JaksoContact

d = dt.date.fromisoformat


LINKS = {
    # id: (contacts, tila, sahkoposti, puhelinnumero)
    "C4-both": (
        [("olli@perhonen.fi", "0401234567")],
        NippuTila.ODOTTAA_LAHETYSTA,
        "olli@perhonen.fi",
        "+358401234567",
    ),
    "C3-email-mismatch": (
        [("a@perhonen.fi", "0401234567"), ("b@perhonen.fi", None)],
        NippuTila.ODOTTAA_LAHETYSTA,
        None,
        "+358401234567",
    ),
    "C3-one-missing-agrees": (
        [("A@perhonen.fi ", None), (None, None)],
        NippuTila.ODOTTAA_LAHETYSTA,
        "a@perhonen.fi",
        None,
    ),
    "C3-landline": ([(None, "09 1234567")], NippuTila.EI_KELVOLLISIA_YHTEYSTIETOJA, None, None),
    "C3-none": ([(None, None)], NippuTila.EI_KELVOLLISIA_YHTEYSTIETOJA, None, None),
}


@pytest.mark.parametrize(("contacts", "tila", "email", "phone"), LINKS.values(), ids=LINKS.keys())
def test_decide_link(
    contacts: list[tuple[str | None, str | None]],
    tila: NippuTila,
    email: str | None,
    phone: str | None,
) -> None:
    decision = decide_link(JaksoContact(e, p) for e, p in contacts)
    assert (decision.tila, decision.contacts.sahkoposti, decision.contacts.puhelinnumero) == (
        tila,
        email,
        phone,
    )
    assert decision.send is (tila is NippuTila.ODOTTAA_LAHETYSTA)


SENDING = {
    # id: (latest message states, expected channels, bundle tila)
    "S2-one-sent": ({"e": "sent", "s": "accepted"}, 2, NippuTila.LAHETETTY),
    "S2-delivered": ({"s": "delivered"}, 1, NippuTila.LAHETETTY),
    "S2-sent-other-failed": ({"e": "sent", "s": "failed"}, 2, NippuTila.LAHETETTY),
    "S2-one-of-two-failed": ({"s": "failed"}, 2, NippuTila.ODOTTAA_LAHETYSTA),
    "S2-all-failed": ({"e": "failed", "s": "failed"}, 2, NippuTila.LAHETYS_EPAONNISTUNUT),
    "S2-bounced": ({"e": "bounced", "s": "failed"}, 2, NippuTila.BOUNCED),
    "S2-accepted": ({"e": "accepted"}, 1, NippuTila.ODOTTAA_LAHETYSTA),
    "S2-nothing": ({}, 1, NippuTila.ODOTTAA_LAHETYSTA),
}


@pytest.mark.parametrize(("messages", "expected", "tila"), SENDING.values(), ids=SENDING.keys())
def test_sending_tila(messages: dict[str, str], expected: int, tila: NippuTila) -> None:
    states = {k: MessageTila(v) for k, v in messages.items()}
    assert sending_tila(states, expected) is tila


REPORTS = st.lists(
    st.tuples(st.sampled_from(["e", "s"]), st.sampled_from([t.value for t in MessageTila])),
    max_size=6,
)


@given(REPORTS)
def test_message_states_do_not_depend_on_the_order_of_reports(
    reports: list[tuple[str, str]],
) -> None:
    """A report arriving late never replaces a later state of the same message."""
    expected = latest_message_states(reports)
    for order in itertools.islice(itertools.permutations(reports), 24):
        assert latest_message_states(order) == expected


NEXT = {
    # id: (current, proposed, result)
    "linked": (NippuTila.NIPUTETTU, NippuTila.ODOTTAA_LAHETYSTA, NippuTila.ODOTTAA_LAHETYSTA),
    "sent": (NippuTila.ODOTTAA_LAHETYSTA, NippuTila.LAHETETTY, NippuTila.LAHETETTY),
    "bounced-after-sent": (NippuTila.LAHETETTY, NippuTila.BOUNCED, NippuTila.BOUNCED),
    "same": (NippuTila.LAHETETTY, NippuTila.LAHETETTY, None),
    "S3-answered": (NippuTila.LAHETETTY, NippuTila.VASTATTU, NippuTila.VASTATTU),
    "S3-answer-beats-closed": (
        NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_MUISTUTUSTA,
        NippuTila.VASTATTU,
        NippuTila.VASTATTU,
    ),
    "S3-closed-after-answer": (
        NippuTila.VASTATTU,
        NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_MUISTUTUSTA,
        None,
    ),
    "late-send-after-close": (
        NippuTila.VASTAUSAIKA_LOPPUNUT_ENNEN_MUISTUTUSTA,
        NippuTila.LAHETETTY,
        None,
    ),
    "C3-resend-accepted": (
        NippuTila.EI_KELVOLLISIA_YHTEYSTIETOJA,
        NippuTila.ODOTTAA_LAHETYSTA,
        None,
    ),
    "S4-resend-sent": (
        NippuTila.EI_KELVOLLISIA_YHTEYSTIETOJA,
        NippuTila.LAHETETTY,
        NippuTila.LAHETETTY,
    ),
    "arvo-404-final": (NippuTila.ARVO_EI_KYSELYA, NippuTila.LAHETETTY, None),
}


@pytest.mark.parametrize(("current", "proposed", "result"), NEXT.values(), ids=NEXT.keys())
def test_next_tila(current: NippuTila, proposed: NippuTila, result: NippuTila | None) -> None:
    assert next_tila(current, proposed) == result


def test_validity_on_first_send_follows_w2() -> None:
    """W2's examples: sent on the niputuspvm → +29; sent late → capped at +59."""
    assert validity_on_first_send(d("2022-03-16"), d("2022-03-16")) == d("2022-04-14")
    assert validity_on_first_send(d("2022-03-16"), d("2022-05-01")) == d("2022-05-14")


RESEND = dict(
    tila=NippuTila.LAHETETTY,
    linkki="https://arvo.example/v/x",
    voimassa_loppupvm=d("2025-04-14"),
    today=d("2025-04-14"),
    stored=ResendTarget("olli@perhonen.fi", "+358401234567"),
)


def test_resend_goes_to_the_stored_addresses_or_only_the_corrected_one() -> None:
    """S4: the last answer day itself still allows a resend."""
    assert decide_resend(**RESEND, sahkoposti=None, puhelinnumero=None) == RESEND["stored"]
    assert decide_resend(**RESEND, sahkoposti=" Uusi@Perhonen.FI", puhelinnumero=None) == (
        ResendTarget("uusi@perhonen.fi", None)
    )


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"today": d("2025-04-15")}, "window has closed"),
        ({"linkki": None}, "no link"),
        ({"tila": NippuTila.ARVO_EI_KYSELYA}, "nothing to send"),
        ({"stored": ResendTarget(None, None)}, "no usable address"),
    ],
    ids=["S4-window-closed", "no-link", "arvo-404", "C3-no-address"],
)
def test_resend_refused(changes: dict[str, object], error: str) -> None:
    with pytest.raises(ResendRefused, match=error):
        decide_resend(**{**RESEND, **changes}, sahkoposti=None, puhelinnumero=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sahkoposti", "puhelinnumero", "field"),
    [
        ("nobody", None, "sahkoposti"),
        (None, "09 1234567", "puhelinnumero"),
        ("", None, "sahkoposti"),
    ],
    ids=["C1-invalid", "C2-landline", "C1-blank"],
)
def test_a_corrected_address_is_validated_before_anything_else(
    sahkoposti: str | None, puhelinnumero: str | None, field: str
) -> None:
    with pytest.raises(InvalidAddress) as raised:
        decide_resend(
            **{**RESEND, "today": d("2030-01-01")},  # type: ignore[arg-type]
            sahkoposti=sahkoposti,
            puhelinnumero=puhelinnumero,
        )
    assert raised.value.field == field


CANCEL = {
    "E14-removed": ("niputettu", "odottaa_niputusta", Tila.EI_LAHETETA, Syy.JAKSO_POISTETTU, True),
    "E7-ended": (
        "niputettu",
        "odottaa_niputusta",
        Tila.EI_LAHETETA,
        Syy.OPISKELUOIKEUS_PAATTYNYT,
        True,
    ),
    "C3-unsent": ("ei_laheteta", "yhteystieto_puuttuu", Tila.EI_LAHETETA, Syy.HOKS_POISTETTU, True),
    "E13-not-a-cancel": (
        "niputettu",
        "odottaa_niputusta",
        Tila.EI_LAHETETA,
        Syy.VASTAUSAIKA_UMPEUTUNUT,
        False,
    ),
    "E18-sent": ("lahetetty", "odottaa_niputusta", Tila.EI_LAHETETA, Syy.JAKSO_POISTETTU, False),
    "still-eligible": (
        "niputettu",
        "odottaa_niputusta",
        Tila.ODOTTAA,
        Syy.ODOTTAA_NIPUTUSTA,
        False,
    ),
}


@pytest.mark.parametrize(
    ("tila", "syy", "new_tila", "new_syy", "cancelled"), CANCEL.values(), ids=CANCEL.keys()
)
def test_cancels_bundled(
    tila: str, syy: str, new_tila: Tila, new_syy: Syy, cancelled: bool
) -> None:
    assert cancels_bundled(tila, syy, new_tila, new_syy) is cancelled


def test_a_cancelled_jakso_no_longer_follows_its_bundle() -> None:
    assert jakso_follows_bundle("niputettu", "odottaa_niputusta")
    assert jakso_follows_bundle("ei_laheteta", "yhteystieto_puuttuu")
    assert not jakso_follows_bundle("ei_laheteta", "jakso_poistettu")
    assert not jakso_follows_bundle("vastattu", "odottaa_niputusta")


def test_contact_report_lists_own_issues_group_mismatches_and_missing_tunniste() -> None:
    group = ("maija", "1234567-8", "kt", d("2025-03-16"))
    issues = contact_report_issues(
        [
            ContactCandidate(1, ("olli",), JaksoContact("o@perhonen.fi", "0401234567"), False),
            ContactCandidate(2, group, JaksoContact("m@perhonen.fi", "0501234567"), False),
            ContactCandidate(3, group, JaksoContact("mm@perhonen.fi", None), False),
            ContactCandidate(4, ("x",), JaksoContact(None, "091234567"), True),
        ]
    )
    assert issues == {
        1: (),
        2: ("email-mismatch",),
        3: ("email-mismatch", "no-phone"),
        4: ("no-email", "phone-invalid", "tunniste-puuttuu"),
    }
