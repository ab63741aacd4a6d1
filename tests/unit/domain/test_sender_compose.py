"""The messages as composed (S5, C1, C2, C4) and how delivery answers are classified
(services.sender.domain.compose, services.sender.domain.outcomes)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from services.sender.domain.compose import (
    InvalidRecipient,
    MailIdentity,
    MessageKey,
    compose_email,
    compose_sms,
    message_id,
)
from services.sender.domain.outcomes import (
    DeliveryResult,
    Outcome,
    SmtpStage,
    classify_gateway_status,
    classify_smtp_reply,
    without_recipient,
)
from services.sender.domain.texts import ADDRESS_SOURCE, MessageContext, MessageKind
from shared.domain.contacts import Channel

LAST = date(2022, 4, 14)
CONTEXT = MessageContext(
    ("Stadin ammatti- ja aikuisopisto", "Keuda"), "https://arvo.example/v/abc", LAST
)
IDENTITY = MailIdentity("Opetushallitus <noreply@opintopolku.fi>", "palaute@opintopolku.fi")
SENT_AT = datetime(2022, 3, 16, 9, 30, tzinfo=timezone(timedelta(hours=2)))
KEY = MessageKey("perhosen_paivakoti_2022-03-16_ab12", MessageKind.INITIAL, Channel.EMAIL)
REMINDER_KEY = MessageKey(KEY.nippu_id, MessageKind.REMINDER, Channel.EMAIL)


def wire(message: EmailMessage) -> EmailMessage:
    """The message as a receiver parses it from the bytes we send."""
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def mail(key: MessageKey = KEY, recipient: str = "ohjaaja@example.fi") -> EmailMessage:
    return wire(
        compose_email(
            key=key, context=CONTEXT, recipient=recipient, identity=IDENTITY, sent_at=SENT_AT
        )
    )


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("From", "Opetushallitus <noreply@opintopolku.fi>"),
        ("Reply-To", "palaute@opintopolku.fi"),
        ("To", "ohjaaja@example.fi"),
        ("Date", "Wed, 16 Mar 2022 09:30:00 +0200"),
        (
            "Subject",
            "Työpaikkaohjaajakysely / Enkät till arbetsplatshandledare"
            " / Survey for workplace instructors",
        ),
        ("Content-Type", "multipart/alternative"),
        ("Auto-Submitted", "auto-generated"),
        ("Content-Language", "fi, sv, en"),
    ],
    ids=[
        "from",
        "reply-to",
        "to-recipient-only",
        "date",
        "S5-subject",
        "alternative",
        "auto",
        "S5-languages",
    ],
)
def test_email_headers(header: str, expected: str) -> None:
    message = mail()
    assert str(message[header]).split(";")[0] == expected
    assert len(message.get_all(header) or []) == 1


def test_subject_is_encoded_for_the_wire() -> None:
    """A UTF-8 subject travels as an RFC 2047 encoded word, not as raw 8-bit."""
    raw = compose_email(
        key=KEY, context=CONTEXT, recipient="a@example.fi", identity=IDENTITY, sent_at=SENT_AT
    ).as_bytes()
    subject_line = next(line for line in raw.splitlines() if line.startswith(b"Subject:"))
    assert b"=?utf-8?" in subject_line
    assert all(byte < 128 for byte in raw.split(b"\n\n", 1)[0])


def test_no_personal_data_in_headers_but_the_recipient() -> None:
    """Provider names and the link stay in the body; the only address is the recipient's."""
    message = mail(recipient="ohjaaja@example.fi")
    headers = "\n".join(f"{k}: {v}" for k, v in message.items())
    assert "Stadin" not in headers and "Keuda" not in headers
    assert "arvo.example" not in headers
    assert headers.count("ohjaaja@example.fi") == 1
    assert "Cc" not in message and "Bcc" not in message


@pytest.mark.parametrize(
    ("key", "reminder"), [(KEY, False), (REMINDER_KEY, True)], ids=["S5-initial", "S3-reminder"]
)
def test_both_parts_carry_the_text_link_and_last_day(key: MessageKey, reminder: bool) -> None:
    text, html = parts(mail(key))
    for part in (text, html):
        for greeting in ("Hyvä työpaikkaohjaaja", "Bästa arbetsplatshandledare", "Dear"):
            assert greeting in part
        assert "Stadin ammatti- ja aikuisopisto, Keuda" in part
        assert "14.4.2022" in part
        assert ADDRESS_SOURCE in part
        assert "?t=s" not in part
        assert ("muistutamme" in part) is reminder
    assert text.count("https://arvo.example/v/abc?t=e") == 3
    assert html.count('<a href="https://arvo.example/v/abc?t=e">') == 3
    assert html.count("<hr>") == 2


def test_html_part_escapes_the_texts() -> None:
    context = MessageContext(("Koulu <script>",), "https://arvo.example/v/a?x=1", LAST)
    message = wire(
        compose_email(
            key=KEY, context=context, recipient="a@example.fi", identity=IDENTITY, sent_at=SENT_AT
        )
    )
    text, html = parts(message)
    assert "Koulu <script>" in text
    assert "Koulu &lt;script&gt;" in html and "<script>" not in html
    assert '<a href="https://arvo.example/v/a?x=1&amp;t=e">' in html


def test_message_id_is_stable_per_key() -> None:
    """A resend of the same message keeps its id; another message gets another."""
    first = mail(KEY)["Message-ID"]
    assert mail(KEY)["Message-ID"] == first == message_id(KEY, IDENTITY)
    assert str(first).endswith("@opintopolku.fi>")
    others = {
        str(mail(key)["Message-ID"])
        for key in (
            REMINDER_KEY,
            MessageKey(KEY.nippu_id, MessageKind.INITIAL, Channel.EMAIL, resend=1),
            MessageKey("toinen", MessageKind.INITIAL, Channel.EMAIL),
        )
    }
    assert len(others) == 3 and str(first) not in others


