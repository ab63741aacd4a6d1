"""C1–C4 contacts and channels (shared.domain.contacts)."""

import pytest

from shared.domain.contacts import (
    BundleContacts,
    Channel,
    ContactIssue,
    JaksoContact,
    choose_contacts,
    is_finnish_mobile,
    is_valid_email,
    link_for_channel,
    normalize_email,
    normalize_phone,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" Ohjaaja@Firma.FI ", "ohjaaja@firma.fi"), ("   ", None), (None, None)],
    ids=["C1-trim-and-case", "C1-blank", "C1-missing"],
)
def test_normalize_email(raw: str | None, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("ohjaaja@firma.fi", True),
        ("etu.suku+tep@ala-firma.example.com", True),
        ("ohjaaja@firma", False),
        ("ohjaaja.firma.fi", False),
        ("oh jaaja@firma.fi", False),
        ("a@@firma.fi", False),
        ("ohjaaja..x@firma.fi", False),
        ("ohjaaja@-firma.fi", False),
        ("ohjaaja@äänekoski.fi", True),
        ("ohjaaja@kärkölä.fi", True),
        ("ohjaaja@xn--nekoski-4waa.fi", True),
        ("jää.ohjaaja@firma.fi", False),
        ("ohjaaja@firma.test", False),
        ("ohjaaja@firma.fi.", False),
        ("ohjaaja@[192.0.2.1]", False),
        ("ohjaaja@" + "a" * 250 + ".fi", False),
    ],
    ids=[
        "C1-valid",
        "C1-valid-plus-subdomain",
        "C1-no-tld",
        "C1-no-at",
        "C1-space",
        "C1-two-ats",
        "C1-double-dot",
        "C1-label-hyphen",
        "C1-idn-domain",
        "C1-idn-domain-2",
        "C1-idn-punycode",
        "C1-non-ascii-local-part",
        "C1-special-use-domain",
        "C1-trailing-dot",
        "C1-ip-literal",
        "C1-too-long",
    ],
)
def test_is_valid_email(address: str, valid: bool) -> None:
    assert is_valid_email(address) is valid


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("040 123 4567", "+358401234567"),
        ("+358 (0)50-123 4567", "+358501234567"),
        ("+358 50 123 4567", "+358501234567"),
        ("00358401234567", "+358401234567"),
        ("358401234567", "+358401234567"),
        ("09 123 4567", "+35891234567"),
        ("+46 70 123 45 67", "+46701234567"),
        ("puhelin", None),
        ("", None),
        (None, None),
    ],
    ids=[
        "C2-national",
        "C2-trunk-zero-after-country-code",
        "C2-international",
        "C2-00-prefix",
        "C2-missing-plus",
        "C2-landline",
        "C2-foreign",
        "C2-not-a-number",
        "C2-blank",
        "C2-missing",
    ],
)
def test_normalize_phone(raw: str | None, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("number", "mobile"),
    [
        ("+358401234567", True),
        ("+358451234567", True),
        ("+358501234567", True),
        ("+35891234567", False),
        ("+358201234567", False),
        ("+46701234567", False),
    ],
    ids=["C2-040", "C2-045", "C2-050", "C2-landline", "C2-020-service", "C2-foreign"],
)
def test_is_finnish_mobile(number: str, mobile: bool) -> None:
    assert is_finnish_mobile(number) is mobile


OK_MAIL = "ohjaaja@firma.fi"
OK_PHONE = "0401234567"


def bundle(*contacts: tuple[str | None, str | None]) -> BundleContacts:
    return choose_contacts(JaksoContact(mail, phone) for mail, phone in contacts)


@pytest.mark.parametrize(
    ("contacts", "email", "phone", "issues"),
    [
        ([(OK_MAIL, OK_PHONE)], OK_MAIL, "+358401234567", ()),
        (
            [(OK_MAIL, None), (" OHJAAJA@firma.fi", "+358 40 123 4567")],
            OK_MAIL,
            "+358401234567",
            (),
        ),
        ([(OK_MAIL, None), ("toinen@firma.fi", None)], None, None, ("email-mismatch", "no-phone")),
        ([(None, OK_PHONE), (None, "0409999999")], None, None, ("no-email", "phone-mismatch")),
        ([("ei-osoite", "091234567")], None, None, ("email-invalid", "phone-invalid")),
        ([(None, "soita")], None, None, ("no-email", "phone-invalid")),
        ([(None, None), ("", " ")], None, None, ("no-email", "no-phone")),
        (
            [(" Ohjaaja@ÄÄNEKOSKI.fi", None), ("ohjaaja@äänekoski.fi", None)],
            "ohjaaja@äänekoski.fi",
            None,
            ("no-phone",),
        ),
    ],
    ids=[
        "C3-both-channels",
        "C3-agree-ignoring-missing-case-and-format",
        "C3-email-mismatch",
        "C3-phone-mismatch",
        "C3-invalid",
        "C3-unparseable-phone",
        "C3-no-contact",
        "C3-idn-domain-agrees",
    ],
)
def test_choose_contacts(
    contacts: list[tuple[str | None, str | None]],
    email: str | None,
    phone: str | None,
    issues: tuple[str, ...],
) -> None:
    chosen = bundle(*contacts)
    assert (chosen.sahkoposti, chosen.puhelinnumero) == (email, phone)
    assert chosen.issues == tuple(ContactIssue(issue) for issue in issues)
    assert chosen.has_channel is (email is not None or phone is not None)


def test_channels_of_a_bundle() -> None:
    assert bundle((OK_MAIL, OK_PHONE)).channels == (Channel.EMAIL, Channel.SMS)
    assert bundle((None, OK_PHONE)).channels == (Channel.SMS,)
    assert bundle((None, None)).channels == ()


@pytest.mark.parametrize(
    ("link", "channel", "expected"),
    [
        ("https://arvo.example/v/abc", Channel.EMAIL, "https://arvo.example/v/abc?t=e"),
        ("https://arvo.example/v/abc", Channel.SMS, "https://arvo.example/v/abc?t=s"),
        (
            "https://arvo.example/v/abc?lang=fi",
            Channel.SMS,
            "https://arvo.example/v/abc?lang=fi&t=s",
        ),
    ],
    ids=["C4-email", "C4-sms", "C4-existing-query"],
)
def test_link_for_channel(link: str, channel: Channel, expected: str) -> None:
    assert link_for_channel(link, channel) == expected
