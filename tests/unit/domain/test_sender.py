"""S3 reminders, S4 resends and S5 texts (services.sender.domain)."""

from __future__ import annotations

from datetime import date

import pytest

from services.sender.domain.reminders import ReminderDecision, reminder_decision, resend_allowed
from services.sender.domain.texts import (
    ADDRESS_SOURCE,
    SMS_MAX_LENGTH,
    MessageContext,
    MessageKind,
    email_text,
    sms_text,
)

d = date.fromisoformat
SENT = d("2022-03-16")
LAST = d("2022-04-14")


@pytest.mark.parametrize(
    ("today", "vastattu", "reminded", "expected"),
    [
        ("2022-03-20", False, False, ReminderDecision.WAIT),
        ("2022-03-21", False, False, ReminderDecision.SEND),
        ("2022-04-14", False, False, ReminderDecision.SEND),
        ("2022-04-15", False, False, ReminderDecision.WINDOW_CLOSED),
        ("2022-03-25", True, False, ReminderDecision.ANSWERED),
        ("2022-04-20", True, True, ReminderDecision.ANSWERED),
        ("2022-03-30", False, True, ReminderDecision.ALREADY_REMINDED),
        ("2022-04-20", False, True, ReminderDecision.ALREADY_REMINDED),
    ],
    ids=[
        "S3-4-days-waits",
        "S3-5-days-sends",
        "S3-last-answer-day-sends",
        "S3-window-closed-before-reminder",
        "S3-answered",
        "S3-answered-after-reminder",
        "S3-never-a-second-reminder",
        "S3-closed-after-reminder",
    ],
)
def test_reminder_decision(
    today: str, vastattu: bool, reminded: bool, expected: ReminderDecision
) -> None:
    decision = reminder_decision(
        first_sent=SENT,
        today=d(today),
        vastattu=vastattu,
        last_answer_day=LAST,
        reminder_sent=reminded,
    )
    assert decision is expected


@pytest.mark.parametrize(
    ("today", "allowed"),
    [("2022-04-14", True), ("2022-04-15", False)],
    ids=["S4-resend-until-last-day", "S4-no-resend-after-window"],
)
def test_resend_allowed(today: str, allowed: bool) -> None:
    assert resend_allowed(d(today), LAST) is allowed


CONTEXT = MessageContext(
    ("Stadin ammatti- ja aikuisopisto", "Keuda"), "https://arvo.example/v/abc", LAST
)
KINDS = [MessageKind.INITIAL, MessageKind.REMINDER]


@pytest.mark.parametrize("kind", KINDS, ids=["S5-email-initial", "S5-email-reminder"])
def test_email_text(kind: MessageKind) -> None:
    email = email_text(kind, CONTEXT)
    for language_marker in ("Hyvä työpaikkaohjaaja", "Bästa arbetsplatshandledare", "Dear"):
        assert language_marker in email.body
    assert "Stadin ammatti- ja aikuisopisto, Keuda" in email.body
    assert "https://arvo.example/v/abc?t=e" in email.body
    assert "?t=s" not in email.body
    assert "14.4.2022" in email.body
    assert email.body.rstrip().endswith(ADDRESS_SOURCE)
    assert "\n" not in email.subject
    assert email.subject.startswith("Muistutus") is (kind is MessageKind.REMINDER)
    assert ("muistutamme" in email.body) is (kind is MessageKind.REMINDER)


@pytest.mark.parametrize("kind", KINDS, ids=["S5-sms-initial", "S5-sms-reminder"])
def test_sms_text(kind: MessageKind) -> None:
    sms = sms_text(kind, CONTEXT).text
    assert len(sms) <= SMS_MAX_LENGTH
    assert "Stadin ammatti- ja aikuisopisto, Keuda" in sms
    assert "https://arvo.example/v/abc?t=s" in sms
    assert "14.4.2022" in sms
    assert sms.endswith(ADDRESS_SOURCE)
    assert all(word in sms for word in ("Työpaikkaohjaajakysely", "Enkät", "Survey"))
    assert sms.startswith("Muistutus") is (kind is MessageKind.REMINDER)


def test_sms_with_many_oppilaitokset_names_the_first() -> None:
    """S5 + SMS limit: too many names → the first one and "ym./m.fl./et al."."""
    many = MessageContext(tuple(f"Oppilaitos numero {n}" for n in range(60)), CONTEXT.link, LAST)
    sms = sms_text(MessageKind.INITIAL, many).text
    assert len(sms) <= SMS_MAX_LENGTH
    assert "Oppilaitos numero 0 ym./m.fl./et al." in sms
    assert "Oppilaitos numero 1," not in sms


def test_sms_that_cannot_fit_is_refused() -> None:
    huge = MessageContext(("x" * 1200,), CONTEXT.link, LAST)
    with pytest.raises(ValueError, match="at most 1000"):
        sms_text(MessageKind.INITIAL, huge)


def test_a_message_names_its_provider() -> None:
    with pytest.raises(ValueError, match="S5"):
        MessageContext((" ",), CONTEXT.link, LAST)