def test_message_id_domain_from_settings() -> None:
    identity = MailIdentity("noreply@opintopolku.fi", message_id_domain="mail.oph.fi")
    assert message_id(KEY, identity).endswith("@mail.oph.fi>")
    assert MailIdentity("nobody").id_domain == "localhost"


def test_without_reply_to_there_is_none() -> None:
    message = compose_email(
        key=KEY,
        context=CONTEXT,
        recipient="a@example.fi",
        identity=MailIdentity("noreply@opintopolku.fi"),
        sent_at=SENT_AT,
    )
    assert "Reply-To" not in message


def test_recipient_is_normalised_c1() -> None:
    assert str(mail(recipient="  Ohjaaja@Example.FI ")["To"]) == "ohjaaja@example.fi"


@pytest.mark.parametrize(
    "recipient",
    ["", "ohjaaja", "a@b", "a@example.fi\r\nBcc: x@example.fi", "a b@example.fi"],
    ids=["C1-empty", "C1-no-at", "C1-no-domain", "C1-header-injection", "C1-space"],
)
def test_invalid_address_is_never_composed(recipient: str) -> None:
    with pytest.raises(InvalidRecipient, match="C1"):
        mail(recipient=recipient)


def test_sent_at_must_carry_its_offset() -> None:
    with pytest.raises(ValueError, match="timezone"):
        compose_email(
            key=KEY,
            context=CONTEXT,
            recipient="a@example.fi",
            identity=IDENTITY,
            sent_at=datetime(2022, 3, 16, 9, 30),
        )


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [("040 123 4567", "+358401234567"), ("+358501234567", "+358501234567")],
    ids=["C2-national", "C2-e164"],
)
def test_sms_composed(recipient: str, expected: str) -> None:
    key = MessageKey("nippu-1", MessageKind.INITIAL, Channel.SMS)
    sms = compose_sms(key=key, context=CONTEXT, recipient=recipient)
    assert sms.destination == expected
    assert sms.client_ref == "nippu-1/initial/sms/0"
    assert "https://arvo.example/v/abc?t=s" in sms.text
    assert "?t=e" not in sms.text
    assert "14.4.2022" in sms.text
    assert sms.text.endswith(ADDRESS_SOURCE)


@pytest.mark.parametrize(
    "recipient",
    ["+46701234567", "09 123 4567", "abc"],
    ids=["C2-foreign", "C2-landline", "C2-junk"],
)
def test_sms_only_to_finnish_mobiles(recipient: str) -> None:
    key = MessageKey("nippu-1", MessageKind.INITIAL, Channel.SMS)
    with pytest.raises(InvalidRecipient, match="C2"):
        compose_sms(key=key, context=CONTEXT, recipient=recipient)


@pytest.mark.parametrize(
    ("stage", "code", "expected"),
    [
        (SmtpStage.DATA, 250, Outcome.SENT),
        (SmtpStage.MAIL, 451, Outcome.TEMPORARY),
        (SmtpStage.RCPT, 452, Outcome.TEMPORARY),
        (SmtpStage.DATA, 421, Outcome.TEMPORARY),
        (SmtpStage.RCPT, 550, Outcome.PERMANENT),
        (SmtpStage.DATA, 554, Outcome.PERMANENT),
        (SmtpStage.MAIL, 553, Outcome.PERMANENT),
        (SmtpStage.SESSION, 535, Outcome.TEMPORARY),
        (SmtpStage.SESSION, 554, Outcome.TEMPORARY),
        (SmtpStage.DATA, 999, Outcome.UNKNOWN),
        (SmtpStage.RCPT, 999, Outcome.TEMPORARY),
    ],
    ids=[
        "250-sent",
        "mail-4xx-temporary",
        "rcpt-4xx-temporary",
        "data-4xx-temporary",
        "rcpt-5xx-permanent",
        "data-5xx-permanent",
        "mail-5xx-permanent",
        "auth-refused-is-configuration",
        "greeting-refused-is-not-the-message",
        "data-odd-code-unknown",
        "rcpt-odd-code-temporary",
    ],
)
def test_classify_smtp_reply(stage: SmtpStage, code: int, expected: Outcome) -> None:
    assert classify_smtp_reply(stage, code) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Outcome.SENT),
        (400, Outcome.PERMANENT),
        (404, Outcome.PERMANENT),
        (401, Outcome.TEMPORARY),
        (429, Outcome.TEMPORARY),
        (500, Outcome.TEMPORARY),
        (503, Outcome.TEMPORARY),
    ],
    ids=["200", "400-permanent", "404", "401-configuration", "429", "500", "503"],
)
def test_classify_gateway_status(status: int, expected: Outcome) -> None:
    assert classify_gateway_status(status) is expected


def test_only_temporary_is_retryable() -> None:
    assert [o for o in Outcome if DeliveryResult(o, "").retryable] == [Outcome.TEMPORARY]


def test_answers_lose_the_recipient() -> None:
    detail = "550 5.1.1 <Ohjaaja@Example.fi>:\n  no such user"
    assert (
        without_recipient(detail, "ohjaaja@example.fi") == "550 5.1.1 <<recipient>>: no such user"
    )
    assert len(without_recipient("x" * 900, "a@b.fi")) == 500


def test_utc_date_header() -> None:
    message = compose_email(
        key=KEY,
        context=CONTEXT,
        recipient="a@example.fi",
        identity=IDENTITY,
        sent_at=datetime(2022, 3, 16, 7, 30, tzinfo=UTC),
    )
    assert message["Date"] == "Wed, 16 Mar 2022 07:30:00 +0000"
